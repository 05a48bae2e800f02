/**
 * Bulk output that cannot change a command line: `cat` of a big file while no line is being typed. The
 * reconstructor needs the screen only when a line is typed, so of a long run of plain text it writes
 * only the lines that can still be on the screen. The run must be plain: printable text, CR, LF, tab,
 * backspace, and the two sequences that only colour or clear text (SGR `CSI … m`, EL `CSI … K`). Anything
 * else (cursor addressing, modes, the alternate screen, OSC) is written in full, so what the screen shows
 * afterwards is the same.
 */

const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;

/** Only chunks at least this long are considered: below it, writing them is cheap anyway. */
export const ELIDE_MIN = 16 * 1024;

/**
 * The offset from which `bytes` must be written (0: all of it). Everything before it is plain text
 * ending in CR LF, followed by at least `keepLines` more line feeds, so it scrolls off the screen; the
 * caller writes `\r\n` in its place.
 */
export function elisionPoint(bytes: Uint8Array, keepLines: number): number {
  if (bytes.length < ELIDE_MIN) return 0;
  let seen = 0;
  let cut = -1;
  for (let i = bytes.length - 1; i > 0; i--) {
    if (bytes[i] !== LF) continue;
    if (++seen > keepLines) {
      if (bytes[i - 1] === CR) cut = i + 1;
      break;
    }
  }
  if (cut <= 0 || !isPlain(bytes, cut)) return 0;
  return cut;
}

/** True when bytes[0, end) hold only plain text, SGR and EL sequences, none cut short. */
function isPlain(bytes: Uint8Array, end: number): boolean {
  let i = 0;
  while (i < end) {
    const b = bytes[i]!;
    if (b >= 0x20 && b !== 0x7f) {
      i++;
      continue;
    }
    if (b === LF || b === CR || b === 0x09 || b === 0x08) {
      i++;
      continue;
    }
    if (b !== ESC || bytes[i + 1] !== 0x5b) return false;
    let j = i + 2;
    while (j < end && bytes[j]! >= 0x30 && bytes[j]! <= 0x3f) j++;
    if (j >= end || (bytes[j] !== 0x6d && bytes[j] !== 0x4b)) return false; // only m and K
    i = j + 1;
  }
  return true;
}

/**
 * True when `bytes` end outside an escape sequence and a UTF-8 sequence, so that what follows them can
 * be elided without leaving the terminal's parser mid-sequence.
 */
export function endsClean(bytes: Uint8Array): boolean {
  const n = bytes.length;
  if (n === 0) return true;
  if (bytes[n - 1]! >= 0x80) return false; // maybe the start or middle of a UTF-8 sequence
  for (let i = n - 1; i >= 0 && i >= n - TAIL; i--) {
    const b = bytes[i]!;
    if (b === LF) return true;
    if (b === ESC) return completeCsi(bytes, i);
  }
  return false; // a long run with neither: it may be inside a string sequence (OSC, DCS)
}

/** Bytes to look back in `endsClean`. */
const TAIL = 256;

/** True when bytes[at] is an ESC that starts a CSI sequence ending before the end of `bytes`. */
function completeCsi(bytes: Uint8Array, at: number): boolean {
  if (bytes[at + 1] !== 0x5b) return false;
  let j = at + 2;
  while (j < bytes.length && bytes[j]! >= 0x20 && bytes[j]! <= 0x3f) j++;
  return j < bytes.length && bytes[j]! >= 0x40 && bytes[j]! <= 0x7e;
}
