/**
 * Reads a few thousand entries ahead of a consumer, so that slow work the consumer will need later (the
 * RSA unwrap of a segment's data key) can start early and run on libuv's threads while the consumer is
 * busy with the entries before it. Entries are copied as they are read ahead: a source may reuse its
 * buffers after the next pull. A read error is kept and thrown when the consumer reaches its place, so
 * everything before it is still delivered.
 */
import type { EntryInput } from './decrypt.js';

export class Lookahead {
  readonly #queue: (EntryInput | undefined)[] = [];
  #head = 0;
  #done = false;
  #error: { readonly error: unknown } | undefined;

  constructor(
    private readonly iterator: Iterator<EntryInput>,
    private readonly depth: number,
    /** Told of each entry as it is read ahead, before the consumer gets it. */
    private readonly onAhead: (entry: EntryInput) => void,
  ) {}

  /** The next entry, or done; throws a read error once every entry before it has been taken. */
  next(): IteratorResult<EntryInput, undefined> {
    this.#fill();
    if (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined;
      if (this.#head >= 4096) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      return { done: false, value: entry };
    }
    if (this.#error) throw this.#error.error;
    return { done: true, value: undefined };
  }

  #fill(): void {
    while (!this.#done && this.#queue.length - this.#head < this.depth) {
      let r: IteratorResult<EntryInput>;
      try {
        r = this.iterator.next();
      } catch (error) {
        this.#error = { error };
        this.#done = true;
        return;
      }
      if (r.done) {
        this.#done = true;
        return;
      }
      const entry = { index: r.value.index, bytes: r.value.bytes.slice() };
      this.onAhead(entry);
      this.#queue.push(entry);
    }
  }
}
