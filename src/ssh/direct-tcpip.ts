/**
 * A connection's `direct-tcpip` channels (RFC 4254 §7.2): ProxyJumps and port forwards.
 *
 * - To a configured target's name (jump.ts decides): a ProxyJump. The channel carries an inner SSH
 *   connection, handed to the gate's ssh2 Server (GateServices.injectJump), which runs it as a
 *   GateConnection of its own, its user and target fixed by this connection.
 * - Elsewhere: a port forward, opened on the upstream connection when the routed target allows it
 *   (port-forward.ts); otherwise refused, with the same answer as any refusal, so a client learns nothing
 *   about the targets.
 *
 * Every channel is recorded as FORWARD open and close (docs/FORMAT.md 3.2.3). The live ones are kept here
 * so that the connection (connection.ts) can cut them and knows when its last channel has gone.
 */
import type { AcceptConnection, RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { Target, User } from '../config/schema.js';
import { RecordType } from '../seal/format/types.js';
import { decideDirectTcpip } from './jump.js';
import { startPortForward, type DirectTcpipDestination } from './port-forward.js';
import type { SessionRecording } from './recording.js';
import type { Routing } from './routing.js';
import type { GateServices, JumpOrigin } from './services.js';
import type { UpstreamClient } from './upstream.js';

/** What the channels need from their connection (connection.ts). */
export interface DirectTcpipContext {
  readonly svc: GateServices;
  /** The client's `ip:port`. */
  readonly client: string;
  readonly logContext: Record<string, unknown>;
  /** Set on a jump's inner connection. */
  readonly jump: JumpOrigin | undefined;
  /** The connection's recording; undefined before authentication. */
  recording(): SessionRecording | undefined;
  /** The authenticated user and their routing; undefined before authentication. */
  authenticated(): { readonly user: User; readonly routing: Routing } | undefined;
  /** The login was refused outright (not a plain login kept open for jumps): nothing may be opened. */
  refused(): boolean;
  /** The client connection has closed. */
  isClosed(): boolean;
  /** The next channel number in the recording. */
  nextChannel(): number;
  /** The upstream connection, started on first use; undefined before authentication. */
  upstream(): Promise<UpstreamClient> | undefined;
  /** Records and logs a refused forwarding request. */
  refuseForward(kind: string, details: Record<string, unknown>): void;
  /** A channel has closed: the connection may end with its last one. */
  onTunnelClosed(): void;
}

/** A live `direct-tcpip` channel (a jump or a port forward); `abort` closes it and records its end. */
interface LiveTunnel {
  abort(): void;
}

export class DirectTcpipChannels {
  readonly #ctx: DirectTcpipContext;
  readonly #tunnels = new Set<LiveTunnel>();

  constructor(ctx: DirectTcpipContext) {
    this.#ctx = ctx;
  }

  /** Channels open now. */
  get size(): number {
    return this.#tunnels.size;
  }

  /** Closes every channel now; each records its end. */
  abortAll(): void {
    for (const t of [...this.#tunnels]) t.abort();
  }

  /** Forgets every channel (the connection has closed). */
  clear(): void {
    this.#tunnels.clear();
  }

  /** The client asked for a `direct-tcpip` channel: a jump, an allowed port forward, or a refusal. */
  open(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, i: TcpipRequestInfo): void {
    const ctx = this.#ctx;
    const details: DirectTcpipDestination = {
      host: i.destIP,
      port: i.destPort,
      origin_host: i.srcIP,
      origin_port: i.srcPort,
    };
    const auth = ctx.authenticated();
    if (!auth || !ctx.recording() || ctx.isClosed()) return reject();
    // A refused login (unknown target, recording down, …) may do nothing; a plain one may jump.
    const refused = ctx.refused();
    const decision = refused
      ? { kind: 'forward' as const }
      : decideDirectTcpip(ctx.svc.config, auth.user, i.destIP, i.destPort, ctx.jump !== undefined);
    switch (decision.kind) {
      case 'jump':
        return this.openJump(accept, reject, auth.user, decision.target, details);
      case 'jump-refused':
        // The client sees the same refusal as for any destination: it learns nothing about targets.
        ctx.refuseForward('direct-tcpip', {
          ...details,
          jump: true,
          target: decision.target.name,
          reason: decision.reason,
        });
        return reject();
      case 'forward': {
        const r = auth.routing.ok && !refused ? auth.routing.route : undefined;
        if (r?.target.allow_port_forwarding) return this.openForward(accept, reject, details);
        ctx.refuseForward('direct-tcpip', { ...details });
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
    details: DirectTcpipDestination,
  ): void {
    const ctx = this.#ctx;
    // Each jump's inner connection holds an upstream socket: one user may not take the gate's budget.
    if (!ctx.svc.jumpSlots.acquire(user.name)) {
      ctx.refuseForward('direct-tcpip', {
        ...details,
        jump: true,
        target: target.name,
        reason: 'per-user-jumps',
        limit: ctx.svc.jumpSlots.max,
      });
      return reject();
    }
    let holdsSlot = true;
    const releaseSlot = () => {
      if (holdsSlot) ctx.svc.jumpSlots.release(user.name);
      holdsSlot = false;
    };
    const recording = ctx.recording();
    const channel = ctx.nextChannel();
    const opened = {
      kind: 'direct-tcpip',
      allowed: true,
      channel,
      ...details,
      jump: true,
      target: target.name,
    };
    if (!recording?.record(RecordType.FORWARD, { ...opened, event: 'open' })) {
      releaseSlot();
      return reject();
    }
    const stream = accept();
    if (!stream) return releaseSlot();
    stream.on('error', () => undefined);
    ctx.svc.logger.info('jump opened', { ...ctx.logContext, jump_target: target.name, channel });
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
      releaseSlot();
      this.#tunnels.delete(tunnel);
      recording.record(RecordType.FORWARD, {
        ...opened,
        event: 'close',
        ...(innerSession ? { inner_session: innerSession } : {}),
      });
      ctx.svc.logger.info('jump closed', { ...ctx.logContext, jump_target: target.name, channel });
      ctx.onTunnelClosed();
    };
    stream.on('close', finish);
    this.#tunnels.add(tunnel);
    ctx.svc.injectJump(stream, {
      user,
      target,
      client: ctx.client,
      outerSession: String(ctx.logContext.session ?? ''),
      onInnerSession: (id) => (innerSession = id),
    });
  }

  /** `ssh -L`/`-W` to a target that allows it: a channel to the same destination from the target. */
  private openForward(
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    details: DirectTcpipDestination,
  ): void {
    const ctx = this.#ctx;
    const recording = ctx.recording();
    const upstream = ctx.upstream();
    const channel = ctx.nextChannel();
    const opened = { kind: 'direct-tcpip', allowed: true, channel, ...details };
    if (!upstream || !recording?.record(RecordType.FORWARD, { ...opened, event: 'open' })) return reject();
    ctx.svc.logger.info('port forward opened', { ...ctx.logContext, channel, ...details });
    const forward: LiveTunnel = startPortForward({
      upstream,
      destination: details,
      accept: () => (ctx.isClosed() ? undefined : accept()),
      reject,
      onClosed: (totals, error) => {
        this.#tunnels.delete(forward);
        const counts = { bytes_in: totals.bytesIn, bytes_out: totals.bytesOut, ...(error ? { error } : {}) };
        recording.record(RecordType.FORWARD, { ...opened, event: 'close', ...counts });
        ctx.svc.logger.info('port forward closed', { ...ctx.logContext, channel, ...counts });
        ctx.onTunnelClosed();
      },
    });
    this.#tunnels.add(forward);
  }
}
