/**
 * What the gate (gate.ts) builds once and every client connection (connection.ts) shares: the configured
 * services, the limits, and the hook that terminates a ProxyJump's inner SSH connection on the gate. Kept
 * apart so that neither file imports the other for its types.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'winston';
import type { Config, Target, User } from '../config/schema.js';
import type { CryptoProvider, SshAlgorithms } from '../crypto/index.js';
import type { SealedLog } from '../seal/log.js';
import type { AllowList } from './auth.js';
import type { ProviderAgent } from './provider-agent.js';
import type { UnloggedWindow } from './unlogged.js';

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
  /** Upstream sockets against the file-descriptor budget (fd-budget.ts): false when none is left. */
  readonly upstreamSockets: SocketBudget;
  /** ProxyJumps open per gate user (`limits.per_user_max_jumps`): false when the user has them all. */
  readonly jumpSlots: UserSlots;
  /** The cap on bytes forwarded whose records are not yet durable, shared by every session (unlogged.ts). */
  readonly unlogged: UnloggedWindow;
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

export interface SocketBudget {
  acquire(): boolean;
  release(): void;
}

export interface UserSlots {
  /** The cap: how many one user may hold. */
  readonly max: number;
  acquire(user: string): boolean;
  release(user: string): void;
}

export interface GateLimits {
  /** Upstream connect + handshake + login. */
  readonly upstreamTimeoutMs: number;
  /** Time to authenticate, from TCP accept, as sshd's LoginGraceTime (`limits.login_grace_seconds`). */
  readonly loginGraceMs: number;
  /** Refused attempts before the connection is dropped, as sshd's MaxAuthTries (`limits.max_auth_tries`). */
  readonly maxAuthTries: number;
  /** After a refusal, how long to wait for a session channel to tell it on before hanging up. */
  readonly refusalGraceMs: number;
}

/** Defaults for what the config does not set; loginGraceMs and maxAuthTries come from `limits.*`. */
export const DEFAULT_LIMITS: GateLimits = {
  upstreamTimeoutMs: 10_000,
  loginGraceMs: 120_000,
  maxAuthTries: 6,
  refusalGraceMs: 10_000,
};
