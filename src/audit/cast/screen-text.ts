/**
 * What a terminal showed, as plain text: the output is fed into a headless xterm (@xterm/headless) of
 * the recorded size, and a line is written out once it has scrolled off the top of the screen (then it
 * can no longer change), the rest with the final screen. Control sequences are rendered away: a line
 * reads as it was last shown, after its cursor movements, erasures and colours.
 *
 * - **Wrapped lines** are joined: one logical line per output line, as the user saw it before the wrap.
 * - **Full-screen programs** (vim, less, top: those that switch to the alternate screen) leave nothing
 *   in the scrolling text. Their **last screen** before they leave it is written out in place, after
 *   the line that started them (before what came on the screen after), between two marker lines
 *   (ALT_BEGIN, ALT_END). A program still on the
 *   alternate screen when the session ends gives the screen it ended with.
 * - Only lines that scrolled off are kept in the terminal's scrollback, and writes are cut into pieces
 *   small enough that none scrolls away before it is read, so a long session is rendered in bounded
 *   memory. If a line was lost anyway (an output piece wider than the scrollback after a reflow), a
 *   LINES_LOST marker line says so.
 */
import { guardTerminal, terminalSize } from '../commands/screen.js';
import xterm from '@xterm/headless';
import type { IMarker, Terminal as TerminalType } from '@xterm/headless';

const { Terminal } = xterm;

export const ALT_BEGIN = '[sealgate: a full-screen program ran here; its last screen:]';
export const ALT_END = '[sealgate: end of the full-screen program]';
export const LINES_LOST = '[sealgate: lines scrolled away before they could be read]';

const SCROLLBACK = 4096;
/** At most one new line per byte (a line feed), so a piece this long cannot outrun the scrollback. */
const PIECE = 2048;
/** Output queued in the terminal before waiting for it to be parsed (bounds memory). */
const SETTLE_BYTES = 1024 * 1024;

interface AltScreen {
  /** The normal-buffer line the program was started from. */
  readonly at: IMarker;
  lines?: string[];
}

const ESC = 0x1b;
/** DEC private modes that switch to (h) and from (l) the alternate screen. */
const ALT_MODES = new Set(['47', '1047', '1049']);

/**
 * The offset of the first `CSI ? … h|l` that enters or leaves the alternate screen in `data`, from
 * `from`, and which it is; undefined if none (a sequence cut at the end of a record is not seen).
 */
function altSwitch(data: Uint8Array, from: number): { at: number; enter: boolean } | undefined {
  for (let i = data.indexOf(ESC, from); i >= 0 && i + 3 < data.length; i = data.indexOf(ESC, i + 1)) {
    if (data[i + 1] !== 0x5b || data[i + 2] !== 0x3f) continue;
    let j = i + 3;
    while (j < data.length && ((data[j]! >= 0x30 && data[j]! <= 0x39) || data[j] === 0x3b)) j++;
    const final = data[j];
    if (final !== 0x68 && final !== 0x6c) continue;
    const params = new TextDecoder().decode(data.subarray(i + 3, j)).split(';');
    if (params.some((p) => ALT_MODES.has(p))) return { at: i, enter: final === 0x68 };
  }
  return undefined;
}

/**
 * The length of an unfinished `CSI ? digits;…` at the end of `data` (the gate cut the output there), or
 * 0: it is held back for the next write, so that an alternate-screen switch split across two records is
 * still seen.
 */
function unfinishedPrivateCsi(data: Uint8Array): number {
  const from = Math.max(0, data.length - 16);
  const esc = data.lastIndexOf(ESC);
  if (esc < from) return 0;
  for (let j = esc + 1; j < data.length; j++) {
    const b = data[j]!;
    const ok =
      j === esc + 1 ? b === 0x5b : j === esc + 2 ? b === 0x3f : (b >= 0x30 && b <= 0x39) || b === 0x3b;
    if (!ok) return 0;
  }
  return data.length - esc;
}

export class ScreenText {
  readonly #term: TerminalType;
  /** An unfinished private CSI held from the end of the last write. */
  #carry: Uint8Array = new Uint8Array(0);
  /** The first line of the normal buffer not yet written out. */
  #next: IMarker | undefined;
  readonly #alt: AltScreen[] = [];
  /** Lines written out by the write callbacks, not yet returned. */
  #out: string[] = [];
  /** Bytes queued in the terminal and not yet parsed (up to SETTLE_BYTES). */
  #queued = 0;

  constructor(cols: number, rows: number) {
    this.#term = new Terminal({
      ...terminalSize(cols, rows), // recorded sizes are hostile input: clamped
      scrollback: SCROLLBACK,
      allowProposedApi: true,
      logLevel: 'off', // xterm.js logs parse errors to the console: never into our output
    });
    guardTerminal(this.#term);
    this.#next = this.#term.registerMarker(0);
  }

  /**
   * Feeds output bytes; returns the lines that scrolled off for good so far. The bytes are queued in
   * pieces, each followed by a callback that reads the lines it scrolled off (xterm.js runs a write's
   * callback after parsing it and before the next), and awaited only every SETTLE_BYTES: a wait per
   * piece would cost a timer tick each.
   */
  async write(bytes: Uint8Array): Promise<string[]> {
    const joined = this.#carry.length > 0 ? Buffer.concat([this.#carry, bytes]) : bytes;
    const held = unfinishedPrivateCsi(joined);
    this.#carry = joined.slice(joined.length - held);
    const data = joined.subarray(0, joined.length - held);
    let pos = 0;
    while (pos < data.length) {
      const sw = altSwitch(data, pos);
      let end = Math.min(data.length, pos + PIECE);
      if (sw && sw.at < end) {
        if (sw.at === pos) {
          const enter = sw.enter;
          this.#term.write(new Uint8Array(0), () => this.#beforeSwitch(enter));
          const after = altSwitch(data, pos + 1);
          end = Math.min(end, after ? after.at : data.length);
        } else {
          end = sw.at;
        }
      }
      this.#term.write(data.subarray(pos, end), () => this.#out.push(...this.#drain(false)));
      this.#queued += end - pos;
      pos = end;
    }
    if (this.#queued >= SETTLE_BYTES) await this.#settle();
    return this.#out.splice(0);
  }

  async resize(cols: number, rows: number): Promise<string[]> {
    if (this.#carry.length > 0) this.#term.write(this.#carry);
    this.#carry = new Uint8Array(0);
    await this.#settle();
    const size = terminalSize(cols, rows, { cols: this.#term.cols, rows: this.#term.rows });
    this.#term.resize(size.cols, size.rows);
    this.#out.push(...this.#drain(false));
    return this.#out.splice(0);
  }

  /** Every line not yet written: the rest of the scrolled text and the final screen. */
  async end(): Promise<string[]> {
    if (this.#carry.length > 0) this.#term.write(this.#carry);
    this.#carry = new Uint8Array(0);
    await this.#settle();
    if (this.#term.buffer.active.type === 'alternate') this.#snapshotAlt();
    this.#out.push(...this.#drain(true));
    this.#term.dispose();
    return this.#out.splice(0);
  }

  /** Waits until everything queued is parsed. */
  #settle(): Promise<void> {
    this.#queued = 0;
    return new Promise((done) => this.#term.write(new Uint8Array(0), done));
  }

  #beforeSwitch(enter: boolean): void {
    const active = this.#term.buffer.active;
    if (enter && active.type === 'normal') {
      const at = this.#term.registerMarker(0);
      if (at) this.#alt.push({ at });
    } else if (!enter && active.type === 'alternate') {
      this.#snapshotAlt();
    }
  }

  #snapshotAlt(): void {
    const alt = this.#term.buffer.alternate;
    const lines: string[] = [];
    for (let y = 0; y < this.#term.rows; y++)
      lines.push(alt.getLine(alt.baseY + y)?.translateToString(true) ?? '');
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const last = this.#alt[this.#alt.length - 1];
    if (last && last.lines === undefined) last.lines = lines;
  }

  /** Writes out normal-buffer lines: those above the screen, or (`all`) every line to the last used one. */
  #drain(all: boolean): string[] {
    const term = this.#term;
    const buf = term.buffer.normal;
    if (!all && term.buffer.active.type !== 'normal') return []; // the normal buffer is not changing
    const out: string[] = [];
    let start = this.#next && !this.#next.isDisposed ? this.#next.line : -1;
    if (start < 0) {
      out.push(LINES_LOST);
      start = 0;
    }
    let end: number;
    if (all) {
      end = buf.length;
      while (end > start && (buf.getLine(end - 1)?.translateToString(true) ?? '') === '') end--;
    } else {
      end = buf.baseY;
      while (end > start && buf.getLine(end)?.isWrapped) end--; // keep a logical line whole
    }
    for (let y = start; y < end;) {
      let line = '';
      let last = y;
      while (last + 1 < end && buf.getLine(last + 1)?.isWrapped) last++;
      for (let k = y; k <= last; k++) line += buf.getLine(k)?.translateToString(k === last) ?? '';
      out.push(...this.#altBefore(last));
      out.push(line);
      y = last + 1;
    }
    if (all) {
      out.push(...this.#altBefore(Number.MAX_SAFE_INTEGER));
      return out;
    }
    if (end !== start) {
      this.#next?.dispose();
      this.#next = term.registerMarker(end - (buf.baseY + buf.cursorY));
    }
    return out;
  }

  /**
   * The finished full-screen programs started on a line up to `y`, framed. A program starts on the
   * cursor's line (after the Enter of its command), and what the shell writes after it goes there, so
   * its screen is written before that line.
   */
  #altBefore(y: number): string[] {
    const out: string[] = [];
    while (this.#alt.length > 0) {
      const first = this.#alt[0]!;
      const line = first.at.isDisposed ? -1 : first.at.line;
      if (line > y || first.lines === undefined) break;
      out.push(ALT_BEGIN, ...first.lines, ALT_END);
      first.at.dispose();
      this.#alt.shift();
    }
    return out;
  }
}
