/**
 * The unlogged window (SECURITY.md, docs/OPERATIONS.md `recording.max_unlogged_bytes`): a cap on the
 * bytes the gate has forwarded whose DATA records are sealed and appended but not yet durable (fsynced).
 * Group commit (FORMAT.md §6) writes every 64 records or 50 ms, which at bulk rates is megabytes: without
 * a cap, a disk that fails loses all of that from the log although the client or target already has it.
 *
 * One window per gate, shared by every session channel in both directions (target output, stdout and
 * stderr, and client input under `forward_input: when-sealed`), because that is what bounds "a failing
 * disk loses at most N bytes from the log", whatever the number of channels.
 *
 * - A chunk is forwarded at once while the bytes forwarded and not yet durable, plus the chunk, stay
 *   within the cap (a chunk always passes when nothing is outstanding). Otherwise it is held, and its
 *   source is paused (flow.ts): a paused ssh2 channel stops adjusting its window, so the sender stops.
 *   Back-pressure, not a buffer: at most the one chunk a source had in hand waits here.
 * - Held chunks go in arrival order (FIFO across sources, so a source's bytes and its EOF keep their
 *   order) as fsyncs complete; a chunk whose record is durable by then passes without counting.
 * - At half the cap, the window asks the log to fsync now rather than at the batch deadline, so the next
 *   fsync runs while the other half is in flight, and throughput is not bounded by cap / 50 ms.
 * - When the store fails, every `durable` rejects. The window tells each held chunk's owner (`lost`,
 *   which fails its recording: a fail-closed session then drops what it held, a fail-open one sends it)
 *   before anything else moves, and forgets the failed bytes: they are what the failure lost, and the
 *   sessions that forwarded them are being cut.
 */
import type { Readable } from 'node:stream';
import { hold, release } from './flow.js';

/** One chunk (or a zero-length marker such as an EOF, kept in order with the chunks) to forward. */
export interface Forwarding {
  /** The stream the bytes came from; paused while they wait. */
  readonly source: Readable;
  readonly bytes: number;
  /** Settles when the fsync covering the chunk's record (or a later record) returns; rejects if it fails. */
  readonly durable: Promise<void>;
  /** Writes the bytes on (the owner decides there whether it still may). */
  readonly send: () => void;
  /** The store failed before this chunk was durable. */
  readonly lost: (err: Error) => void;
}

interface Item extends Forwarding {
  settled: boolean;
  charged: boolean;
}

export class UnloggedWindow {
  #pending = 0;
  readonly #held: Item[] = [];
  /** Held chunks per source: a source is released when its last one has gone. */
  readonly #heldBy = new Map<Readable, number>();
  #flushAsked = false;

  /**
   * `cap`: bytes forwarded and not yet durable, at most (beyond it only when a single chunk is larger,
   * which ssh2's 32 KiB packets never are for caps of 32 KiB or more). `flush`: asks the log to fsync
   * now (SealedLog.flush; its failure reaches the sessions through onFailure).
   */
  constructor(
    readonly cap: number,
    private readonly flush: () => void,
  ) {}

  /** Bytes forwarded whose records are not yet durable. */
  get pending(): number {
    return this.#pending;
  }

  /** Chunks waiting for room. */
  get held(): number {
    return this.#held.length;
  }

  /** Forwards `f` now if the window has room, else holds it and pauses its source until there is. */
  pass(f: Forwarding): void {
    const item: Item = { ...f, settled: false, charged: false };
    f.durable.then(
      () => this.#settle(item),
      (err: unknown) => this.#settle(item, err as Error),
    );
    if (this.#held.length === 0 && this.#fits(item.bytes)) return this.#send(item);
    this.#held.push(item);
    this.#heldBy.set(f.source, (this.#heldBy.get(f.source) ?? 0) + 1);
    hold(f.source, 'unlogged');
    this.#askFlush();
  }

  #fits(bytes: number): boolean {
    return this.#pending === 0 || this.#pending + bytes <= this.cap;
  }

  #send(item: Item): void {
    if (!item.settled) {
      item.charged = true;
      this.#pending += item.bytes;
      if (this.#pending * 2 >= this.cap) this.#askFlush();
    }
    try {
      item.send();
    } catch {
      // A write to a channel that has just closed: its bridge ends the session; the window goes on.
    }
  }

  #settle(item: Item, err?: Error): void {
    if (item.settled) return;
    item.settled = true;
    if (item.charged) {
      this.#pending -= item.bytes;
      this.#flushAsked = false; // an fsync completed (or failed): the next half-window may ask again
    }
    if (err) for (const h of this.#held) h.lost(err);
    this.#drain();
    if (this.#pending * 2 >= this.cap || this.#held.length > 0) this.#askFlush();
  }

  #drain(): void {
    while (this.#held.length > 0) {
      const head = this.#held[0]!;
      if (!head.settled && !this.#fits(head.bytes)) return;
      this.#held.shift();
      this.#send(head);
      const left = this.#heldBy.get(head.source)! - 1;
      if (left > 0) this.#heldBy.set(head.source, left);
      else {
        this.#heldBy.delete(head.source);
        release(head.source, 'unlogged');
      }
    }
  }

  #askFlush(): void {
    if (this.#flushAsked) return;
    this.#flushAsked = true;
    this.flush();
  }
}
