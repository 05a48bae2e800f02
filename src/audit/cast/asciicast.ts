/**
 * asciicast v2 and v3 (https://docs.asciinema.org/manual/asciicast/v2, …/v3): newline-delimited JSON, a
 * header object, then one `[time, code, data]` array per event. v2 gives each event's time since the
 * start; v3 the interval since the previous event. Codes written: `o` output (DATA_OUT and DATA_ERR),
 * `i` input (DATA_IN, only when asked: it holds what the user typed, passwords included), `r` resize
 * `"COLSxROWS"` (WINDOW_CHANGE), and in v3 `x` the exit status, last. Time 0 is the channel's first
 * record.
 *
 * Streaming and pure: `header()` once, then `event()` per record event, then `end()`; each returns the
 * lines to write (without newlines). Output and input text is decoded per stream (utf8-stream.ts).
 */
import { DEFAULT_SIZE, type TerminalChannel } from './channel.js';
import { secondsText, type TermEvent } from './terminal-events.js';
import { Utf8Stream } from './utf8-stream.js';

export type AsciicastVersion = 2 | 3;

export interface AsciicastOptions {
  readonly version: AsciicastVersion;
  /** Write DATA_IN as `i` events. */
  readonly input?: boolean;
}

export class AsciicastWriter {
  readonly #streams = { out: new Utf8Stream(), err: new Utf8Stream(), in: new Utf8Stream() };
  /** The time of the last event written (v3 intervals), and the latest time seen (never goes back). */
  #lastUs: bigint;
  #exit: Extract<TermEvent, { code: 'x' }> | undefined;

  constructor(
    private readonly channel: TerminalChannel,
    private readonly options: AsciicastOptions,
  ) {
    this.#lastUs = channel.startUs;
  }

  header(): string {
    const c = this.channel;
    const cols = c.pty?.cols ?? DEFAULT_SIZE.cols;
    const rows = c.pty?.rows ?? DEFAULT_SIZE.rows;
    const timestamp = Number(c.startUs / 1_000_000n);
    const title = `sealgate session ${c.session} channel ${c.channel}${c.login ? ` (${c.login})` : ''}`;
    const command = c.kind === 'exec' && c.command !== undefined ? { command: c.command } : {};
    if (this.options.version === 2) {
      return JSON.stringify({
        version: 2,
        width: cols,
        height: rows,
        timestamp,
        ...command,
        title,
        ...(c.pty ? { env: { TERM: c.pty.term } } : {}),
      });
    }
    return JSON.stringify({
      version: 3,
      term: { cols, rows, ...(c.pty ? { type: c.pty.term } : {}) },
      timestamp,
      ...command,
      title,
    });
  }

  event(e: TermEvent): string[] {
    switch (e.code) {
      case 'o':
        return this.#line(e.timeUs, 'o', this.#streams[e.stream].push(e.data));
      case 'i':
        return this.options.input ? this.#line(e.timeUs, 'i', this.#streams.in.push(e.data)) : [];
      case 'r':
        return this.#line(e.timeUs, 'r', `${e.cols}x${e.rows}`);
      case 'x':
        // The spec has it as the very last event; output can still arrive after the exit status.
        this.#exit = e;
        return [];
    }
  }

  /**
   * Incomplete UTF-8 tails left at the end, as U+FFFD, at the time of the last event; then, in v3, the
   * exit status.
   */
  end(): string[] {
    const out: string[] = [];
    for (const [name, stream] of Object.entries(this.#streams)) {
      if (name === 'in' && !this.options.input) continue;
      out.push(...this.#line(this.#lastUs, name === 'in' ? 'i' : 'o', stream.end()));
    }
    if (this.#exit && this.options.version === 3) {
      out.push(...this.#line(this.#exit.timeUs, 'x', String(this.#exit.status)));
    }
    return out;
  }

  #line(timeUs: bigint, code: string, data: string): string[] {
    if (data === '' && (code === 'o' || code === 'i')) return []; // all of it held back as a tail
    const at = timeUs > this.#lastUs ? timeUs : this.#lastUs;
    const time =
      this.options.version === 2 ? secondsText(at - this.channel.startUs) : secondsText(at - this.#lastUs);
    this.#lastUs = at;
    return [`[${time}, ${JSON.stringify(code)}, ${JSON.stringify(data)}]`];
  }
}
