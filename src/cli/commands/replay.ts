/**
 * `sealgate replay <source> <session> --key …`: plays a session's terminal channel on this terminal
 * with its recorded timing (`--speed`, `--idle-limit`). When stdin is a terminal: space pauses and
 * resumes, `.` plays one event while paused, `q` (or Ctrl-C) quits. `--at` starts part-way: everything
 * before it is written at once, so the screen is as it was, then playback goes on in time.
 *
 * Only output is played (DATA_OUT and DATA_ERR, as the user saw them). A recorded window change cannot
 * resize this terminal; a terminal smaller than the recording is warned about at the start.
 */
import { Osc52Filter } from '../../audit/cast/osc52-filter.js';
import type { CryptoProvider } from '../../crypto/index.js';
import { DEFAULT_SIZE } from '../../audit/cast/channel.js';
import { CastError } from '../../audit/cast/errors.js';
import { beforeStart, parseStartAt, waitMs, type StartAt } from '../../audit/cast/replay-clock.js';
import { EXIT, UsageError } from '../errors.js';
import {
  castFailure,
  note,
  openTerminalSession,
  sessionId,
  type TerminalSessionOptions,
} from './terminal-session.js';

export interface ReplayCommandOptions extends TerminalSessionOptions {
  readonly speed?: string;
  readonly idleLimit?: string;
  readonly at?: string;
}

function positive(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what} must be a number above 0, not "${text}"`);
  return n;
}

/** The keys, when stdin is a terminal; otherwise playback just runs. */
class Controls {
  paused = false;
  quit = false;
  #step = false;
  #wake: (() => void) | undefined;
  readonly #raw: boolean;

  constructor() {
    this.#raw = Boolean(process.stdin.isTTY);
    if (!this.#raw) return;
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (b: Buffer) => {
      for (const c of b.toString('latin1')) {
        if (c === ' ') this.paused = !this.paused;
        else if (c === '.' && this.paused) this.#step = true;
        else if (c === 'q' || c === '\x03') this.quit = true;
        else continue;
        this.#wake?.();
      }
    });
  }

  /** Waits `ms` (cut short by quit or pause), then while paused until resumed, stepped or quit. */
  async wait(ms: number): Promise<void> {
    if (ms > 0 && !this.paused) await this.#sleep(ms, () => this.quit || this.paused);
    while (this.paused && !this.quit) {
      if (this.#step) {
        this.#step = false;
        return;
      }
      await this.#sleep(60_000, () => this.quit || !this.paused || this.#step);
    }
  }

  #sleep(ms: number, stop: () => boolean): Promise<void> {
    return new Promise((done) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        done();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = () => {
        if (stop()) finish();
      };
    });
  }

  close(): void {
    if (!this.#raw) return;
    process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}

function writeOut(data: Uint8Array): Promise<void> {
  return new Promise((done) => {
    if (process.stdout.write(data)) done();
    else process.stdout.once('drain', done);
  });
}

/** Leaves the alternate screen, shows the cursor, stops mouse reports and bracketed paste, resets colours. */
const TERMINAL_RESET =
  '\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?1l\x1b>\x1b[0m\r\n';

export async function replayCommand(
  provider: CryptoProvider,
  sourcePath: string,
  sessionText: string,
  opts: ReplayCommandOptions,
): Promise<number> {
  const session = sessionId(sessionText, 'the session', true);
  const speed = positive(opts.speed, '--speed') ?? 1;
  const idleLimit = positive(opts.idleLimit, '--idle-limit');
  let terminal;
  try {
    terminal = await openTerminalSession(provider, sourcePath, session, opts, {
      action: 'replay',
      details: { format: 'replay', ...(opts.at !== undefined ? { at: opts.at } : {}) },
    });
  } catch (err) {
    return castFailure(err);
  }
  if (typeof terminal === 'number') return terminal;
  let start: StartAt = {};
  if (opts.at !== undefined) {
    const parsed = parseStartAt(opts.at, terminal.channel.startUs);
    if (!parsed) {
      terminal.close();
      throw new UsageError(
        `--at must be a leaf index (1234), seconds from the start (90s) or an ISO 8601 time, not "${opts.at}"`,
      );
    }
    start = parsed;
  }
  const size = terminal.channel.pty ?? DEFAULT_SIZE;
  if (process.stdout.isTTY && (process.stdout.columns < size.cols || process.stdout.rows < size.rows)) {
    note(
      `this terminal is ${process.stdout.columns}x${process.stdout.rows}; the session was recorded at ` +
        `${size.cols}x${size.rows} and may not show right`,
    );
  }
  process.stdout.on('error', () => undefined); // a reader gone away ends playback below
  const controls = new Controls();
  // Recorded output is hostile: it must not write the auditor's clipboard (OSC 52).
  const clipboard = new Osc52Filter();
  let played = 0;
  try {
    let prevUs = terminal.channel.startUs;
    for await (const e of terminal.events()) {
      if (controls.quit || process.stdout.destroyed) break;
      if (e.code !== 'o') continue;
      if (!beforeStart(e, start)) {
        await controls.wait(
          played === 0 ? 0 : waitMs(prevUs, e.timeUs, { speed, ...(idleLimit ? { idleLimit } : {}) }),
        );
        if (controls.quit) break;
        played++;
      }
      prevUs = e.timeUs;
      await writeOut(clipboard.push(e.data));
    }
  } catch (err) {
    return castFailure(err);
  } finally {
    controls.close();
    terminal.close();
    const held = clipboard.end();
    if (held.length > 0 && !process.stdout.destroyed) await writeOut(held);
    if (clipboard.removed > 0)
      note(`dropped ${clipboard.removed} clipboard write(s) (OSC 52) from the recorded output`);
    // The recording may have left the terminal in any mode (alternate screen, hidden cursor, mouse
    // reporting, bracketed paste, colours): put the auditor's terminal back.
    if (process.stdout.isTTY && !process.stdout.destroyed) process.stdout.write(TERMINAL_RESET);
  }
  if (opts.at !== undefined && played === 0 && !controls.quit) {
    throw new UsageError(
      new CastError('START_INVALID', `--at ${opts.at} is past the session's last output`).message,
    );
  }
  return EXIT.ok;
}
