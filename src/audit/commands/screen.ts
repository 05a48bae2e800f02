/**
 * A headless terminal screen (@xterm/headless) for reading command lines off what the target printed.
 * Pure computation, no I/O: bytes in, screen text out. Writes are synchronous, so a caller can stop at
 * an exact byte (the line feed that echoes an Enter) and read the screen as it was then.
 */
import xterm from '@xterm/headless';
import type { IMarker, Terminal as XTerm } from '@xterm/headless';

const { Terminal } = xterm;

/** The synchronous write of xterm's core (the public `write` defers to a timer). */
interface CoreWithWriteSync {
  writeSync(data: Uint8Array | string): void;
}

/** Lines kept above the screen: enough for a pasted block or a long wrapped line to stay readable. */
const SCROLLBACK = 2000;
const MIN_COLS = 2;
const MIN_ROWS = 1;
/** Sizes beyond these are recorded values we do not trust (a hostile client's PTY_REQ): clamped. */
const MAX_COLS = 1000;
const MAX_ROWS = 500;

function clamp(n: unknown, min: number, max: number, fallback: number): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) return fallback;
  return Math.min(max, Math.max(min, Math.floor(n)));
}

/** A position on the screen: the first row of a logical line (tracked through scrolling and reflow). */
export interface LineStart {
  readonly marker: IMarker;
}

export class Screen {
  readonly #term: XTerm;
  readonly #core: CoreWithWriteSync;

  constructor(cols: unknown, rows: unknown) {
    this.#term = new Terminal({
      cols: clamp(cols, MIN_COLS, MAX_COLS, 80),
      rows: clamp(rows, MIN_ROWS, MAX_ROWS, 24),
      scrollback: SCROLLBACK,
      allowProposedApi: true,
      logLevel: 'off',
    });
    this.#core = (this.#term as unknown as { _core: CoreWithWriteSync })._core;
  }

  write(bytes: Uint8Array): void {
    if (bytes.length > 0) this.#core.writeSync(bytes);
  }

  resize(cols: unknown, rows: unknown): void {
    this.#term.resize(
      clamp(cols, MIN_COLS, MAX_COLS, this.#term.cols),
      clamp(rows, MIN_ROWS, MAX_ROWS, this.#term.rows),
    );
  }

  /** True while a full-screen program has the alternate screen (vim, less, top). */
  get alternate(): boolean {
    return this.#term.buffer.active.type === 'alternate';
  }

  /** True when the program asked for bracketed paste (DECSET 2004), as bash's readline does. */
  get bracketedPaste(): boolean {
    return this.#term.modes.bracketedPasteMode;
  }

  /** The row of the cursor, counted from the top of the scrollback. */
  #cursorRow(): number {
    const b = this.#term.buffer.active;
    return b.baseY + b.cursorY;
  }

  /** The first row of the logical line that `row` belongs to (rows joined by auto-wrap are one line). */
  #logicalStart(row: number): number {
    const b = this.#term.buffer.active;
    let r = row;
    while (r > 0 && b.getLine(r)?.isWrapped) r--;
    return r;
  }

  /**
   * Marks the start of the cursor's logical line, and returns the text before the cursor on it (the
   * prompt, when the shell is waiting for input). Undefined on the alternate screen.
   */
  markLine(): { start: LineStart; before: string } | undefined {
    if (this.alternate) return undefined;
    const cursor = this.#cursorRow();
    const first = this.#logicalStart(cursor);
    const marker = this.#term.registerMarker(first - cursor);
    if (!marker) return undefined;
    const b = this.#term.buffer.active;
    const before = this.text(first, cursor, b.cursorX);
    return { start: { marker }, before };
  }

  /**
   * The text from the row `start` marks to the end of the cursor's logical line: rows joined by
   * auto-wrap are one line, other row breaks are `\n`. Undefined when the marked row is gone (scrolled
   * out of the scrollback, or cleared).
   */
  textFrom(start: LineStart): string | undefined {
    if (start.marker.isDisposed || start.marker.line < 0) return undefined;
    const b = this.#term.buffer.active;
    let last = this.#cursorRow();
    while (b.getLine(last + 1)?.isWrapped) last++;
    if (start.marker.line > last) return undefined;
    return this.text(start.marker.line, last);
  }

  /** Rows `from`..`to` as text; on row `to`, only the cells before `endCol` when given. */
  text(from: number, to: number, endCol?: number): string {
    const b = this.#term.buffer.active;
    let out = '';
    for (let r = from; r <= to; r++) {
      const line = b.getLine(r);
      if (!line) break;
      const continues = b.getLine(r + 1)?.isWrapped === true && r < to;
      if (r > from && !line.isWrapped) out = out.replace(/ +$/, '') + '\n';
      out +=
        r === to && endCol !== undefined
          ? line.translateToString(false, 0, endCol)
          : line.translateToString(!continues);
    }
    return out;
  }

  dispose(): void {
    this.#term.dispose();
  }
}
