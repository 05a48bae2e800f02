/**
 * Admission of client connections before authentication, modelled on sshd's MaxStartups,
 * PerSourceMaxStartups, PerSourcePenalties and PerSourceNetBlockSize (sshd_config(5)). Pure state: no
 * sockets, no timers; the listener (listener.ts) asks and reports, with an injectable clock and random
 * source so that tests can drive it.
 *
 * Every TCP connection is admitted, or refused with one reason, at accept:
 * 1. `max-connections`: the gate holds `maxConnections` client connections already. This cap comes
 *    from the file-descriptor budget (fd-budget.ts), so no flood can take the descriptors the store needs.
 * 2. `penalty`: the source's block is serving a penalty (below).
 * 3. `per-source-connections`: the source's block holds `perSourceMaxConnections` connections.
 * 4. `max-waiting`: it would wait (below), and `maxWaiting` connections wait already, from all sources.
 * 5. `max-startups`: random early drop over all unauthenticated connections, as sshd's
 *    `start:rate:full`: below `start` none is dropped; from `start` a new one is dropped with
 *    probability `rate`%, rising linearly to 100% at `full`.
 *
 * A source block holds at most `perSourceMaxStartups` connections in their handshake and login. Unlike
 * sshd's PerSourceMaxStartups, which refuses the next one, a connection beyond it *waits* (admitted, its
 * socket unread) until one of that block's slots frees, and starts then; the login grace time runs from
 * accept all the same. So a host that opens many connections at once (pdsh, Ansible, a CI fan-out) gets
 * them all served in turn, while one source, however many connections it opens, never holds more than
 * its few slots of the gate's startups, and so never pushes anyone else into random early drop. What
 * bounds a source's waiting connections is `perSourceMaxConnections`; what bounds all of them is
 * `maxWaiting`, well below `maxConnections`, so that a few sources (or one IPv6 /64 of them) cannot
 * fill the gate's connections with waiting ones for the login grace time.
 *
 * A connection stops being a "startup" once it authenticates. When it closes unauthenticated, its
 * block is penalised by its outcome: `authfail` (it tried and failed), `grace-exceeded` (the login grace
 * time ran out) or `noauth` (it never tried). Penalty seconds add up per block, capped at `max`; once a
 * block has `min` seconds or more outstanding, new connections from it are refused until they run out.
 * Exempt addresses are never penalised, nor refused for their block's penalty (but still counted for
 * the per-source caps).
 */
import { sourceBlock, type AddressList, type NetBlockSize } from './source-address.js';

export interface MaxStartups {
  readonly start: number;
  /** Percent, 1..100. */
  readonly rate: number;
  readonly full: number;
}

export interface PenaltyPolicy {
  readonly enabled: boolean;
  readonly authfailSeconds: number;
  readonly noauthSeconds: number;
  readonly graceExceededSeconds: number;
  /** Outstanding seconds from which a block is refused. */
  readonly minSeconds: number;
  /** Outstanding seconds are capped here. */
  readonly maxSeconds: number;
  readonly exempt: AddressList;
}

export interface AdmissionPolicy {
  readonly maxConnections: number;
  readonly maxStartups: MaxStartups;
  readonly perSourceMaxStartups: number;
  readonly perSourceMaxConnections: number;
  /** Connections waiting for their block's startup slot, from all sources together. */
  readonly maxWaiting: number;
  readonly netBlockSize: NetBlockSize;
  readonly penalties: PenaltyPolicy;
}

export const REFUSAL_REASONS = [
  'max-connections',
  'penalty',
  'per-source-connections',
  'max-waiting',
  'max-startups',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type UnauthenticatedOutcome = 'authfail' | 'grace-exceeded' | 'noauth';

export interface Refusal {
  readonly ok: false;
  readonly reason: RefusalReason;
  readonly block: string;
  /** For the log: the numbers behind the refusal. */
  readonly detail: string;
}

export interface Admitted {
  readonly ok: true;
  readonly block: string;
  /** It waits for a startup slot of its block; `ticket.whenStarted` says when it may go on. */
  readonly waiting: boolean;
  readonly ticket: AdmissionTicket;
}

/** One admitted connection's place in the counts. */
export interface AdmissionTicket {
  /** Calls `start` once the connection holds a startup slot: at once, unless it is waiting. */
  whenStarted(start: () => void): void;
  /** It authenticated: no longer a startup. */
  authenticated(): void;
  /** It closed; `outcome` if it never authenticated. Idempotent. */
  closed(outcome?: UnauthenticatedOutcome): void;
}

interface BlockCounts {
  connections: number;
  startups: number;
  /** Connections waiting for one of the block's startup slots, oldest first. */
  readonly waiting: (() => void)[];
}

interface Penalty {
  /** ms since the epoch when the outstanding seconds run out. */
  until: number;
  active: boolean;
}

export interface AdmissionStats {
  readonly connections: number;
  readonly startups: number;
  /** Admitted connections waiting for their block's startup slot. */
  readonly waiting: number;
  readonly refused: Readonly<Record<RefusalReason, number>>;
  /** Blocks refused for a penalty now. */
  readonly penalisedBlocks: number;
  readonly penalties: Readonly<Record<UnauthenticatedOutcome, number>>;
}

/** Bound on the penalty table, as sshd's max-sources: beyond it, the soonest-expiring entries go. */
export const MAX_PENALTY_BLOCKS = 65_536;

export class Admission {
  readonly #policy: AdmissionPolicy;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #blocks = new Map<string, BlockCounts>();
  readonly #penalties = new Map<string, Penalty>();
  readonly #expiries = new ExpiryHeap();
  #connections = 0;
  #startups = 0;
  #waiting = 0;
  readonly #refused = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>;
  readonly #penalised: Record<UnauthenticatedOutcome, number> = {
    authfail: 0,
    'grace-exceeded': 0,
    noauth: 0,
  };

  constructor(policy: AdmissionPolicy, opts: { now?: () => number; random?: () => number } = {}) {
    this.#policy = policy;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
  }

  get policy(): AdmissionPolicy {
    return this.#policy;
  }

  /** Client connections admitted and not yet closed (O(1); stats() counts penalties too). */
  get connections(): number {
    return this.#connections;
  }

  admit(address: string): Admitted | Refusal {
    const p = this.#policy;
    const block = sourceBlock(address, p.netBlockSize);
    const counts = this.#blocks.get(block) ?? { connections: 0, startups: 0, waiting: [] };
    const refuse = (reason: RefusalReason, detail: string): Refusal => {
      this.#refused[reason]++;
      return { ok: false, reason, block, detail };
    };
    if (this.#connections >= p.maxConnections)
      return refuse('max-connections', `${this.#connections} connections, the limit is ${p.maxConnections}`);
    // An exempt address is never refused for its block's penalty (others in the block may have earned it).
    const penalty = p.penalties.exempt.has(address) ? undefined : this.#activePenalty(block);
    if (penalty !== undefined) return refuse('penalty', `penalised for ${Math.ceil(penalty / 1000)} s more`);
    if (counts.connections >= p.perSourceMaxConnections)
      return refuse(
        'per-source-connections',
        `${counts.connections} connections from ${block}, the limit is ${p.perSourceMaxConnections}`,
      );
    const waits = counts.startups >= p.perSourceMaxStartups;
    if (waits && this.#waiting >= p.maxWaiting)
      return refuse(
        'max-waiting',
        `${this.#waiting} connections wait for a startup slot, the limit is ${p.maxWaiting}; ${counts.startups} unauthenticated connections from ${block}, the per-source limit is ${p.perSourceMaxStartups}`,
      );
    if (!waits && this.#dropStartup())
      return refuse(
        'max-startups',
        `${this.#startups} unauthenticated connections (max_startups ${p.maxStartups.start}:${p.maxStartups.rate}:${p.maxStartups.full})`,
      );

    counts.connections++;
    this.#blocks.set(block, counts);
    this.#connections++;
    let state: 'waiting' | 'startup' | 'authenticated' | 'closed' = 'waiting';
    let onStart: (() => void) | undefined;
    const start = () => {
      state = 'startup';
      counts.startups++;
      this.#startups++;
      onStart?.();
    };
    const promote = () => {
      this.#waiting--;
      start();
    };
    const leaveStartups = () => {
      counts.startups--;
      this.#startups--;
      // A slot of this block is free: the oldest waiting connection takes it.
      const next = counts.waiting.shift();
      next?.();
    };
    if (waits) {
      counts.waiting.push(promote);
      this.#waiting++;
    } else start();
    return {
      ok: true,
      block,
      waiting: waits,
      ticket: {
        whenStarted: (cb) => {
          if (state === 'startup') cb();
          else if (state === 'waiting') onStart = cb;
        },
        authenticated: () => {
          if (state !== 'startup') return;
          state = 'authenticated';
          leaveStartups();
        },
        closed: (outcome) => {
          if (state === 'closed') return;
          const unauthenticated = state !== 'authenticated';
          if (state === 'waiting') {
            counts.waiting.splice(counts.waiting.indexOf(promote), 1);
            this.#waiting--;
          } else if (state === 'startup') leaveStartups();
          state = 'closed';
          counts.connections--;
          this.#connections--;
          if (counts.connections === 0) this.#blocks.delete(block);
          if (unauthenticated && outcome) this.#penalise(address, block, outcome);
        },
      },
    };
  }

  stats(): AdmissionStats {
    let penalisedBlocks = 0;
    for (const block of this.#penalties.keys())
      if (this.#activePenalty(block) !== undefined) penalisedBlocks++;
    return {
      connections: this.#connections,
      startups: this.#startups,
      waiting: this.#waiting,
      refused: { ...this.#refused },
      penalisedBlocks,
      penalties: { ...this.#penalised },
    };
  }

  /** sshd's should_drop_connection(): random early drop between `start` and `full`. */
  #dropStartup(): boolean {
    const { start, rate, full } = this.#policy.maxStartups;
    const n = this.#startups;
    if (n < start) return false;
    if (n >= full) return true;
    if (rate >= 100) return true;
    const p = rate + ((100 - rate) * (n - start)) / (full - start);
    return this.#random() * 100 < p;
  }

  /** ms of penalty left for a block that is being refused, or undefined. */
  #activePenalty(block: string): number | undefined {
    const penalty = this.#penalties.get(block);
    if (!penalty) return undefined;
    const left = penalty.until - this.#now();
    if (left <= 0) {
      this.#penalties.delete(block);
      return undefined;
    }
    return penalty.active ? left : undefined;
  }

  #penalise(address: string, block: string, outcome: UnauthenticatedOutcome): void {
    const p = this.#policy.penalties;
    if (!p.enabled || p.exempt.has(address)) return;
    const seconds =
      outcome === 'authfail'
        ? p.authfailSeconds
        : outcome === 'noauth'
          ? p.noauthSeconds
          : p.graceExceededSeconds;
    if (seconds <= 0) return;
    this.#penalised[outcome]++;
    const now = this.#now();
    const old = this.#penalties.get(block);
    const from = old && old.until > now ? old.until : now;
    const until = Math.min(from + seconds * 1000, now + p.maxSeconds * 1000);
    const active = (old?.active === true && old.until > now) || until - now >= p.minSeconds * 1000;
    this.#penalties.set(block, { until, active });
    this.#expiries.push(until, block);
    while (this.#penalties.size > MAX_PENALTY_BLOCKS) {
      // The soonest to run out goes (an expired one first), never an active penalty that has longer.
      const soonest = this.#expiries.pop();
      if (soonest === undefined) break;
      if (this.#penalties.get(soonest.block)?.until === soonest.until) this.#penalties.delete(soonest.block);
    }
    // Entries of blocks penalised again, or gone, are stale: rebuilt before they outnumber the live ones.
    if (this.#expiries.size > 2 * this.#penalties.size + 1024)
      this.#expiries.rebuild([...this.#penalties].map(([b, v]) => ({ until: v.until, block: b })));
  }
}

/**
 * Penalty expiries, soonest first: a binary min-heap of (until, block). A block penalised again gets a
 * new entry and its old one goes stale (its `until` no longer matches the table), skipped when popped.
 */
class ExpiryHeap {
  #items: { until: number; block: string }[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(until: number, block: string): void {
    const a = this.#items;
    a.push({ until, block });
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.until <= a[i]!.until) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): { until: number; block: string } | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      this.#down(0);
    }
    return top;
  }

  rebuild(items: { until: number; block: string }[]): void {
    this.#items = items;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #down(i: number): void {
    const a = this.#items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.until < a[m]!.until) m = l;
      if (r < a.length && a[r]!.until < a[m]!.until) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

/** `maxWaiting` when `limits.max_waiting_connections` is not set: a quarter of the connections, at most 1,000. */
export function defaultMaxWaiting(maxConnections: number): number {
  return Math.min(1000, Math.floor(maxConnections / 4));
}

/**
 * Why a configured `maxWaiting` does not fit `maxConnections`, or undefined. At most half: waiting
 * connections must never be able to take the connections of those who do not wait.
 */
export function maxWaitingProblem(
  maxWaiting: number,
  maxConnections: number,
  from: string,
): string | undefined {
  const most = Math.floor(maxConnections / 2);
  if (maxWaiting <= most) return undefined;
  return `is ${maxWaiting}, more than half of max_connections (${maxConnections}, ${from}): waiting connections could fill the gate; set it to ${most} or less`;
}

/** `"10:30:100"` → MaxStartups; the schema has checked the shape, this checks the order. */
export function parseMaxStartups(text: string): MaxStartups | string {
  const parts = text.split(':').map(Number);
  const [start, rate, full] = parts.length === 1 ? [parts[0]!, 100, parts[0]!] : parts;
  if (start === undefined || rate === undefined || full === undefined) return 'must be "start:rate:full"';
  if (start < 1) return 'start must be at least 1';
  if (rate < 1 || rate > 100) return 'rate must be a percentage from 1 to 100';
  if (full < start) return `full (${full}) must not be less than start (${start})`;
  return { start, rate, full };
}
