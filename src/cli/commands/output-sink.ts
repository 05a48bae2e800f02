/**
 * Output of decrypt and the cast commands: a file created 0600 (it is plaintext of sealed sessions; refused if it
 * exists, unless --force) or stdout, buffered, with stdout's back-pressure respected. A reader that goes
 * away (EPIPE: `… | head`) ends the command quietly.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { UsageError } from '../errors.js';

const CHUNK = 64 * 1024;

export class OutputClosed extends Error {}

/** Refuses an output file that exists (without --force) before any work, not after a first pass. */
export function refuseExisting(paths: readonly (string | undefined)[], force: boolean): void {
  if (force) return;
  for (const path of paths) {
    if (path !== undefined && existsSync(path)) {
      throw new UsageError(`${path} exists; refusing to overwrite it (use --force)`);
    }
  }
}

export class OutputSink {
  #parts: (string | Uint8Array)[] = [];
  #size = 0;
  #fd: number | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(
    readonly path: string | undefined,
    force: boolean,
  ) {
    if (path === undefined) {
      process.stdout.on('error', () => {
        this.#closed = true;
        this.#wake?.();
      });
      return;
    }
    try {
      this.#fd = openSync(path, force ? 'w' : 'wx', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new UsageError(`${path} exists; refusing to overwrite it (use --force)`);
      throw new UsageError(`cannot create ${path} (${String(code)})`);
    }
  }

  async write(part: string | Uint8Array): Promise<void> {
    this.#parts.push(part);
    this.#size += part.length;
    if (this.#size >= CHUNK) await this.flush();
  }

  async line(text: string): Promise<void> {
    await this.write(`${text}\n`);
  }

  async flush(): Promise<void> {
    if (this.#closed) throw new OutputClosed();
    if (this.#size === 0) return;
    const chunk = Buffer.concat(this.#parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
    this.#parts = [];
    this.#size = 0;
    if (this.#fd !== undefined) {
      try {
        writeSync(this.#fd, chunk);
      } catch (err) {
        throw new UsageError(
          `cannot write ${this.path ?? ''} (${String((err as NodeJS.ErrnoException).code)})`,
        );
      }
    } else if (!process.stdout.write(chunk)) {
      await new Promise<void>((done) => {
        this.#wake = done;
        process.stdout.once('drain', done);
      });
      this.#wake = undefined;
    }
    if (this.#closed) throw new OutputClosed();
  }

  /** Flushes and closes; false if stdout's reader went away. */
  async close(): Promise<boolean> {
    try {
      await this.flush();
    } catch (err) {
      if (!(err instanceof OutputClosed)) throw err;
    } finally {
      if (this.#fd !== undefined) closeSync(this.#fd);
      this.#fd = undefined;
    }
    return !this.#closed;
  }
}
