/**
 * The gate: an ssh2 Server on the client leg, composing auth, routing, the upstream leg and the bridge
 * (connection.ts) for every client connection, all recorded into one SealedLog. What the connections share
 * (GateServices, the limits and their defaults) is in services.ts.
 *
 * - The host key is ECDSA (`listen.host_key`), loaded through the provider: ssh2 would add ssh-rsa
 *   (SHA-1) for an RSA key.
 * - Explicit algorithm lists on both legs (algorithms.ts); the host key's algorithm must be in the
 *   client leg's list, or no client could connect.
 * - Protocol garbage, bad version strings and sockets dropped mid-handshake end that connection only:
 *   every ssh2 connection and the server have an `error` listener.
 * - When the log fails (`recordingFailed`, wired to SealedLog's onFailure), fail-closed sessions end at
 *   once and an ALERT goes to the operational log.
 * - Its own TCP listener (listener.ts) judges every connection at accept, before ssh2 sees a byte:
 *   the pre-authentication limits (admission.ts: max_startups, per-source caps and penalties), the
 *   login grace time from accept, and a cap on connections from the file-descriptor budget
 *   (fd-budget.ts), so that a flood can never take the descriptors the store needs.
 * - ProxyJump: a jump channel's stream is handed to the same Server (`injectSocket`, which takes any
 *   duplex), so the inner SSH connection gets the gate's host key, algorithms and a GateConnection of its
 *   own. ssh2 reports the new connection only once the client's version line has arrived, with the stream
 *   as the connection's socket; the jump's origin is found again by that stream.
 */
import ssh2 from 'ssh2';
import type { ClientInfo, Connection } from 'ssh2';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'winston';
import { readFileSync } from 'node:fs';
import {
  Admission,
  defaultMaxWaiting,
  maxWaitingProblem,
  parseMaxStartups,
  type AdmissionStats,
} from './admission.js';
import { fdBudget, readFdLimits, type FdBudget } from './fd-budget.js';
import { GateListener } from './listener.js';
import { AddressList, parseNetBlockSize } from './source-address.js';
import type { Config } from '../config/schema.js';
import type { CryptoProvider } from '../crypto/index.js';
import type { SealedLog } from '../seal/log.js';
import { legAlgorithms, toSsh2 } from './algorithms.js';
import { AllowList } from './auth.js';
import { GateConnection } from './connection.js';
import { GateError } from './errors.js';
import { gateHostKey } from './host-key.js';
import { parseKnownHosts, pinnedKeys } from './known-hosts.js';
import { ProviderAgent } from './provider-agent.js';
import {
  DEFAULT_LIMITS,
  type GateLimits,
  type GateServices,
  type JumpOrigin,
  type UserSlots,
} from './services.js';
import { UnloggedWindow } from './unlogged.js';

export interface GateOptions {
  readonly config: Config;
  readonly provider: CryptoProvider;
  readonly log: SealedLog;
  readonly logger: Logger;
  /** Overrides for tests; defaults in DEFAULT_LIMITS. */
  readonly limits?: Partial<GateLimits>;
  /** Listen on this port instead of `listen.port` (tests pass 0 for a free port). */
  readonly port?: number;
}

export interface Gate {
  readonly host: string;
  readonly port: number;
  /** The host key as an OpenSSH public key line, for clients' known_hosts. */
  readonly hostKeyLine: string;
  /** Client connections open now. */
  readonly connections: number;
  /** The file-descriptor budget measured at start. */
  readonly fdBudget: FdBudget;
  /** Admission counts: connections, startups, refusals by reason, penalties. */
  admissionStats(): AdmissionStats;
  /** The sealed log failed: wire SealedLog's onFailure here. */
  recordingFailed(err: Error): void;
  /** Stops listening and ends every session (SESSION_END "gate stopping"). The log stays open. */
  close(reason?: string): Promise<void>;
}

export async function startGate(opts: GateOptions): Promise<Gate> {
  const { config, provider, log, logger } = opts;
  const policy = provider.policy;

  const hostKey = await provider.loadPrivateKey(config.listen.host_key);
  // The same check, and words, as the start-up checks that `config check` and `serve` run.
  const gateKey = gateHostKey(provider, config, hostKey);
  if ('problem' in gateKey) {
    throw new GateError('GATE_CONFIG', `listen.host_key (${config.listen.host_key}): ${gateKey.problem}`);
  }
  const hostKeyPem = gateKey.pem;
  const clientLeg = legAlgorithms(policy, config, 'client_leg');
  const upstreamLeg = legAlgorithms(policy, config, 'upstream_leg');
  const agent = new ProviderAgent(provider, await provider.loadPrivateKey(config.upstream.client_key));

  const allowList = AllowList.load(provider, config.users);
  for (const p of allowList.problems)
    logger.warn('authorized key skipped', { source: p.source, reason: p.message });
  checkKnownHosts(config, logger);

  const limits = {
    ...DEFAULT_LIMITS,
    loginGraceMs: config.limits.login_grace_seconds * 1000,
    maxAuthTries: config.limits.max_auth_tries,
    ...opts.limits,
  };
  const budget = fdBudget(readFdLimits());
  const admission = new Admission(admissionPolicy(config, budget));
  logger.info('file descriptors', {
    soft_limit: budget.soft,
    hard_limit: budget.hard,
    open: budget.open,
    reserved: budget.reserve,
    socket_budget: budget.sockets,
    max_connections: admission.policy.maxConnections,
  });
  if (budget.soft < budget.hard)
    logger.warn('the soft file-descriptor limit is below the hard limit', {
      soft: budget.soft,
      hard: budget.hard,
    });
  let upstreamSockets = 0;
  const live = new Set<GateConnection>();
  let failure: Error | undefined;
  /** Jump streams handed to the server, until ssh2 reports their connection. */
  const jumps = new WeakMap<Duplex, JumpOrigin>();
  const services: GateServices = {
    config,
    provider,
    log,
    logger,
    allowList,
    agent,
    upstreamAlgorithms: upstreamLeg,
    limits,
    upstreamSockets: {
      acquire(): boolean {
        if (admission.connections + upstreamSockets >= budget.sockets) return false;
        upstreamSockets++;
        return true;
      },
      release(): void {
        upstreamSockets--;
      },
    },
    jumpSlots: userSlots(config.limits.per_user_max_jumps),
    unlogged: new UnloggedWindow(config.recording.max_unlogged_bytes, () => {
      log.flush().catch(() => undefined); // a failure reaches every session through onFailure
    }),
    injectJump(stream: Duplex, origin: JumpOrigin): void {
      jumps.set(stream, origin);
      // Typed as a Socket, but ssh2 uses only the stream (remoteAddress and setNoDelay are optional there).
      server.injectSocket(stream as Socket);
    },
  };

  const server = new ssh2.Server(
    {
      hostKeys: [hostKeyPem],
      algorithms: toSsh2(clientLeg),
      ident: 'sealgate',
      ...(config.ssh?.banner ? { banner: config.ssh.banner } : {}),
    },
    (conn: Connection, info: ClientInfo) => {
      // ssh2 keeps the socket (here: maybe a jump's stream) as `_sock`; it has no public accessor.
      const sock = (conn as unknown as { _sock?: Duplex })._sock;
      const jump = sock ? jumps.get(sock) : undefined;
      if (!jump && !(sock instanceof Socket)) {
        // Not a TCP socket and not a known jump stream (ssh2 changed?): never let it run
        // as an ordinary connection, without the jump's fixed user and target.
        logger.error('an injected connection has no jump origin; closing it');
        conn.on('error', () => undefined);
        conn.end();
        return;
      }
      const preAuth = sock instanceof Socket ? listener.reportFor(sock) : undefined;
      const gc = new GateConnection(services, conn, info, () => live.delete(gc), jump, preAuth);
      live.add(gc);
      if (failure) gc.recordingFailed(failure);
    },
  );
  server.on('error', (err: Error) => logger.error('listener error', { error: err.message }));

  const host = config.listen.host;
  const listener = new GateListener({
    host,
    port: opts.port ?? config.listen.port,
    admission,
    loginGraceMs: limits.loginGraceMs,
    logger,
    onSocket: (socket) => server.injectSocket(socket),
  });
  let port: number;
  try {
    ({ port } = await listener.listen());
  } catch (err) {
    throw new GateError(
      'GATE_CONFIG',
      `cannot listen on ${host}:${opts.port ?? config.listen.port}: ${(err as Error).message}`,
    );
  }

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    hostKeyLine: hostKey.publicKey.openssh(),
    get connections() {
      return live.size;
    },
    fdBudget: budget,
    admissionStats: () => admission.stats(),
    recordingFailed(err: Error): void {
      if (failure) return;
      failure = err;
      logger.error('ALERT: the sealed log failed; fail-closed sessions are being ended', {
        alert: 'recording.failed',
        error: err.message,
        live_connections: live.size,
      });
      for (const c of [...live]) c.recordingFailed(err);
    },
    close(reason = 'gate stopping'): Promise<void> {
      closing ??= (async () => {
        const stopped = listener.close();
        const gone = [...live].map((c) => c.closed);
        for (const c of [...live]) c.terminate(reason);
        await Promise.race([
          Promise.all([stopped, ...gone]),
          new Promise((r) => setTimeout(r, 3_000).unref()),
        ]);
        // Connections that never reached ssh2 (no version line yet) have no session to end.
        listener.destroyAll();
      })();
      return closing;
    },
  };
}

/** Slots per user name, at most `max` each; a user holding none has no entry. */
function userSlots(max: number): UserSlots {
  const held = new Map<string, number>();
  return {
    max,
    acquire(user: string): boolean {
      const n = held.get(user) ?? 0;
      if (n >= max) return false;
      held.set(user, n + 1);
      return true;
    },
    release(user: string): void {
      const n = (held.get(user) ?? 0) - 1;
      if (n > 0) held.set(user, n);
      else held.delete(user);
    },
  };
}

/** The admission policy from `limits.*`, with the connection cap kept within the fd budget. */
function admissionPolicy(config: Config, budget: FdBudget): ConstructorParameters<typeof Admission>[0] {
  const l = config.limits;
  const maxStartups = parseMaxStartups(l.max_startups);
  if (typeof maxStartups === 'string')
    throw new GateError('GATE_CONFIG', `limits.max_startups: ${maxStartups}`);
  if (budget.clientConnections < 1)
    throw new GateError(
      'GATE_CONFIG',
      `no file descriptors left for connections: the limit is ${budget.soft}, ${budget.open} are open and ${budget.reserve} are reserved; raise it (ulimit -n, or LimitNOFILE= in the systemd unit)`,
    );
  if (l.max_connections !== undefined && l.max_connections > budget.clientConnections)
    throw new GateError(
      'GATE_CONFIG',
      `limits.max_connections is ${l.max_connections}, but the file-descriptor limit (${budget.soft}, ${budget.open} open, ${budget.reserve} reserved) allows ${budget.clientConnections} (two sockets each); raise the limit (ulimit -n, or LimitNOFILE= in the systemd unit) or lower max_connections`,
    );
  const maxConnections = l.max_connections ?? budget.clientConnections;
  const waitingProblem =
    l.max_waiting_connections === undefined
      ? undefined
      : maxWaitingProblem(
          l.max_waiting_connections,
          maxConnections,
          l.max_connections === undefined ? 'from the file-descriptor budget' : 'configured',
        );
  if (waitingProblem) throw new GateError('GATE_CONFIG', `limits.max_waiting_connections ${waitingProblem}`);
  const p = l.penalties;
  return {
    maxConnections,
    maxStartups,
    perSourceMaxStartups: l.per_source_max_startups,
    perSourceMaxConnections: l.per_source_max_connections,
    maxWaiting: l.max_waiting_connections ?? defaultMaxWaiting(maxConnections),
    netBlockSize: parseNetBlockSize(l.per_source_net_block_size),
    penalties: {
      enabled: p.enabled,
      authfailSeconds: p.authfail_seconds,
      noauthSeconds: p.noauth_seconds,
      graceExceededSeconds: p.grace_exceeded_seconds,
      minSeconds: p.min_seconds,
      maxSeconds: p.max_seconds,
      exempt: new AddressList(p.exempt),
    },
  };
}

/** Start-up warnings for targets whose pinned keys cannot work; connections to them fail closed. */
function checkKnownHosts(config: Config, logger: Logger): void {
  for (const t of config.targets) {
    let text: string;
    try {
      text = readFileSync(t.known_hosts, 'utf8');
    } catch (err) {
      logger.warn('target has no readable known_hosts; sessions to it will be refused', {
        target: t.name,
        known_hosts: t.known_hosts,
        error: (err as NodeJS.ErrnoException).code,
      });
      continue;
    }
    const known = parseKnownHosts(text);
    for (const p of known.problems)
      logger.warn('known_hosts line ignored', {
        target: t.name,
        known_hosts: t.known_hosts,
        line: p.line,
        reason: p.message,
      });
    if (pinnedKeys(known, t.host, t.port).pinned.length === 0) {
      logger.warn('no pinned host key for target; sessions to it will be refused', {
        target: t.name,
        known_hosts: t.known_hosts,
      });
    }
  }
}
