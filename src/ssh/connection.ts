/**
 * One client connection through the gate, its lifecycle: authentication, routing, the upstream connection
 * (upstream.ts), its session channels (bridge.ts), its direct-tcpip channels (direct-tcpip.ts), refused
 * forwarding, and its recording (one SessionRecorder per connection).
 *
 * Order of events:
 * 1. `publickey` attempts are decided by auth.ts. Failures go to the operational log at once; nothing is
 *    sealed for a connection that never authenticates, so strangers cannot make the gate write segments.
 * 2. On success the session is sealed: SESSION_START, the failed attempts, AUTH_RESULT. Then routing is
 *    applied; a refusal ("unknown target web9") is shown on the first session channel's stderr and the
 *    connection ends. Otherwise the upstream connection starts at once.
 * 3. Each `session` channel is bridged to a channel on the upstream connection.
 * 4. `direct-tcpip` channels (direct-tcpip.ts): a ProxyJump to a configured target's name, whose inner SSH
 *    connection gate.ts terminates as a GateConnection of its own (with `jump` set: its user and target are
 *    fixed by this connection), or a port forward. A plain login that routes nowhere (TARGET_REQUIRED) is
 *    kept open for jumps; its session channels are told the refusal.
 * 5. When either side goes, the other is ended, and SESSION_END (FINAL) closes the recording.
 */
import type { Socket } from 'node:net';
import type {
  AcceptConnection,
  AuthContext,
  ClientInfo,
  Connection,
  RejectConnection,
  ServerChannel,
  Session,
  SocketBindInfo,
  SocketRequestInfo,
  TcpipBindInfo,
  TcpipRequestInfo,
} from 'ssh2';
import type { User } from '../config/schema.js';
import { RecordType } from '../seal/format/types.js';
import type { SessionRecorder } from '../seal/session-recorder.js';
import { decidePublicKey } from './auth.js';
import { refuseSession, SessionBridge } from './bridge.js';
import { DirectTcpipChannels } from './direct-tcpip.js';
import { DISCONNECT, disconnect } from './disconnect.js';
import { GateError, printableLogin } from './errors.js';
import type { PreAuthReport } from './listener.js';
import { innerRoute } from './jump.js';
import { SessionRecording } from './recording.js';
import { route, splitLogin, type Route, type Routing } from './routing.js';
import type { GateServices, JumpOrigin } from './services.js';
import { connectUpstream, upstreamFailure, type UpstreamClient } from './upstream.js';

interface AuthRecord {
  readonly method: string;
  readonly ok: boolean;
  readonly key_fingerprint?: string;
  readonly reason?: string;
}

export class GateConnection {
  readonly #svc: GateServices;
  readonly #conn: Connection;
  readonly #client: string;
  readonly #onGone: () => void;
  readonly #logContext: Record<string, unknown>;
  readonly #failedAuth: AuthRecord[] = [];
  readonly #bridges = new Set<SessionBridge>();
  readonly #tunnels: DirectTcpipChannels;
  /** Set on a jump's inner connection. */
  readonly #jump: JumpOrigin | undefined;
  /** What the TCP listener learns of authentication (absent on a jump's inner connection). */
  readonly #preAuth: PreAuthReport | undefined;
  #authenticated: { routing: Routing; fingerprint: string; user: User } | undefined;
  /** The SSH user name as the client sent it (`ops+web1`); ssh2 refuses a change between attempts. */
  #login = '';
  /** Authentication requests so far, of any method (sshd's `authctxt->attempt`). */
  #attempts = 0;
  #recording: SessionRecording | undefined;
  #upstream: Promise<UpstreamClient> | undefined;
  /** The route of an authenticated, routed connection; its upstream connection starts on first use. */
  #route: Route | undefined;
  #upstreamClient: UpstreamClient | undefined;
  #upstreamGone = false;
  #refusal: GateError | undefined;
  #nextChannel = 0;
  #endReason = 'client disconnected';
  #closed = false;
  #timers: NodeJS.Timeout[] = [];
  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(
    svc: GateServices,
    conn: Connection,
    info: ClientInfo,
    onGone: () => void,
    jump?: JumpOrigin,
    preAuth?: PreAuthReport,
  ) {
    this.#svc = svc;
    this.#conn = conn;
    this.#jump = jump;
    this.#preAuth = preAuth;
    this.#client = jump ? jump.client : `${info.ip}:${info.port}`;
    this.#onGone = onGone;
    this.#logContext = jump
      ? { client: this.#client, jump_from: jump.outerSession }
      : { client: this.#client };
    this.#whenClosed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#tunnels = new DirectTcpipChannels({
      svc,
      client: this.#client,
      logContext: this.#logContext,
      jump,
      recording: () => this.#recording,
      authenticated: () => this.#authenticated,
      refused: () => this.#refusal !== undefined && !this.jumpsOnly,
      isClosed: () => this.#closed,
      nextChannel: () => this.#nextChannel++,
      upstream: () => this.upstream(),
      refuseForward: (kind, details) => this.refuseForward(kind, details),
      onTunnelClosed: () => this.maybeHangUp(),
    });

    // Protocol errors (garbage, a bad MAC, a dropped socket) end this connection, never the gate.
    conn.on('error', (err: Error) =>
      svc.logger.debug('client connection error', { ...this.#logContext, error: err.message }),
    );
    conn.on('authentication', (ctx: AuthContext) => this.authenticate(ctx));
    conn.on('ready', () => this.onAuthenticated());
    conn.on('session', (accept: AcceptConnection<Session>, reject: RejectConnection) =>
      this.onSession(accept, reject),
    );
    conn.on(
      'tcpip',
      (accept: AcceptConnection<ServerChannel>, reject: RejectConnection, i: TcpipRequestInfo) =>
        this.#tunnels.open(accept, reject, i),
    );
    conn.on(
      'openssh.streamlocal',
      (_a: AcceptConnection<ServerChannel>, reject: RejectConnection, i: SocketRequestInfo) => {
        this.refuseForward('direct-streamlocal', { path: i.socketPath });
        reject();
      },
    );
    conn.on(
      'request',
      (_a: unknown, reject: (() => void) | undefined, name: string, i: TcpipBindInfo | SocketBindInfo) => {
        if (name === 'tcpip-forward' && 'bindPort' in i)
          this.refuseForward('tcpip-forward', { host: i.bindAddr, port: i.bindPort });
        else if (name === 'streamlocal-forward@openssh.com' && 'socketPath' in i)
          this.refuseForward('streamlocal-forward', { path: i.socketPath });
        reject?.();
      },
    );
    conn.on('close', () => this.onClose());
    if (preAuth) {
      // The listener's grace timer started at TCP accept; it ends the connection through us.
      preAuth.onGraceOver = () => this.cut('login grace time over');
    } else {
      this.timer(() => {
        if (!this.#authenticated) this.cut('login grace time over');
      }, svc.limits.loginGraceMs);
    }
  }

  /** Resolves when the client connection has closed and the session is recorded as ended. */
  get closed(): Promise<void> {
    return this.#whenClosed;
  }

  /**
   * A plain login that routes nowhere: no upstream, but jumps may be opened (jump.ts). Only
   * onAuthenticated sets the refusal, and it keeps such a login open for jumps exactly when the code is
   * TARGET_REQUIRED.
   */
  private get jumpsOnly(): boolean {
    return this.#refusal?.code === 'TARGET_REQUIRED';
  }

  /** The log failed: fail-closed sessions end now; fail-open ones go on, unrecorded (recording.ts). */
  recordingFailed(err: Error): void {
    this.#recording?.fail(err);
  }

  /** Ends the connection now, with SESSION_END `reason` when the log can still take it. */
  terminate(reason: string): void {
    this.#endReason = reason;
    this.cut(reason); // channels and tunnels record their close first
    this.#recording?.end(reason);
  }

  // --- authentication ------------------------------------------------------------------------------

  private authenticate(ctx: AuthContext): void {
    const svc = this.#svc;
    this.#login = ctx.username;
    // The name is the client's to choose, before any proof: bounded in the log (errors.ts).
    this.#logContext.login = printableLogin(ctx.username);
    // OpenSSH's client always tries `none` first, to learn the methods: that first request costs
    // nothing. Any later `none` is a failure like any other method, as sshd counts it (auth2.c,
    // userauth_finish: `attempt > 1 || method != "none"`), so `none` cannot probe without limit.
    if (++this.#attempts === 1 && ctx.method === 'none') return ctx.reject(['publickey']);
    if (ctx.method !== 'publickey') {
      if (this.authFailed({ method: ctx.method, ok: false, reason: 'method not allowed' })) return;
      return ctx.reject(['publickey']);
    }
    // A jump's inner connection belongs to the outer connection's user, whatever its login says.
    const jump = this.#jump;
    const routing = jump ? innerRoute(jump.user, jump.target, ctx.username) : route(svc.config, ctx.username);
    const user = jump ? jump.user : routing.ok ? routing.route.user : routing.user;
    const decision = decidePublicKey(svc.provider, user ? svc.allowList.keysFor(user.name) : [], {
      algo: ctx.key.algo,
      blob: ctx.key.data,
      signature: ctx.signature,
      signedData: ctx.blob,
      hashAlgo: ctx.hashAlgo,
    });
    switch (decision.kind) {
      case 'key-ok':
        // No signature: ssh2's accept() answers SSH_MSG_USERAUTH_PK_OK here, not success (auth.ts).
        if (ctx.signature !== undefined) return ctx.reject(['publickey']);
        return ctx.accept();
      case 'accept':
        if (!user) return ctx.reject(['publickey']); // cannot happen: no user, no keys
        this.#authenticated = { routing, fingerprint: decision.key.fingerprint, user };
        return ctx.accept();
      case 'reject':
        if (
          this.authFailed({
            method: 'publickey',
            ok: false,
            key_fingerprint: decision.fingerprint,
            reason: user ? decision.reason : 'unknown user',
          })
        )
          return;
        return ctx.reject(['publickey']);
    }
  }

  /**
   * Records a refused attempt. Returns true when it was the last one allowed: the connection has then
   * been ended with "Too many authentication failures", as sshd does (its userauth_finish disconnects
   * on the MaxAuthTries-th failure instead of answering it), and the caller must not reply.
   */
  private authFailed(record: AuthRecord): boolean {
    this.#failedAuth.push(record);
    this.#preAuth?.authFailed();
    const last = this.#failedAuth.length >= this.#svc.limits.maxAuthTries;
    this.#svc.logger.warn(
      last ? 'authentication refused; too many failures, disconnecting' : 'authentication refused',
      {
        ...this.#logContext,
        ...record,
        failures: this.#failedAuth.length,
      },
    );
    if (last) {
      this.#endReason = 'too many authentication failures';
      disconnect(this.#conn, DISCONNECT.PROTOCOL_ERROR, 'Too many authentication failures');
      this.cut(this.#endReason);
    }
    return last;
  }

  private onAuthenticated(): void {
    const svc = this.#svc;
    const auth = this.#authenticated;
    if (!auth) return this.cut('ready without authentication'); // cannot happen: only 'accept' succeeds
    this.#preAuth?.authenticated();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    const { routing } = auth;
    const login = splitLogin(this.#login);
    const r: Route | undefined = routing.ok ? routing.route : undefined;
    // The authenticated gate user; on a jump's inner connection, the jump fixes the target.
    const gateUser = auth.user.name;
    const targetName = r?.target.name ?? this.#jump?.target.name ?? printableLogin(login.targetName ?? '');
    Object.assign(this.#logContext, { user: gateUser, target: targetName });

    let recorder: SessionRecorder | undefined;
    let openFailure: Error | undefined;
    try {
      recorder = svc.log.openSession();
      this.#logContext.session = Buffer.from(recorder.sessionId).toString('hex');
      this.#jump?.onInnerSession(this.#logContext.session as string);
    } catch (err) {
      openFailure = err as Error;
    }
    const recording = new SessionRecording(
      recorder,
      svc.logger,
      this.#logContext,
      (err) => this.cut(`recording failed: ${err.message}`),
      svc.unlogged,
    );
    this.#recording = recording;
    if (r) {
      recording.setMode(r.target.on_record_failure);
      recording.setInputForwarding(r.target.forward_input);
      if (r.target.on_record_failure === 'fail-open') {
        svc.logger.warn(
          `target ${r.target.name} is fail-open: this session continues if recording fails`,
          this.#logContext,
        );
      }
    }
    if (openFailure) {
      if (recording.mode === 'fail-open') recording.fail(openFailure);
      else
        this.#refusal = new GateError(
          'RECORDING_FAILED',
          'session recording is unavailable; refusing (fail-closed)',
        );
    }

    recording.record(RecordType.SESSION_START, {
      user: r?.remoteUser ?? '',
      target: targetName,
      client: this.#client,
      gate_user: gateUser,
      target_host: r?.target.host ?? '',
      target_port: r?.target.port ?? 0,
    });
    for (const failed of this.#failedAuth) recording.record(RecordType.AUTH_RESULT, { ...failed });
    recording.record(RecordType.AUTH_RESULT, {
      method: 'publickey',
      ok: true,
      key_fingerprint: auth.fingerprint,
    });
    svc.logger.info('user authenticated', { ...this.#logContext, key_fingerprint: auth.fingerprint });

    if (!routing.ok && !this.#refusal) {
      this.#refusal = new GateError(routing.refusal.code, routing.refusal.message);
      if (routing.refusal.code === 'TARGET_DENIED') {
        recording.record(RecordType.ALERT, {
          rule: 'routing.denied',
          severity: 'warning',
          message: routing.refusal.message,
        });
      }
    }
    if (this.#refusal || !r) {
      const refusal = this.#refusal ?? new GateError('UPSTREAM_FAILED', 'no route');
      this.#upstream = Promise.reject(refusal);
      this.#upstream.catch(() => undefined);
      if (refusal.code === 'TARGET_REQUIRED') {
        // `ssh -J ops@gate web1` logs in without a target: only a session channel is refused. A connection
        // that opens nothing is still hung up after the grace time.
        svc.logger.info('no route: jumps only', { ...this.#logContext, reason: refusal.message });
        this.timer(() => {
          if (this.#tunnels.size === 0) this.cut(`refused: ${refusal.message}`);
        }, svc.limits.refusalGraceMs);
        return;
      }
      svc.logger.warn('session refused', { ...this.#logContext, reason: refusal.message });
      this.#endReason = `refused: ${refusal.message}`;
      this.timer(() => this.cut(this.#endReason), svc.limits.refusalGraceMs);
      return;
    }

    // The upstream connection starts with the first channel that needs it (upstream()): a connection
    // used only for ProxyJump never logs in to this target.
    this.#route = r;
  }

  /** The upstream connection, started on first use; undefined before authentication. */
  private upstream(): Promise<UpstreamClient> | undefined {
    if (!this.#upstream && this.#route) {
      this.#upstream = this.connectUpstream(this.#route);
      this.#upstream.catch(() => undefined);
    }
    return this.#upstream;
  }

  private async connectUpstream(r: Route): Promise<UpstreamClient> {
    const svc = this.#svc;
    const recording = this.#recording;
    let holdsSocket = false;
    try {
      if (!svc.upstreamSockets.acquire())
        throw new GateError(
          'UPSTREAM_FAILED',
          'the gate is at its connection limit (file descriptors); try again later',
        );
      holdsSocket = true;
      const client = await connectUpstream({
        provider: svc.provider,
        target: r.target,
        remoteUser: r.remoteUser,
        algorithms: svc.upstreamAlgorithms,
        agent: svc.agent,
        timeoutMs: svc.limits.upstreamTimeoutMs,
      });
      if (this.#closed) {
        client.end();
        throw new GateError('UPSTREAM_FAILED', 'the client has gone');
      }
      this.#upstreamClient = client;
      client.on('close', () => {
        if (holdsSocket) svc.upstreamSockets.release();
        holdsSocket = false;
        this.onUpstreamGone();
      });
      svc.logger.info('connected to target', { ...this.#logContext, remote_user: r.remoteUser });
      return client;
    } catch (err) {
      if (holdsSocket) svc.upstreamSockets.release();
      holdsSocket = false;
      const { error: e, alert } = upstreamFailure(err, r.target);
      this.#endReason = `refused: ${e.message}`;
      if (alert) {
        recording?.record(RecordType.ALERT, {
          rule: alert.rule,
          severity: alert.severity,
          message: e.message,
        });
        svc.logger.error(`ALERT: ${e.message}`, { ...this.#logContext, alert: alert.rule });
      } else {
        svc.logger.warn('cannot connect to target', { ...this.#logContext, code: e.code, reason: e.message });
      }
      this.timer(() => this.cut(this.#endReason), svc.limits.refusalGraceMs);
      throw e;
    }
  }

  // --- channels ------------------------------------------------------------------------------------

  private onSession(accept: AcceptConnection<Session>, reject: RejectConnection): void {
    const recording = this.#recording;
    if (!recording || this.#closed) return reject();
    const upstream = this.upstream();
    if (!upstream) return reject();
    if (this.jumpsOnly && this.#refusal && this.#endReason === 'client disconnected')
      this.#endReason = `refused: ${this.#refusal.message}`;
    const channel = this.#nextChannel++;
    if (!recording.record(RecordType.CHANNEL_OPEN, { channel, type: 'session' })) {
      // Nothing can be recorded. A live session is being cut; a refused one is still told why.
      if (this.#refusal) return refuseSession(accept(), this.#refusal.message, () => this.maybeHangUp());
      return reject();
    }
    const session = accept();
    const bridge: SessionBridge = new SessionBridge(
      {
        channel,
        recording,
        upstream: () => upstream,
        refuseForward: (kind, details) => this.refuseForward(kind, details),
        logger: this.#svc.logger,
        logContext: this.#logContext,
        onClosed: () => {
          this.#bridges.delete(bridge);
          this.maybeHangUp();
        },
      },
      session,
    );
    this.#bridges.add(bridge);
  }

  private refuseForward(kind: string, details: Record<string, unknown>): void {
    const fields = { reason: 'policy', ...details };
    this.#recording?.record(RecordType.FORWARD, { kind, allowed: false, ...fields });
    this.#svc.logger.warn('forwarding refused', { ...this.#logContext, kind, ...fields });
  }

  /** After a refusal, or once the target has gone, the connection ends with its last channel. */
  private maybeHangUp(): void {
    if (this.#bridges.size > 0 || this.#tunnels.size > 0) return;
    if (this.#refusal || this.#upstreamGone || this.#endReason.startsWith('refused')) {
      setImmediate(() => this.#conn.end());
    }
  }

  private onUpstreamGone(): void {
    this.#upstreamGone = true;
    if (this.#closed) return;
    this.#endReason = 'target closed the connection';
    this.maybeHangUp();
    // Channels get their close from ssh2 and finish on their own; do not wait for a stuck client forever.
    this.timer(() => this.cut(this.#endReason), 5_000);
  }

  // --- the end -------------------------------------------------------------------------------------

  /** Ends both legs now; `onClose` records SESSION_END. */
  private cut(reason: string): void {
    if (this.#closed) return;
    this.#endReason = this.#endReason === 'client disconnected' ? reason : this.#endReason;
    for (const b of this.#bridges) b.abort();
    this.#tunnels.abortAll();
    this.#upstreamClient?.end();
    this.#conn.end();
    // ssh2's end() half-closes; a client that does not close its side is cut loose shortly after.
    const sock = (this.#conn as unknown as { _sock?: Socket })._sock;
    const t = setTimeout(() => sock?.destroy(), 500);
    t.unref();
  }

  private onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    for (const b of this.#bridges) b.abort();
    this.#bridges.clear();
    this.#tunnels.abortAll();
    this.#tunnels.clear();
    this.#upstreamClient?.end();
    this.#recording?.end(this.#endReason);
    if (this.#recording)
      this.#svc.logger.info('session ended', { ...this.#logContext, reason: this.#endReason });
    this.#onGone();
    this.#resolveClosed();
  }

  private timer(fn: () => void, ms: number): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.#timers.push(t);
  }
}
