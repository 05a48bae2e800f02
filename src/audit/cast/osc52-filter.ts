/**
 * Drops OSC 52 (`ESC ] 52 ; … BEL` or `… ESC \`), the sequence that writes the terminal's clipboard,
 * from recorded output that `replay` writes to the auditor's terminal. Everything else passes through
 * unchanged. Streaming: a sequence split across records is recognised; bytes held while it is not yet
 * known whether they start one are released as soon as it is known.
 */

const ESC = 0x1b;
const BEL = 0x07;
const OSC52 = [ESC, 0x5d, 0x35, 0x32, 0x3b]; // ESC ] 5 2 ;
/** A clipboard payload longer than this ends the dropping anyway (the terminal would have given up). */
const MAX_DROPPED = 1 << 20;

export class Osc52Filter {
  /** Bytes that may start an OSC 52 (a prefix of OSC52), held back. */
  #held: number[] = [];
  #dropping = false;
  #dropped = 0;
  #lastWasEsc = false;
  /** OSC 52 sequences dropped so far. */
  removed = 0;

  push(bytes: Uint8Array): Uint8Array {
    const out: number[] = [];
    for (const b of bytes) {
      if (this.#dropping) {
        this.#dropped++;
        const end = b === BEL || (this.#lastWasEsc && b === 0x5c) || this.#dropped > MAX_DROPPED;
        this.#lastWasEsc = b === ESC;
        if (end) {
          this.#dropping = false;
          this.#lastWasEsc = false;
        }
        continue;
      }
      const held = this.#held;
      if (b === OSC52[held.length]) {
        held.push(b);
        if (held.length === OSC52.length) {
          held.length = 0;
          this.#dropping = true;
          this.#dropped = 0;
          this.removed++;
        }
        continue;
      }
      if (held.length > 0) {
        out.push(...held);
        held.length = 0;
        if (b === ESC) {
          held.push(b);
          continue;
        }
      }
      out.push(b);
    }
    return Uint8Array.from(out);
  }

  /** Bytes still held at the end (a prefix that never became an OSC 52). */
  end(): Uint8Array {
    const rest = Uint8Array.from(this.#held);
    this.#held = [];
    return rest;
  }
}
