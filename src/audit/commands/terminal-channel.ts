/**
 * Command lines of one interactive channel (docs/AUDITOR.md §6.2): the target's output drives a headless
 * terminal; the user's Enter marks a moment; the command is the line on the screen when that Enter is
 * echoed (the line feed the shell prints on accepting the line), without the prompt.
 *
 * - The prompt is what was on the line, before the cursor, at the first keystroke of the line.
 * - Keystrokes on the alternate screen (vim, less, top) are not command lines.
 * - A line typed but never echoed (a password prompt) gives no command: the screen, never the input, is
 *   the source of a command's text, so a secret typed at a prompt that does not echo cannot appear.
 * - Confidence: when the whole line was plain typing, the screen must show exactly what was typed; when
 *   the prompt is not found on the line, or the Enter was never echoed, the command is not confident.
 */
import { elisionPoint, endsClean } from './elide.js';
import { InputScanner } from './input-scanner.js';
import type { IMarker } from '@xterm/headless';
import { Screen, startsWithPrompt, type LineStart } from './screen.js';

type ScreenRead = NonNullable<ReturnType<Screen['commandText']>>;

export interface TerminalLine {
  readonly text: string;
  /** Leaf index and time of the DATA_IN record that carried the Enter. */
  readonly index: number;
  readonly timeUs: bigint;
  readonly confident: boolean;
  readonly note?: string;
}

/** The line being typed: where it starts on the screen, its prompt, what was typed. */
interface OpenLine {
  readonly start: LineStart;
  readonly prompt: string;
  /** Typed text bytes (up to MAX_TYPED), for the plain-typing check only; never output. */
  readonly typed: number[];
  /** Only text was typed: no edit key, no paste. */
  plain: boolean;
  /** The lowest row the cursor reached while the line was typed or echoed. */
  lowest?: IMarker;
}

interface PendingEnter {
  readonly index: number;
  readonly timeUs: bigint;
  readonly line: OpenLine;
  /** Typed while an earlier Enter was still waiting for its echo. */
  readonly typeAhead: boolean;
}

const LF = 0x0a;
const CRLF = new Uint8Array([0x0d, 0x0a]);
const MAX_TYPED = 4096;
const MAX_PENDING = 64;
const MAX_PROMPTS = 8;
/** readline's incremental search prompt, which may still be on the line when the Enter is echoed. */
const ISEARCH = /^\((?:failed )?(?:reverse-)?i-search\)`[^']*': /;

const utf8 = new TextDecoder('utf-8');

function release(line: OpenLine): void {
  line.start.marker.dispose();
  line.lowest?.dispose();
}

/**
 * The text after `prompt` on a line, or undefined when the line does not start with it. The screen
 * text has its trailing blanks trimmed, so a line that is the prompt alone may lack the prompt's own.
 */
function afterPrompt(line: string, prompt: string): string | undefined {
  if (line.startsWith(prompt)) return line.slice(prompt.length);
  return startsWithPrompt(line, prompt) ? '' : undefined;
}

export class TerminalChannel {
  readonly #screen: Screen;
  readonly #scanner = new InputScanner();
  #line: OpenLine | undefined;
  readonly #pending: PendingEnter[] = [];
  /** Prompts of confident lines, most recent first: used to read a type-ahead line. */
  readonly #prompts: string[] = [];
  /** The last output written ended outside any escape or UTF-8 sequence. */
  #clean = true;
  /**
   * A command was accepted and no new line has been typed since: what the target does now (switching
   * to the alternate screen, hiding the cursor) is that command's program.
   */
  #running: boolean;
  /** The terminal was in full-screen mode after the last write. */
  #wasFullScreen = false;
  /**
   * The current full-screen mode began while a command ran (vim, less, top). When it did not (a prompt
   * that switches to the alternate screen or hides the cursor), keys are still read as command lines,
   * not confident: a user cannot hide commands by changing the prompt.
   */
  #fullScreenByCommand = false;

  /** `running`: the channel is an exec with a PTY, so its command runs from the start. */
  constructor(cols: unknown, rows: unknown, running = false) {
    this.#screen = new Screen(cols, rows);
    this.#running = running;
  }

  /** Keys go to a full-screen program that a command started: they are not command lines. */
  #programHasKeys(): boolean {
    return this.#screen.fullScreen && this.#fullScreenByCommand;
  }

  /** After every write: notes when full-screen mode begins or ends, and whether a command began it. */
  #observeMode(): void {
    const full = this.#screen.fullScreen;
    if (full && !this.#wasFullScreen) this.#fullScreenByCommand = this.#running;
    if (!full && this.#wasFullScreen) this.#running = false; // the program ended
    this.#wasFullScreen = full;
  }

  #write(bytes: Uint8Array): void {
    this.#screen.write(bytes);
    this.#observeMode();
  }

  resize(cols: unknown, rows: unknown): void {
    this.#screen.resize(cols, rows);
  }

  /** The user's keystrokes; returns command lines that a fresh prompt shows were never echoed. */
  input(bytes: Uint8Array, index: number, timeUs: bigint): TerminalLine[] {
    const out: TerminalLine[] = [];
    for (const key of this.#scanner.scan(bytes)) {
      if (this.#programHasKeys()) continue; // a full-screen program's keys
      if (key.kind === 'interrupt') {
        this.#closeLine();
        continue;
      }
      const line = (this.#line ??= this.#openLine(out));
      if (!line) continue;
      switch (key.kind) {
        case 'text':
          if (line.typed.length < MAX_TYPED) line.typed.push(key.byte);
          else line.plain = false;
          break;
        case 'edit':
        case 'paste-start':
        case 'paste-end':
          line.plain = false;
          break;
        case 'enter':
          if (this.#pending.length < MAX_PENDING) {
            this.#pending.push({ index, timeUs, line, typeAhead: this.#pending.length > 0 });
          } else {
            release(line);
          }
          this.#line = undefined;
          break;
      }
    }
    return out;
  }

  /** The target's output; returns the command lines whose Enter it echoed. */
  output(bytes: Uint8Array): TerminalLine[] {
    const out: TerminalLine[] = [];
    let from = 0;
    while (this.#pending.length > 0 && from < bytes.length) {
      const lf = bytes.indexOf(LF, from);
      if (lf < 0) break;
      this.#write(bytes.subarray(from, lf));
      this.#trackLowest();
      from = lf;
      this.#resolveAtLineFeed(out);
      this.#write(bytes.subarray(lf, lf + 1));
      from = lf + 1;
    }
    let rest = bytes.subarray(from);
    if (this.#pending.length === 0 && !this.#line && this.#clean && !this.#screen.fullScreen) {
      const cut = elisionPoint(rest, this.#screen.rows + 1);
      if (cut > 0) {
        this.#write(CRLF);
        rest = rest.subarray(cut);
      }
    }
    this.#write(rest);
    this.#clean = endsClean(bytes);
    this.#trackLowest();
    return out;
  }

  /** The channel ended: Enters never echoed are read off the screen as it is, not confident. */
  end(): TerminalLine[] {
    const out: TerminalLine[] = [];
    for (const p of this.#pending.splice(0)) {
      this.#emit(p, this.#read(p.line), out, 'the Enter was not echoed');
    }
    this.#closeLine();
    this.#screen.dispose();
    return out;
  }

  /** Remembers how far down the open line and the oldest waiting Enter's line reached. */
  #trackLowest(): void {
    for (const line of [this.#line, this.#pending[0]?.line]) {
      if (!line || !this.#screen.cursorBelow(line.lowest)) continue;
      line.lowest?.dispose();
      line.lowest = this.#screen.markCursorRow();
    }
  }

  #openLine(out: TerminalLine[]): OpenLine | undefined {
    const mark = this.#screen.markLine();
    if (!mark) return undefined;
    this.#running = false;
    // Typing starts at a fresh prompt while Enters still wait for their echo: the shell has read past
    // them. One typed ahead never showed a line of its own (a password typed before its prompt): it is
    // dropped, or it would take the next command's place. Any other is read as it stands, not confident.
    const atPrompt = this.#prompts.some((p) => mark.before.trimEnd() === p.trimEnd());
    if (atPrompt && this.#pending.length > 0) {
      for (const p of this.#pending.splice(0)) {
        if (p.typeAhead) release(p.line);
        else this.#emit(p, this.#read(p.line), out, 'the Enter was not echoed');
      }
    }
    return { start: mark.start, prompt: mark.before, typed: [], plain: true };
  }

  #closeLine(): void {
    if (this.#line) release(this.#line);
    this.#line = undefined;
  }

  /** A line feed in the output, before it is written: the oldest waiting Enter's echo, if it fits. */
  #resolveAtLineFeed(out: TerminalLine[]): void {
    const p = this.#pending[0];
    if (!p) return;
    if (this.#programHasKeys()) return;
    if (p.typeAhead) {
      // Its line was marked before the shell printed a prompt for it: read the cursor's line instead,
      // and only once it starts with a prompt seen before (other line feeds are the earlier command's output).
      const mark = this.#screen.markLine();
      const read = mark ? this.#screen.commandText(mark.start, undefined, this.#prompts) : undefined;
      mark?.start.marker.dispose();
      if (read?.prompt === undefined) return;
      this.#pending.shift();
      this.#emit(p, read, out);
      return;
    }
    this.#pending.shift();
    this.#emit(p, this.#read(p.line), out);
  }

  #read(line: OpenLine): ScreenRead | undefined {
    return this.#screen.commandText(line.start, line.lowest, [line.prompt, ...this.#prompts]);
  }

  #emit(p: PendingEnter, read: ScreenRead | undefined, out: TerminalLine[], unechoed?: string): void {
    release(p.line);
    if (read === undefined) return;
    let confident = unechoed === undefined;
    let note = unechoed;
    let text = read.text;
    const search = ISEARCH.exec(text);
    if (read.prompt !== undefined) {
      text = afterPrompt(text, read.prompt) ?? text;
      if (read.midLine) {
        confident = false;
        note ??= 'the prompt was not at the start of its line';
      }
    } else if (search) {
      text = text.slice(search[0].length);
    } else if (p.line.prompt.trim() === '') {
      confident = false;
      note ??= 'no prompt on the line (input to a program, or typed ahead)';
    } else {
      confident = false;
      note ??= 'the prompt was not found on the line';
    }
    const lines = text
      .split('\n')
      .map((l) => l.replace(/\s+$/, ''))
      .filter((l) => l.trim() !== '');
    if (lines.length === 0) return; // nothing on the screen: an empty line, or input that was not echoed
    this.#running = true;
    if (this.#screen.fullScreen) {
      confident = false;
      note ??= 'typed while the terminal was in full-screen mode that no command had started';
    }
    if (confident && p.line.plain && !read.moved && !p.typeAhead) {
      const typed = utf8.decode(Uint8Array.from(p.line.typed)).replace(/\s+$/, '');
      if (lines.length !== 1 || lines[0] !== typed) {
        confident = false;
        note = 'the screen shows other text than was typed';
      }
    }
    const prompt = read.prompt;
    if (confident && prompt !== undefined && !this.#prompts.includes(prompt)) {
      this.#prompts.unshift(prompt);
      this.#prompts.length = Math.min(this.#prompts.length, MAX_PROMPTS);
    }
    for (const line of lines) {
      out.push({
        text: line,
        index: p.index,
        timeUs: p.timeUs,
        confident,
        ...(note !== undefined ? { note } : {}),
      });
    }
  }
}
