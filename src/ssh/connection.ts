/**
 * One client connection through the gate: authentication, routing, the upstream connection, its session
 * channels (bridge.ts), refused forwarding, and its recording (one SessionRecorder per connection).
 *
 * Order of events:
 * 1. `publickey` attempts are decided by auth.ts. Failures go to the operational log at once; nothing is
 *    sealed for a connection that never authenticates, so strangers cannot make the gate write segments.
 * 2. On success the session is sealed: SESSION_START, the failed attempts, AUTH_RESULT. Then routing is
 *    applied; a refusal ("unknown target web9") is shown on the first session channel's stderr and the
 *    connection ends. Otherwise the upstream connection starts at once.
 * 3. Each `session` channel is bridged to a channel on the upstream connection.
 * 4. `direct-tcpip` channels: to a configured target's name, a ProxyJump (jump.ts): the channel carries an
 *    inner SSH connection, which gate.ts terminates on the same ssh2 Server, as a GateConnection of its own
 *    (with `jump` set: its user and target are fixed by this connection). Elsewhere, a port forward, opened
 *    on the upstream connection when the routed target allows it (port-forward.ts); otherwise refused.
 *    A plain login that routes nowhere (TARGET_REQUIRED) is kept open for jumps; its session channels are
 *    told the refusal.
 * 5. When either side goes, the other is ended, and SESSION_END (FINAL) closes the recording.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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
import type { Logger } from 'winston';
import type { Config, Target, User } from '../config/schema.js';
import type { CryptoProvider, SshAlgorithms } from '../crypto/index.js';
import { RecordType } from '../seal/format/types.js';
import type { SealedLog } from '../seal/log.js';
import type { SessionRecorder } from '../seal/session-recorder.js';
import { decidePublicKey, type AllowList } from './auth.js';
import { refuseSession, SessionBridge } from './bridge.js';
import { GateError, printable } from './errors.js';
import { decideDirectTcpip, innerRoute } from './jump.js';
import { startPortForward } from './port-forward.js';
import type { ProviderAgent } from './provider-agent.js';
import { SessionRecording } from './recording.js';
import { route, splitLogin, type Route, type Routing } from './routing.js';
import { connectUpstream, describeTarget, type UpstreamClient } from './upstream.js';

/** What every connection shares: built once by gate.ts. */
export interface GateServices {
  readonly config: Config;
  readonly provider: CryptoProvider;
  readonly log: SealedLog;
  readonly logger: Logger;
  readonly allowList: AllowList;
  readonly agent: ProviderAgent;
  readonly upstreamAlgorithms: SshAlgorithms;
  readonly limits: GateLimits;
  /** Terminates a jump's inner SSH connection, carried by `stream`, on the gate's ssh2 Server (gate.ts). */
  readonly injectJump: (stream: Duplex, origin: JumpOrigin) => void;
}

/** What a jump's inner connection inherits from the outer connection that opened the jump channel. */
export interface JumpOrigin {
  /** The outer connection's authenticated gate user. */
  readonly user: User;
  /** The target the jump's destination named. */
  readonly target: Target;
  /** The outer connection's client `ip:port`: the inner session's `client`. */
  readonly client: string;
  /** The outer session's id (hex), for the operational log. */
  readonly outerSession: string;
  /** Called once the inner session is recorded, with its id (hex). */
  readonly onInnerSession: (sessionId: string) => void;
}

/** A live `direct-tcpip` channel (a jump or a port forward); `abort` closes it and records its end. */
interface LiveTunnel {
  abort(): void;
}

type DirectTcpipDetails = {
  readonly host: string;
  readonly port: number;
  readonly origin_host: string;
  readonly origin_port: number;
};

export interface GateLimits {
  /** Upstream connect + handshake + login. */
  readonly upstreamTimeoutMs: number;
  /** Time to authenticate, as sshd's LoginGraceTime. */
  readonly loginGraceMs: number;
  /** Refused attempts before the connection is dropped, as sshd's MaxAuthTries. */
  readonly maxAuthTries: number;
  /** After a refusal, how long to wait for a session channel to tell it on before hanging up. */
  readonly refusalGraceMs: number;
}

interface AuthRecord {
  readonly method: string;
  readonly ok: boolean;
  readonly key_fingerprint?: string;
  readonly reason?: string;
}

/** Upstream failures that raise an ALERT (sealed, and in the operational log), with their severity. */
const ALERTING_UPSTREAM_FAILURES: Partial<Record<GateError['code'], 'critical' | 'warning'>> = {
  HOST_KEY_MISMATCH: 'critical',
  HOST_KEY_UNPINNED: 'critical',
  NO_COMMON_ALGORITHM: 'warning',
};

export class GateConnection {
  readonly #svc: GateServices;
  readonly #conn: Connection;
  readonly #client: string;
  readonly #onGone: () => void;
  readonly #logContext: Record<string, unknown>;
  readonly #failedAuth: AuthRecord[] = [];
  readonly #bridges = new Set<SessionBridge>();
  readonly #tunnels = new Set<LiveTunnel>();
  /** Set on a jump's inner connection. */
  readonly #jump: JumpOrigin | undefined;
  #authenticated: { routing: Routing; fingerprint: string; user: User } | undefined;
  /** A plain login that routes nowhere: no upstream, but jumps may be opened (jump.ts). */
  #jumpsOnly = false;
  /** The SSH user name as the client sent it (`ops+web1`); ssh2 refuses a change between attempts. */
  #login = '';
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

  constructor(svc: GateServices, conn: Connection, info: ClientInfo, onGone: () => void, jump?: JumpOrigin) {
    this.#svc = svc;
    this.#conn = conn;
    this.#jump = jump;
    this.#client = jump ? jump.client : `${info.ip}:${info.port}`;
    this.#onGone = onGone;
    this.#logContext = jump
      ? { client: this.#client, jump_from: jump.outerSession }
      : { client: this.#client };
    this.#whenClosed = new Promise((resolve) => (this.#resolveClosed = resolve));

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
        this.onDirectTcpip(accept, reject, i),
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
    this.timer(() => {
      if (!this.#authenticated) this.cut('login grace time over');
    }, svc.limits.loginGraceMs);
  }

  /** Resolves when the client connection has closed and the session is recorded as ended. */
  get closed(): Promise<void> {
    return this.#whenClosed;
  }

  /** The log failed: fail-closed sessions end now; fail-open ones go on, unrecorded (recording.ts). */
  recordingFailed(err: Error): void {
    this.#recording?.fail(err);
  }

  /** Ends the connection now, with SESSION_END `reason` when the log can still take it. */
  terminate(reason: string): void {
    this.#endReason = reason;
    this.#recording?.end(reason);
    this.cut(reason);
  }

  // --- authentication ------------------------------------------------------------------------------

  private authenticate(ctx: AuthContext): void {
    const svc = this.#svc;
    this.#login = ctx.username;
    this.#logContext.login = printable(ctx.username);
    // OpenSSH always tries `none` first, to learn the methods; that is not an attempt worth a record.
    if (ctx.method === 'none') return ctx.reject(['publickey']);
    if (ctx.method !== 'publickey') {
      this.authFailed({ method: ctx.method, ok: false, reason: 'method not allowed' });
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
        this.authFailed({
          method: 'publickey',
          ok: false,
          key_fingerprint: decision.fingerprint,
          reason: user ? decision.reason : 'unknown user',
        });
        return ctx.reject(['publickey']);
    }
  }

  private authFailed(record: AuthRecord): void {
    this.#failedAuth.push(record);
    this.#svc.logger.warn('authentication refused', { ...this.#logContext, ...record });
    if (this.#failedAuth.length >= this.#svc.limits.maxAuthTries) {
      // Let the failure reply go out first.
      setImmediate(() => this.cut('too many authentication failures'));
    }
  }

  private onAuthenticated(): void {
    const svc = this.#svc;
    const auth = this.#authenticated;
    if (!auth) return this.cut('ready without authentication'); // cannot happen: only 'accept' succeeds
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    const { routing } = auth;
    const login = splitLogin(this.#login);
    const r: Route | undefined = routing.ok ? routing.route : undefined;
    // The authenticated gate user; on a jump's inner connection, the jump fixes the target.
    const gateUser = auth.user.name;
    const targetName = r?.target.name ?? this.#jump?.target.name ?? printable(login.targetName ?? '');
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
    const recording = new SessionRecording(recorder, svc.logger, this.#logContext, (err) =>
      this.cut(`recording failed: ${err.message}`),
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
        this.#jumpsOnly = true;
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
    try {
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
      client.on('close', () => this.onUpstreamGone());
      svc.logger.info('connected to target', { ...this.#logContext, remote_user: r.remoteUser });
      return client;
    } catch (err) {
      const e =
        err instanceof GateError
          ? err
          : new GateError('UPSTREAM_FAILED', `${describeTarget(r.target)}: ${(err as Error).message}`);
      this.#endReason = `refused: ${e.message}`;
      // A changed host key may be an attack; a target with no algorithm the policy allows is one that
      // cannot be reached compliantly (in FIPS mode: it offers only non-approved algorithms).
      const severity = ALERTING_UPSTREAM_FAILURES[e.code];
      if (severity) {
        recording?.record(RecordType.ALERT, {
          rule: `upstream.${e.code.toLowerCase()}`,
          severity,
          message: e.message,
        });
        svc.logger.error(`ALERT: ${e.message}`, {
          ...this.#logContext,
          alert: `upstream.${e.code.toLowerCase()}`,
        });
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
    if (this.#jumpsOnly && this.#refusal && this.#endReason === 'client disconnected')
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

  // --- direct-tcpip: jumps and port forwards ----------------------------------------------------------

  private onDirectTcpip(
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    i: TcpipRequestInfo,
  ): void {
    const details: DirectTcpipDetails = {
      host: i.destIP,
      port: i.destPort,
      origin_host: i.srcIP,
      origin_port: i.srcPort,
    };
    const auth = this.#authenticated;
    if (!auth || !this.#recording || this.#closed) return reject();
    // A refused login (unknown target, recording down, …) may do nothing; a plain one may jump.
    const refused = this.#refusal !== undefined && !this.#jumpsOnly;
    const decision = refused
      ? { kind: 'forward' as const }
      : decideDirectTcpip(this.#svc.config, auth.user, i.destIP, i.destPort, this.#jump !== undefined);
    switch (decision.kind) {
      case 'jump':
        return this.openJump(accept, reject, auth.user, decision.target, details);
      case 'jump-refused':
        // The client sees the same refusal as for any destination: it learns nothing about targets.
        this.refuseForward('direct-tcpip', {
          ...details,
          jump: true,
          target: decision.target.name,
          reason: decision.reason,
        });
        return reject();
      case 'forward': {
        const r = auth.routing.ok && !refused ? auth.routing.route : undefined;
        if (r?.target.allow_port_forwarding) return this.openForward(accept, reject, details);
        this.refuseForward('direct-tcpip', { ...details });
        return reject();
      }
    }
  }

  /** ProxyJump: the channel's bytes are an inner SSH connection, terminated on the gate (gate.ts). */
  private openJump(
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    user: User,
    target: Target,
    details: DirectTcpipDetails,
  ): void {
    const recording = this.#recording;
    const channel = this.#nextChannel++;
    const opened = {
      kind: 'direct-tcpip',
      allowed: true,
      channel,
      ...details,
      jump: true,
      target: target.name,
    };
    if (!recording?.record(RecordType.FORWARD, { ...opened, event: 'open' })) return reject();
    const stream = accept();
    if (!stream) return;
    stream.on('error', () => undefined);
    this.#svc.logger.info('jump opened', { ...this.#logContext, jump_target: target.name, channel });
    let innerSession: string | undefined;
    let finished = false;
    const tunnel: LiveTunnel = {
      abort: () => {
        finish();
        stream.destroy();
      },
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      this.#tunnels.delete(tunnel);
      recording.record(RecordType.FORWARD, {
        ...opened,
        event: 'close',
        ...(innerSession ? { inner_session: innerSession } : {}),
      });
      this.#svc.logger.info('jump closed', { ...this.#logContext, jump_target: target.name, channel });
      this.maybeHangUp();
    };
    stream.on('close', finish);
    this.#tunnels.add(tunnel);
    this.#svc.injectJump(stream, {
      user,
      target,
      client: this.#client,
      outerSession: String(this.#logContext.session ?? ''),
      onInnerSession: (id) => (innerSession = id),
    });
  }

  /** `ssh -L`/`-W` to a target that allows it: a channel to the same destination from the target. */
  private openForward(
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    details: DirectTcpipDetails,
  ): void {
    const recording = this.#recording;
    const upstream = this.upstream();
    const channel = this.#nextChannel++;
    const opened = { kind: 'direct-tcpip', allowed: true, channel, ...details };
    if (!upstream || !recording?.record(RecordType.FORWARD, { ...opened, event: 'open' })) return reject();
    this.#svc.logger.info('port forward opened', { ...this.#logContext, channel, ...details });
    const forward: LiveTunnel = startPortForward({
      upstream,
      destination: details,
      accept: () => (this.#closed ? undefined : accept()),
      reject,
      onClosed: (totals, error) => {
        this.#tunnels.delete(forward);
        const counts = { bytes_in: totals.bytesIn, bytes_out: totals.bytesOut, ...(error ? { error } : {}) };
        recording.record(RecordType.FORWARD, { ...opened, event: 'close', ...counts });
        this.#svc.logger.info('port forward closed', { ...this.#logContext, channel, ...counts });
        this.maybeHangUp();
      },
    });
    this.#tunnels.add(forward);
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
    for (const t of [...this.#tunnels]) t.abort();
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
    for (const t of [...this.#tunnels]) t.abort();
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
