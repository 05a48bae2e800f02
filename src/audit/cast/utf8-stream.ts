/**
 * Bytes to text across record boundaries. A target writes bytes, and the gate records them as they come,
 * so a UTF-8 character can end one DATA_OUT record and begin the next. A JSON string must hold text, so
 * each stream (stdout, stderr, input) has its own decoder that keeps an incomplete tail for the next
 * chunk. Bytes that are not UTF-8 at all become U+FFFD: JSON text cannot carry them (the scriptreplay
 * format, which is bytes, and `decrypt`'s JSON lines, which give base64, lose nothing).
 */
export class Utf8Stream {
  readonly #decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  /** The text of `bytes` and of any tail held from before; an incomplete tail is held back. */
  push(bytes: Uint8Array): string {
    return this.#decoder.decode(bytes, { stream: true });
  }

  /** The held tail, if any, as U+FFFD (the stream ended mid-character). */
  end(): string {
    return this.#decoder.decode();
  }
}
