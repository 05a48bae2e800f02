/**
 * What the user's keystrokes (DATA_IN of an interactive channel) mean for the command line: Enter,
 * Ctrl-C, the start and end of a bracketed paste, and whether what was typed is plain text (so that the
 * screen can be checked against it). Escape sequences (arrows, function keys, Alt-x) are recognised so
 * that their bytes are not taken for typing. Pure and incremental: a sequence split across records is
 * carried over.
 */

export type KeyEvent =
  /** A printable character or a UTF-8 byte of one (typing). */
  | { readonly kind: 'text'; readonly byte: number }
  /** Enter (CR, or a LF that does not follow a CR), outside a bracketed paste. */
  | { readonly kind: 'enter' }
  /** Ctrl-C: the shell discards the line. */
  | { readonly kind: 'interrupt' }
  /** Any other control byte or escape sequence: an edit (Backspace, Ctrl-A, arrows, Tab, …). */
  | { readonly kind: 'edit' }
  | { readonly kind: 'paste-start' }
  | { readonly kind: 'paste-end' };

const ESC = 0x1b;
const CR = 0x0d;
const LF = 0x0a;
const ETX = 0x03;
const PASTE_START = '200~';
const PASTE_END = '201~';
/** An escape sequence longer than this is not one: its bytes are taken as edits and scanning resyncs. */
const MAX_SEQUENCE = 32;

export class InputScanner {
  /** Bytes of an escape sequence not complete yet. */
  #pending: number[] = [];
  #inPaste = false;
  #lastWasCr = false;

  get inPaste(): boolean {
    return this.#inPaste;
  }

  /** The key events in `bytes`, in order. */
  *scan(bytes: Uint8Array): Generator<KeyEvent> {
    for (const byte of bytes) {
      if (this.#pending.length > 0) {
        const event = this.#continueSequence(byte);
        if (event) yield event;
        continue;
      }
      const wasCr = this.#lastWasCr;
      this.#lastWasCr = byte === CR;
      if (byte === ESC) {
        this.#pending.push(byte);
      } else if (byte === CR || (byte === LF && !wasCr)) {
        yield this.#inPaste ? { kind: 'text', byte: LF } : { kind: 'enter' };
      } else if (byte === LF) {
        // the LF of a CRLF: the CR was the Enter
      } else if (byte === ETX) {
        yield { kind: 'interrupt' };
      } else if (byte < 0x20 || byte === 0x7f) {
        yield { kind: 'edit' };
      } else {
        yield { kind: 'text', byte };
      }
    }
  }

  #continueSequence(byte: number): KeyEvent | undefined {
    const seq = this.#pending;
    seq.push(byte);
    if (seq.length === 2) {
      if (byte === 0x5b /* [ */ || byte === 0x4f /* O */) return undefined;
      seq.length = 0; // ESC x: Alt-x, or a lone ESC followed by a key
      return { kind: 'edit' };
    }
    const introducer = seq[1];
    if (introducer === 0x4f) {
      seq.length = 0; // SS3: ESC O x (application-mode arrows, F1-F4)
      return { kind: 'edit' };
    }
    // CSI: parameters and intermediates (0x20-0x3f) until a final byte (0x40-0x7e).
    if (byte >= 0x40 && byte <= 0x7e) {
      const body = String.fromCharCode(...seq.slice(2));
      seq.length = 0;
      if (body === PASTE_START) {
        this.#inPaste = true;
        return { kind: 'paste-start' };
      }
      if (body === PASTE_END) {
        this.#inPaste = false;
        return { kind: 'paste-end' };
      }
      return { kind: 'edit' };
    }
    if (byte < 0x20 || byte > 0x7e || seq.length > MAX_SEQUENCE) {
      seq.length = 0; // not a CSI sequence after all
      return { kind: 'edit' };
    }
    return undefined;
  }
}
