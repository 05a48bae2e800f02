/**
 * Client input for a target with `forward_input: when-durable` (docs/OPERATIONS.md): each chunk (and the
 * EOF and signals) is sealed at once, as always, but passes to the target only once its record is
 * fsynced, and in order. Input still queued when the channel closes is dropped; its records remain.
 *
 * At most `limit` chunks wait for the disk. Beyond that the client's channel is paused, so ssh2 stops
 * adjusting its window and the client stops sending (the same back-pressure as flow.ts): a slow disk
 * slows the sender, it does not grow the gate's memory.
 */
import type { Readable } from 'node:stream';
import { hold, release } from './flow.js';

export class DurableInput {
  #queue: Promise<void> = Promise.resolve();
  #waiting = 0;

  constructor(
    private readonly source: Readable,
    private readonly limit = 16,
  ) {}

  /**
   * Runs `pass` after every earlier chunk, once `durable` resolves true. When it resolves false (the log
   * failed and the session is failing closed) nothing passes.
   */
  enqueue(durable: Promise<boolean>, pass: () => void): void {
    this.#waiting++;
    if (this.#waiting >= this.limit) hold(this.source, 'durable-input');
    this.#queue = this.#queue.then(async () => {
      const ok = await durable;
      this.#waiting--;
      if (this.#waiting < this.limit) release(this.source, 'durable-input');
      if (!ok) return;
      try {
        pass();
      } catch {
        // A write to a channel that has just closed: the bridge's own close handling ends the session;
        // the queue must go on (a rejected link would stall every later chunk).
      }
    });
  }
}
