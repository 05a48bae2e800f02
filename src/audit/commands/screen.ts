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
  readonly coreService: { readonly isCursorHidden: boolean };
}

/**
 * Lines kept above the screen: enough for a pasted block or a long wrapped line to stay readable, small
 * enough that a terminal costs a few hundred KiB (a gate runs one per interactive session). A pasted
 * block longer than this is read from what is still on the screen.
 */
const SCROLLBACK = 200;
const MIN_COLS = 2;
const MIN_ROWS = 1;
/**
 * Sizes beyond these are recorded values we do not trust (a hostile client's PTY_REQ or WINDOW_CHANGE):
 * clamped, so that one terminal costs at most a few MB (a 4K screen in a small font is about 400x120).
 */
const MAX_COLS = 500;
const MAX_ROWS = 200;

function clamp(n: unknown, min: number, max: number, fallback: number): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) return fallback;
  return Math.min(max, Math.max(min, Math.floor(n)));
}

/** A recorded terminal size made safe to emulate: clamped to 2..500 columns and 1..200 rows. */
export function terminalSize(
  cols: unknown,
  rows: unknown,
  fallback = { cols: 80, rows: 24 },
): { cols: number; rows: number } {
  return {
    cols: clamp(cols, MIN_COLS, MAX_COLS, fallback.cols),
    rows: clamp(rows, MIN_ROWS, MAX_ROWS, fallback.rows),
  };
}

/**
 * Guards a headless terminal against recorded output meant to stall it: a REP (`CSI n b`, repeat the
 * last character) with a count beyond the screen's cells is dropped (xterm would repeat it n times; a
 * 12-byte sequence would take a minute). Recorded output is hostile input.
 */
export function guardTerminal(term: XTerm): void {
  term.parser.registerCsiHandler({ final: 'b' }, (params) => {
    const n = typeof params[0] === 'number' ? params[0] : 1;
    return n > term.cols * term.rows; // true: handled here, i.e. dropped
  });
}

/** A position on the screen: the first row of a logical line (tracked through scrolling and reflow). */
export interface LineStart {
  readonly marker: IMarker;
}

/** True when `line` begins with `prompt` (whose trailing blanks the screen text may have lost). */
export function startsWithPrompt(line: string, prompt: string): boolean {
  return line.startsWith(prompt) || (prompt.startsWith(line) && prompt.slice(line.length).trim() === '');
}

/** A row that does not move: what a marker is on the alternate screen. */
function fixedRow(row: number): IMarker {
  let disposed = false;
  return {
    id: -1,
    get line() {
      return disposed ? -1 : row;
    },
    get isDisposed() {
      return disposed;
    },
    dispose() {
      disposed = true;
    },
  } as unknown as IMarker;
}

export class Screen {
  readonly #term: XTerm;
  readonly #core: CoreWithWriteSync;

  constructor(cols: unknown, rows: unknown) {
    this.#term = new Terminal({
      ...terminalSize(cols, rows),
      scrollback: SCROLLBACK,
      allowProposedApi: true,
      logLevel: 'off',
    });
    guardTerminal(this.#term);
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

  get rows(): number {
    return this.#term.rows;
  }

  /** True while a full-screen program has the alternate screen (vim, less, top). */
  get alternate(): boolean {
    return this.#term.buffer.active.type === 'alternate';
  }

  /**
   * True while a full-screen program has the terminal: the alternate screen (vim, less), or a hidden
   * cursor (top draws on the normal screen but hides the cursor while it runs).
   */
  get fullScreen(): boolean {
    return this.alternate || this.#core.coreService.isCursorHidden;
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
   * prompt, when the shell is waiting for input).
   */
  markLine(): { start: LineStart; before: string } | undefined {
    const cursor = this.#cursorRow();
    const first = this.#logicalStart(cursor);
    // xterm keeps markers on the normal screen only; the alternate screen has no scrollback, so a row
    // number serves there (a prompt drawn on it: the caller treats such lines as not confident).
    const marker = this.alternate ? fixedRow(first) : this.#term.registerMarker(first - cursor);
    if (!marker) return undefined;
    const b = this.#term.buffer.active;
    const before = this.text(first, cursor, b.cursorX);
    return { start: { marker }, before };
  }

  /** A marker on the cursor's row (to remember the lowest row a line reached). */
  markCursorRow(): IMarker | undefined {
    return this.alternate ? undefined : this.#term.registerMarker(0);
  }

  /** True when the cursor is below `marker`'s row (or the marker is gone). */
  cursorBelow(marker: IMarker | undefined): boolean {
    return marker === undefined || marker.isDisposed || this.#cursorRow() > marker.line;
  }

  /**
   * The command line's text: from the last logical line at or above the cursor, and at or below `start`,
   * that begins with `prompt` (a shell that listed completions redraws the line lower down), to the end
   * of the lowest row the line reached (`lowest`: a pasted block spans rows below the cursor). Rows
   * joined by auto-wrap are one line; other row breaks are `\n`. Undefined when the start is gone
   * (scrolled out of the scrollback).
   */
  commandText(
    start: LineStart,
    lowest: IMarker | undefined,
    prompts: readonly string[],
  ): { text: string; prompt?: string; moved: boolean; midLine?: boolean } | undefined {
    const b = this.#term.buffer.active;
    const cursor = this.#cursorRow();
    // The marked row is gone or below the cursor when the screen was cleared (Ctrl-L, `clear`) while the
    // line was typed: the shell redrew it at the top, so search the visible screen instead.
    const marked = !start.marker.isDisposed && start.marker.line >= 0 && start.marker.line <= cursor;
    const first = marked ? start.marker.line : this.#logicalStart(Math.max(b.baseY, 0));
    const low = lowest && !lowest.isDisposed && lowest.line > cursor ? lowest.line : cursor;
    const end = this.#logicalEnd(low);
    const wanted = prompts.filter((p) => p !== '');
    for (let r = cursor; r >= first && cursor - r < MAX_ROWS && wanted.length > 0; r--) {
      if (b.getLine(r)?.isWrapped) continue;
      const head = this.text(r, this.#logicalEnd(r));
      const prompt = wanted.find((p) => startsWithPrompt(head, p));
      if (prompt !== undefined) return { text: this.text(r, end), prompt, moved: r !== first || !marked };
    }
    // A prompt printed after other text on its row (a terminal reply the tty echoed, output without a
    // final newline): the text after the prompt's last occurrence on the cursor's line.
    const own = this.text(this.#logicalStart(cursor), end);
    for (const prompt of wanted) {
      const at = own.lastIndexOf(prompt);
      if (at > 0) return { text: own.slice(at), prompt, moved: true, midLine: true };
    }
    if (!marked) return { text: own, moved: true };
    return { text: this.text(first, end), moved: false };
  }

  #logicalEnd(row: number): number {
    const b = this.#term.buffer.active;
    let r = row;
    while (b.getLine(r + 1)?.isWrapped) r++;
    return r;
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
