/**
 * The util-linux `script` formats that `scriptreplay` plays (script(1), scriptreplay(1)): a typescript
 * file of raw bytes and a timing file. Bytes are carried as they are: no decoding, nothing replaced.
 *
 * - **classic** (output only): timing lines `DELAY BYTES`, DELAY the seconds since the previous output.
 *   It has no place for a resize: a window change is not carried (say `--input` to get the advanced
 *   format, which has one).
 * - **advanced** (`script --logging-format advanced`): one typescript holding output and input in time
 *   order (`scriptreplay -B`), timing lines `O DELAY BYTES`, `I DELAY BYTES`,
 *   `S DELAY SIGWINCH ROWS=R COLS=C`, and `H DELAY NAME VALUE` information lines; DELAY is the
 *   seconds since the previous line of any kind.
 *
 * scriptreplay skips the typescript's first line (script writes `Script started on …` there), so the
 * typescript starts with such a line too, naming the session.
 */
import { DEFAULT_SIZE, type TerminalChannel } from './channel.js';
import { secondsText, type TermEvent } from './terminal-events.js';

export type ScriptFormat = 'classic' | 'advanced';

export interface ScriptChunk {
  /** Bytes to append to the typescript. */
  readonly typescript: Uint8Array[];
  /** Lines to append to the timing file (without newlines). */
  readonly timing: string[];
}

const EMPTY: ScriptChunk = { typescript: [], timing: [] };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** `2026-01-05 10:00:00+00:00`, as script(1) writes it. */
function scriptDate(us: bigint): string {
  const iso = new Date(Number(us / 1000n)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00`;
}

export class ScriptWriter {
  #lastUs: bigint;
  #exit: number | undefined;

  constructor(
    private readonly channel: TerminalChannel,
    private readonly format: ScriptFormat,
  ) {
    this.#lastUs = channel.startUs;
  }

  header(): ScriptChunk {
    const c = this.channel;
    const cols = c.pty?.cols ?? DEFAULT_SIZE.cols;
    const rows = c.pty?.rows ?? DEFAULT_SIZE.rows;
    const fields = [
      ...(c.pty ? [`TERM="${c.pty.term}"`] : []),
      ...(c.kind === 'exec' ? [`COMMAND=${JSON.stringify(c.command ?? '')}`] : []),
      `COLUMNS="${cols}"`,
      `LINES="${rows}"`,
      `SEALGATE_SESSION="${c.session}"`,
      `CHANNEL="${c.channel}"`,
    ];
    const line = text(`Script started on ${scriptDate(c.startUs)} [${fields.join(' ')}]\n`);
    if (this.format === 'classic') return { typescript: [line], timing: [] };
    return {
      typescript: [line],
      timing: [
        `H 0.000000 START_TIME ${scriptDate(c.startUs)}`,
        ...(c.pty ? [`H 0.000000 TERM ${c.pty.term}`] : []),
        ...(c.kind === 'exec' ? [`H 0.000000 COMMAND ${c.command ?? ''}`] : []),
        `H 0.000000 COLUMNS ${cols}`,
        `H 0.000000 LINES ${rows}`,
      ],
    };
  }

  event(e: TermEvent): ScriptChunk {
    const advanced = this.format === 'advanced';
    switch (e.code) {
      case 'o':
        if (e.data.length === 0) return EMPTY;
        return {
          typescript: [e.data],
          timing: [`${advanced ? 'O ' : ''}${this.#delay(e.timeUs)} ${e.data.length}`],
        };
      case 'i':
        if (!advanced || e.data.length === 0) return EMPTY;
        return { typescript: [e.data], timing: [`I ${this.#delay(e.timeUs)} ${e.data.length}`] };
      case 'r':
        if (!advanced) return EMPTY;
        return {
          typescript: [],
          timing: [`S ${this.#delay(e.timeUs)} SIGWINCH ROWS=${e.rows} COLS=${e.cols}`],
        };
      case 'x':
        this.#exit = e.status;
        return EMPTY;
    }
  }

  /** script(1)'s closing line, and in the advanced format the duration and exit code. */
  end(): ScriptChunk {
    const exit = this.#exit === undefined ? '' : ` [COMMAND_EXIT_CODE="${this.#exit}"]`;
    const typescript = [text(`\nScript done on ${scriptDate(this.#lastUs)}${exit}\n`)];
    if (this.format === 'classic') return { typescript, timing: [] };
    return {
      typescript,
      timing: [
        `H 0.000000 DURATION ${secondsText(this.#lastUs - this.channel.startUs)}`,
        ...(this.#exit === undefined ? [] : [`H 0.000000 EXIT_CODE ${this.#exit}`]),
      ],
    };
  }

  #delay(timeUs: bigint): string {
    const at = timeUs > this.#lastUs ? timeUs : this.#lastUs;
    const delay = secondsText(at - this.#lastUs);
    this.#lastUs = at;
    return delay;
  }
}
