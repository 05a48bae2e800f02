/**
 * A two-slot state file on a descriptor kept open (docs/FORMAT.md §6.2; the format is
 * format/state-file.ts). signed.state and tree.state are written at every checkpoint; done with a temp
 * file and a rename, each write needed new descriptors, and a flood of connections that took them all
 * made the signer fail (issue 10). Here only `open`, at start, may open or create a file (and convert
 * one in the old format); `read` and `write` use the descriptor it kept: pread, pwrite, fdatasync.
 *
 * `read` reads the file each time (8 KiB through the kept descriptor), so the file stays the one truth
 * even if two objects hold it (two signers on one state file are serialized by signer.ts).
 */
import fs from 'node:fs';
import { SealError, type SealErrorCode } from './errors.js';
import {
  decodeStateFile,
  encodeSlot,
  initialStateFile,
  isSlotFile,
  MAX_STATE_PAYLOAD,
  nextSlot,
  STATE_FILE_SIZE,
  type CurrentState,
} from './format/state-file.js';
import { atomicReplace, writeAllAt, type StoreFs } from './store-io.js';

export interface StateFileOptions {
  /** The error code for a file that cannot be read or decoded. */
  readonly code: SealErrorCode;
  /** Checks a payload in the old format (the whole file was the payload); throws if it is invalid. */
  readonly checkLegacy?: (payload: Uint8Array) => void;
}

/**
 * Reads a state file in either format without opening it for writing (a reader, or a writer at start).
 * Undefined when there is no file or it holds no state yet.
 */
export function readStateFile(path: string, opts: StateFileOptions): Uint8Array | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SealError(opts.code, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!isSlotFile(view)) {
    opts.checkLegacy?.(view);
    return Uint8Array.from(view);
  }
  return decodeStateFile(view, path, opts.code).payload;
}

export class StateFile {
  #closed = false;

  private constructor(
    readonly path: string,
    readonly fd: number,
    private readonly io: StoreFs,
    private readonly opts: StateFileOptions,
  ) {}

  /**
   * Opens `path` for reading and writing, first making it a two-slot file if it is missing (no state)
   * or in the old format (its payload goes into slot A): both with a temp file and a rename, so that a
   * crash leaves the old file or the new one. This is the only step that opens files.
   */
  static async open(path: string, io: StoreFs, opts: StateFileOptions): Promise<StateFile> {
    let bytes: Buffer | undefined;
    try {
      bytes = fs.readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SealError(opts.code, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    if (!bytes) {
      await atomicReplace(path, initialStateFile(undefined), io);
    } else if (!isSlotFile(bytes)) {
      const legacy = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
      opts.checkLegacy?.(legacy);
      if (legacy.length === 0 || legacy.length > MAX_STATE_PAYLOAD) {
        throw new SealError(opts.code, `${path} has ${legacy.length} bytes: neither format`);
      }
      await atomicReplace(path, initialStateFile(legacy), io);
    } else {
      decodeStateFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), path, opts.code);
    }
    const fd = fs.openSync(path, 'r+');
    return new StateFile(path, fd, io, opts);
  }

  /** The current state (undefined: none yet), read through the kept descriptor. */
  read(): Uint8Array | undefined {
    return this.#current().payload;
  }

  /**
   * Makes `payload` the state, durably: the other slot is written with the next generation and the
   * file fdatasynced (its size never changes, so that covers it). Until that returns the old state
   * stands; a crash in the middle leaves it standing.
   */
  async write(payload: Uint8Array): Promise<void> {
    if (this.#closed) throw new SealError('STORE_NOT_WRITABLE', `${this.path} is closed`);
    const next = nextSlot(this.#current());
    await writeAllAt(this.io, this.fd, encodeSlot(next.generation, payload), next.offset);
    await this.io.fdatasync(this.fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Best effort: every write was fdatasynced before it returned.
    }
  }

  #current(): CurrentState {
    if (this.#closed) throw new SealError('STORE_NOT_WRITABLE', `${this.path} is closed`);
    const buf = Buffer.alloc(STATE_FILE_SIZE);
    let got = 0;
    try {
      while (got < buf.length) {
        const n = fs.readSync(this.fd, buf, got, buf.length - got, got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw new SealError(this.opts.code, `cannot read ${this.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return decodeStateFile(new Uint8Array(buf.buffer, 0, got), this.path, this.opts.code);
  }
}
