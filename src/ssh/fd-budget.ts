/**
 * The file-descriptor budget: how many sockets the gate may hold so that the store, its checkpoints,
 * the operational log and a token never meet EMFILE.
 *
 * Node raises its soft RLIMIT_NOFILE to the hard limit at start (node.cc, PlatformInit), so the soft
 * limit read here is already the highest the process may use; we read both from /proc/self/limits, and
 * count the descriptors open now from /proc/self/fd. Sockets get what is left after a reserve: a client
 * connection holds one socket and, once routed, one upstream socket (a ProxyJump's inner connection has
 * no socket of its own, but its upstream has one), so half the socket budget goes to client connections
 * and the rest is kept for their upstream legs.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface FdLimits {
  readonly soft: number;
  readonly hard: number;
  /** Descriptors open when measured. */
  readonly open: number;
}

export interface FdBudget extends FdLimits {
  /** Kept for the store, the logs, temporary files, DNS lookups and a PKCS#11 module. */
  readonly reserve: number;
  /** Sockets the gate may hold, client and upstream legs together. */
  readonly sockets: number;
  /** Client connections it may hold: half of `sockets`. */
  readonly clientConnections: number;
}

/** The reserve: enough for everything but sockets, with room for a module that opens a few files. */
export const FD_RESERVE = 64;

/** Reads this process's RLIMIT_NOFILE and open descriptors (Linux /proc). */
export function readFdLimits(): FdLimits {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const num = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  return {
    soft: num(m?.[1]),
    hard: num(m?.[2]),
    // readdirSync itself holds one descriptor while it reads.
    open: readdirSync('/proc/self/fd').length - 1,
  };
}

export function fdBudget(limits: FdLimits, reserve = FD_RESERVE): FdBudget {
  const soft = Number.isFinite(limits.soft) ? limits.soft : 1_048_576;
  const sockets = Math.max(0, soft - limits.open - reserve);
  return { ...limits, reserve, sockets, clientConnections: Math.floor(sockets / 2) };
}
