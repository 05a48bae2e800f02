/**
 * The gate's TCP listener. It owns the listening socket (ssh2's Server only ever gets sockets handed to
 * it, through `injectSocket`), so that every connection is judged at accept, before any SSH byte:
 *
 * - admission.ts decides: admitted (at once, or to wait for its source's startup slot), or refused with
 *   a reason, and the socket is closed at once;
 * - the login grace time runs from accept, not from the client's version line, so a connection that
 *   never speaks is dropped like one that stalls later;
 * - when an unauthenticated connection closes, its outcome (authfail, grace-exceeded, noauth) feeds the
 *   per-source penalties.
 *
 * Refusals are logged without letting a flood flood the log: the first refusal of each reason and
 * source block in a window gets a line of its own, the rest are counted and summed up in one line per
 * window. The counts (AdmissionStats) are there for metrics.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'winston';
import {
  Admission,
  type AdmissionTicket,
  type RefusalReason,
  type UnauthenticatedOutcome,
} from './admission.js';

/** What a connection's authentication tells the listener (the GateConnection calls these). */
export interface PreAuthReport {
  /** An attempt other than `none` was refused. */
  authFailed(): void;
  authenticated(): void;
  /** Set by the connection: how to end it when the grace time is over (default: destroy the socket). */
  onGraceOver?: () => void;
}

interface Admitted extends PreAuthReport {
  readonly ticket: AdmissionTicket;
  failed: boolean;
  done: boolean;
  graceOver: boolean;
}

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly admission: Admission;
  readonly loginGraceMs: number;
  readonly logger: Logger;
  /** Receives every admitted socket (ssh2's Server#injectSocket). */
  readonly onSocket: (socket: Socket) => void;
  /** Refusal log window; 10 s unless a test shortens it. */
  readonly logWindowMs?: number;
}

const LISTEN_BACKLOG = 4096;
/**
 * What a waiting connection may send before it is started: its version line (255 bytes at most,
 * RFC 4253 §4.2) and a KEXINIT, with room to spare. Beyond it the socket is paused until it starts.
 */
const WAITING_READ_BYTES = 16 * 1024;

export class GateListener {
  readonly #opts: ListenerOptions;
  readonly #server: Server;
  readonly #admitted = new WeakMap<Socket, Admitted>();
  readonly #sockets = new Set<Socket>();
  readonly #refusals: RefusalLog;

  constructor(opts: ListenerOptions) {
    this.#opts = opts;
    this.#refusals = new RefusalLog(opts.logger, opts.logWindowMs ?? 10_000);
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.#opts;
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      // A deep accept queue (the kernel caps it at net.core.somaxconn): with Node's default of 511, a
      // burst of connections overflows it and the kernel leaves the excess half-open for seconds of
      // SYN-ACK back-off, instead of the gate refusing them at once (measured: 667 of 3,000 still
      // unanswered after 12 s with 511; none after 1.3 s with 4,096).
      this.#server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
        this.#server.off('error', reject);
        // Accept errors (EMFILE and the like) must never end the gate; libuv keeps accepting.
        this.#server.on('error', (err: Error) =>
          this.#opts.logger.error('listener error', { error: err.message }),
        );
        const a = this.#server.address();
        resolve({ host, port: typeof a === 'object' && a ? a.port : port });
      });
    });
  }

  /** The pre-auth report for a socket this listener admitted. */
  reportFor(socket: Socket): PreAuthReport | undefined {
    return this.#admitted.get(socket);
  }

  /** Stops accepting; resolves once the listening socket is closed (connections are the gate's). */
  close(): Promise<void> {
    this.#refusals.stop();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Destroys every socket still open (after the gate has ended its sessions). */
  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: Socket): void {
    socket.on('error', () => undefined); // a reset before ssh2 has its own listener
    const address = socket.remoteAddress;
    if (!address) {
      socket.destroy();
      return;
    }
    const decision = this.#opts.admission.admit(address);
    if (!decision.ok) {
      socket.destroy();
      this.#refusals.refused(decision.reason, decision.block, address, decision.detail);
      return;
    }
    this.#sockets.add(socket);
    const entry: Admitted = {
      ticket: decision.ticket,
      failed: false,
      done: false,
      graceOver: false,
      authFailed: () => {
        entry.failed = true;
      },
      authenticated: () => {
        if (entry.done) return;
        entry.done = true;
        clearTimeout(grace);
        decision.ticket.authenticated();
      },
    };
    const grace = setTimeout(() => {
      if (entry.done) return;
      entry.graceOver = true;
      this.#refusals.cut(decision.block, address);
      if (entry.onGraceOver) entry.onGraceOver();
      else socket.destroy();
      // A client that ignores the disconnect is cut loose shortly after.
      setTimeout(() => socket.destroy(), 1_000).unref();
    }, this.#opts.loginGraceMs);
    grace.unref();
    socket.once('close', () => {
      clearTimeout(grace);
      this.#sockets.delete(socket);
      const outcome: UnauthenticatedOutcome | undefined = entry.done
        ? undefined
        : entry.graceOver
          ? 'grace-exceeded'
          : entry.failed
            ? 'authfail'
            : 'noauth';
      entry.done = true;
      decision.ticket.closed(outcome);
    });
    this.#admitted.set(socket, entry);
    if (!decision.waiting) {
      this.#opts.onSocket(socket);
      return;
    }
    // A connection beyond its source's startup slots waits here until one frees. Its bytes are read
    // (up to WAITING_READ_BYTES, then it is paused) and kept for ssh2, so that a client that gives up
    // while it waits is noticed by its FIN: its slot in the queue frees at once, and it is a noauth.
    const held: Buffer[] = [];
    let heldBytes = 0;
    const onData = (chunk: Buffer) => {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes >= WAITING_READ_BYTES) socket.pause();
    };
    const onEnd = () => socket.destroy();
    socket.on('data', onData);
    socket.once('end', onEnd);
    decision.ticket.whenStarted(() => {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      if (socket.destroyed) return;
      if (held.length > 0) socket.unshift(Buffer.concat(held));
      this.#opts.onSocket(socket); // ssh2 reads from here on (it resumes the socket)
    });
  }
}

/** Lines of their own per window at most; a flood from many sources is summed up like the rest. */
const MAX_LINES_PER_WINDOW = 50;
/** Entries in a summary line; the rest are counted as `other`. */
const MAX_SUMMARY_KEYS = 20;
/** (reason, source block) pairs counted per window; further sources count as `REASON other`. */
export const MAX_SUPPRESSED_KEYS = 1_000;

/** Refusal lines: one per (reason, block) per window, then a summary of the rest. */
export class RefusalLog {
  readonly #logger: Logger;
  readonly #windowMs: number;
  #seen = new Set<string>();
  #suppressed = new Map<string, number>();
  #cutSuppressed = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(logger: Logger, windowMs: number) {
    this.#logger = logger;
    this.#windowMs = windowMs;
    this.#timer = setInterval(() => this.#flush(), windowMs);
    this.#timer.unref();
  }

  refused(reason: RefusalReason, block: string, address: string, detail: string): void {
    const key = `${reason} ${block}`;
    if (!this.#seen.has(key) && this.#seen.size < MAX_LINES_PER_WINDOW) {
      this.#seen.add(key);
      this.#logger.warn('connection refused before authentication', {
        reason,
        client: address,
        source_block: block,
        detail,
        note: `further refusals for this reason and source are summed up every ${this.#windowMs / 1000} s`,
      });
      return;
    }
    // Bounded too: past MAX_SUPPRESSED_KEYS sources in a window, the rest are counted per reason only.
    const counted =
      this.#suppressed.has(key) || this.#suppressed.size < MAX_SUPPRESSED_KEYS ? key : `${reason} other`;
    this.#suppressed.set(counted, (this.#suppressed.get(counted) ?? 0) + 1);
  }

  cut(block: string, address: string): void {
    const key = `grace ${block}`;
    if (!this.#seen.has(key) && this.#seen.size < MAX_LINES_PER_WINDOW) {
      this.#seen.add(key);
      this.#logger.warn('login grace time over; connection closed', { client: address, source_block: block });
      return;
    }
    this.#cutSuppressed++;
  }

  stop(): void {
    this.#flush();
    clearInterval(this.#timer);
  }

  #flush(): void {
    if (this.#suppressed.size > 0 || this.#cutSuppressed > 0) {
      const refused: Record<string, number> = {};
      let total = 0;
      const largest = [...this.#suppressed].sort((a, b) => b[1] - a[1]);
      largest.forEach(([key, n], i) => {
        if (i < MAX_SUMMARY_KEYS) refused[key] = n;
        else refused.other = (refused.other ?? 0) + n;
        total += n;
      });
      this.#logger.warn('connections refused before authentication (summary)', {
        window_seconds: this.#windowMs / 1000,
        refused_total: total,
        refused_by_reason_and_source: refused,
        grace_time_cuts: this.#cutSuppressed,
      });
    }
    this.#seen = new Set();
    this.#suppressed = new Map();
    this.#cutSuppressed = 0;
  }
}
