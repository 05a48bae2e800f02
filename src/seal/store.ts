/**
 * The local append-only store (docs/FORMAT.md §6): one directory, one writer.
 *
 *     LOG              {"format":"sealgate-store-v1","origin","created"}
 *     entries.bin      frames u32 len || entry, in leaf order
 *     entries.idx      u64 offset of each frame in entries.bin
 *     checkpoints.bin  frames u32 len || signed note
 *     tree.state       compact tree state at the last checkpoint (two slots, state-file.ts)
 *     signed.state     the signer's last signed size and root (two slots; signer.ts writes it)
 *     writer.lock      {"run_id","pid","boot_id"} while a writer runs
 *
 * Writes are group-committed: `append` copies the frame into a pending batch and returns at once (the
 * large parts of an entry appended in parts, a sealed record's ciphertext, are kept by reference
 * instead: written from where they lie, never copied; their owner hands them over); the
 * batch is written with one writev and fdatasynced (entries.bin and entries.idx) when
 * `fsyncEveryEntries` entries are pending or `fsyncEveryMs` has passed since the first of them. Its
 * `durable` promise settles after that fsync: that is the acknowledgement of FORMAT.md §6.
 *
 * Fail closed: the first failed write or fsync puts the store in a FAILED state for good. A failed fsync
 * cannot be retried (after it the kernel may have dropped the dirty pages and cleared the error:
 * "fsyncgate", PostgreSQL 2018), so the store rejects every pending and later write with STORE_FAILED
 * and calls `onFailure` once, and the gate ends its sessions. It also leaves writer.lock in place, so
 * the next start runs crash recovery, which drops whatever a torn write left behind.
 *
 * No open(2) on the write path: a writer opens every file it writes while running (entries.bin,
 * entries.idx, checkpoints.bin, tree.state, and the directory, for the fsync after removing
 * writer.lock) at start and keeps it open, so that a process out of file descriptors (a connection
 * flood) can still append, checkpoint and close cleanly.
 *
 * `LogStore` is the interface the log writer uses; an object store can implement it later.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseCheckpoint } from './checkpoint.js';
import { SealError } from './errors.js';
import { parseNote } from './note.js';
import { readStateFile, StateFile } from './state-file.js';
import { atomicReplace, nodeStoreFs, syncDir, writeAll, type StoreFs } from './store-io.js';

export { atomicReplace, nodeStoreFs, type StoreFs } from './store-io.js';

export interface LogStore {
  /** Entries appended, including those not yet durable. */
  readonly size: number;
  /** Entries covered by a completed fsync. */
  readonly durableSize: number;
  /**
   * Appends one entry, whole or as parts to be joined (a record sealed in parts); `durable` settles when
   * the fsync covering it returns (or the store fails).
   */
  append(entry: Uint8Array | readonly Uint8Array[]): { index: number; durable: Promise<void> };
  /** Writes and fsyncs everything appended so far. */
  flush(): Promise<void>;
  /** The entry at `index` (0 ≤ index < size). */
  entry(index: number): Uint8Array;
  /** Entries [from, to), in order. */
  entries(from: number, to: number): Iterable<Uint8Array>;
  /** Appends a signed checkpoint note; durable before it resolves. Its size must be ≤ durableSize. */
  appendCheckpoint(note: string): Promise<void>;
  /** Every stored checkpoint note, oldest first (reads the file: O(checkpoints)). */
  checkpoints(): string[];
  /** How many checkpoints are stored (O(1)). */
  readonly checkpointCount: number;
  /** The newest stored checkpoint (O(1)), if any. */
  lastCheckpoint(): string | undefined;
  /** Replaces tree.state durably, so that a crash leaves the old or the new state (FORMAT.md §6.2). */
  saveTreeState(state: Uint8Array): Promise<void>;
  loadTreeState(): Uint8Array | undefined;
  /** Flushes, releases writer.lock. Rejects with STORE_FAILED if the store failed (the lock then stays). */
  close(): Promise<void>;
  /**
   * Flushes and closes, but leaves writer.lock, as a crash would: the next start runs crash recovery.
   * For a run that failed without being able to record its end. Rejects like `close`.
   */
  abandon(): Promise<void>;
  /** The STORE_FAILED error once the store has failed (it accepts nothing more). */
  readonly failure: Error | undefined;
}

/** What crash recovery found and did, for the CRASH_RECOVERY system entry (FORMAT.md §3.3). */
export interface RecoveryInfo {
  /** The run id in the stale writer.lock. */
  readonly previousRunId: string;
  /** Bytes of a torn final frame dropped from entries.bin. */
  readonly truncatedBytes: number;
  /** Entries intact in entries.bin after recovery. */
  readonly entriesFound: number;
  /** Bytes of a torn final frame dropped from checkpoints.bin. */
  readonly truncatedCheckpointBytes: number;
  /** Whether entries.idx disagreed with entries.bin and was rebuilt from it. */
  readonly indexRebuilt: boolean;
}

export interface LocalStoreOptions {
  readonly origin: string;
  /** This run's id, recorded in writer.lock (and reported as previousRunId if this run crashes). */
  readonly runId: string;
  /** Create the directory (0700) and an empty store if there is none. */
  readonly create?: boolean;
  readonly fsyncEveryEntries: number;
  readonly fsyncEveryMs: number;
  /** Called once, with the STORE_FAILED error, when a write or fsync fails. */
  readonly onFailure?: (err: Error) => void;
  /** File operations on the write path; node:fs unless a test injects its own. */
  readonly fs?: StoreFs;
}

export const STORE_FORMAT = 'sealgate-store-v1';

/** File names inside a store directory (FORMAT.md §6). */
export const STORE_FILES = {
  log: 'LOG',
  entries: 'entries.bin',
  index: 'entries.idx',
  checkpoints: 'checkpoints.bin',
  treeState: 'tree.state',
  signedState: 'signed.state',
  lock: 'writer.lock',
} as const;

const FRAME_HEADER = 4;
const INDEX_WIDTH = 8;
const MAX_FRAME = 0xffffffff;
/** Pending frames are packed into buffers of this size, so a batch is a few large writev buffers. */
const BATCH_CHUNK = 256 * 1024;
/**
 * Parts of at least this many bytes (of an entry appended in parts) are written by reference, not
 * copied: a copy into fresh memory costs more than one more writev buffer.
 */
const BY_REFERENCE = 4096;
/** Sequential reads (scans, `entries`) go through windows of this size. */
const READ_WINDOW = 4 * 1024 * 1024;

/** Runs of this process whose store failed: their writer.lock is ours to recover, not a live writer. */
const abandonedRuns = new Set<string>();

function storeFailed(what: string, cause: unknown): SealError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new SealError('STORE_FAILED', `${what}: ${why}`, { cause });
}

function corrupt(dir: string, message: string): never {
  throw new SealError('STORE_CORRUPT', `store ${dir}: ${message}`);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** A copy of an entry not written yet (whole or in parts). */
const joined = (e: Uint8Array | readonly Uint8Array[]): Uint8Array =>
  e instanceof Uint8Array ? e.slice() : new Uint8Array(Buffer.concat(e));

/**
 * Like Promise.all, but waits for every operation to end before rethrowing the first failure, so that no
 * write or fsync is still running on a file descriptor when the caller goes on (and perhaps closes it).
 */
async function allSettled(ops: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(ops)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

function readFull(fd: number, buf: Buffer, position: number): void {
  for (let got = 0; got < buf.length;) {
    const n = fs.readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) throw new SealError('STORE_CORRUPT', `unexpected end of file at ${position + got}`);
    got += n;
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  readFull(fd, buf, position);
  return buf;
}

/** A plain Uint8Array view (not a Buffer, whose methods and equality differ). */
const view = (buf: Buffer, start: number, length: number): Uint8Array =>
  new Uint8Array(buf.buffer, buf.byteOffset + start, length);

const readU64 = (buf: Buffer, at: number): number =>
  buf.readUInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);

function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / 2 ** 32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

/**
 * Walks `u32 len || bytes` frames from the start of a file and stops at the first one that is torn (its
 * length runs past the end) or empty (a zero length: entries and notes are never empty, and a crash can
 * leave zero-filled blocks at the end of a file). Returns the frame offsets as u64s and the valid end.
 */
function scanFrames(fd: number, fileSize: number): { offsets: Buffer; count: number; end: number } {
  let offsets = Buffer.allocUnsafe(INDEX_WIDTH * 1024);
  let count = 0;
  let pos = 0;
  let window: Buffer = Buffer.alloc(0);
  let windowStart = 0;
  while (pos + FRAME_HEADER <= fileSize) {
    if (pos < windowStart || pos + FRAME_HEADER > windowStart + window.length) {
      window = readAt(fd, pos, Math.min(READ_WINDOW, fileSize - pos));
      windowStart = pos;
    }
    const len = window.readUInt32BE(pos - windowStart);
    if (len === 0 || pos + FRAME_HEADER + len > fileSize) break;
    if (offsets.length < INDEX_WIDTH * (count + 1)) {
      const grown = Buffer.allocUnsafe(offsets.length * 2);
      offsets.copy(grown);
      offsets = grown;
    }
    writeU64(offsets, INDEX_WIDTH * count++, pos);
    pos += FRAME_HEADER + len;
  }
  return { offsets: offsets.subarray(0, INDEX_WIDTH * count), count, end: pos };
}

/** Whether the file at `fd` holds exactly `expected`, compared window by window. */
function fileEquals(fd: number, fileSize: number, expected: Buffer): boolean {
  if (fileSize !== expected.length) return false;
  for (let at = 0; at < fileSize; at += READ_WINDOW) {
    const chunk = readAt(fd, at, Math.min(READ_WINDOW, fileSize - at));
    if (!chunk.equals(expected.subarray(at, at + chunk.length))) return false;
  }
  return true;
}

function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid runs (a zombie does not: it has exited and holds no files). */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false; // kill(0 or -n) would target a process group
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errno(err) === 'EPERM'; // it exists, owned by someone else
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    // No procfs: trust kill(0).
  }
  return true;
}

interface LockInfo {
  readonly run_id: string;
  readonly pid: number;
  readonly boot_id?: string;
}

function parseLock(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.run_id !== 'string' || typeof v.pid !== 'number') return undefined;
    if (v.boot_id !== undefined && typeof v.boot_id !== 'string') return undefined;
    return v as LockInfo;
  } catch {
    return undefined;
  }
}

/** Whether the writer that left this lock is gone: another boot, our own failed run, or a dead pid. */
function lockIsStale(lock: LockInfo): boolean {
  const boot = bootId();
  if (lock.boot_id && boot && lock.boot_id !== boot) return true; // pids are reused across reboots
  if (lock.pid === process.pid) return abandonedRuns.has(lock.run_id);
  return !processAlive(lock.pid);
}

let tmpCounter = 0;

/**
 * Takes writer.lock with its full content in one step. The content is written and fsynced to a private
 * temp file first; then `link(2)` makes it writer.lock, failing with EEXIST if a lock exists (the
 * exclusivity of O_CREAT|O_EXCL, without a window in which the lock exists but is still empty). A
 * stale lock is replaced by `rename(2)`, so there is never a moment without a lock: a failure there
 * cannot lose the crash marker. The directory is fsynced after: a lock lost in a power cut would make
 * the next start skip recovery.
 *
 * Returns the stale lock it replaced, or undefined after a clean stop. Two writers starting at the same
 * instant on a crashed store could both judge its lock stale; one service manager runs one writer.
 */
async function takeLock(dir: string, io: StoreFs, info: LockInfo): Promise<LockInfo | undefined> {
  const lockPath = join(dir, STORE_FILES.lock);
  const tmp = join(dir, `${STORE_FILES.lock}.${process.pid}.${++tmpCounter}.tmp`);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await writeAll(io, fh.fd, [Buffer.from(`${JSON.stringify(info)}\n`)]);
    await io.fdatasync(fh.fd);
  } finally {
    await fh.close();
  }
  try {
    let stale: LockInfo | undefined;
    try {
      await fsp.link(tmp, lockPath);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      stale = parseLock(await fsp.readFile(lockPath, 'utf8').catch(() => ''));
      if (!stale) {
        throw new SealError(
          'STORE_LOCKED',
          `store ${dir}: ${lockPath} is unreadable; remove it only if no writer runs`,
        );
      }
      if (!lockIsStale(stale)) {
        throw new SealError(
          'STORE_LOCKED',
          `store ${dir} is locked by run ${stale.run_id} (pid ${stale.pid}), which is alive`,
        );
      }
      await fsp.rename(tmp, lockPath);
      abandonedRuns.delete(stale.run_id);
    }
    await syncDir(io, dir);
    return stale;
  } finally {
    await fsp.unlink(tmp).catch(() => undefined);
  }
}

interface LogFile {
  readonly format: string;
  readonly origin: string;
  readonly created: string;
}

function readLogFile(dir: string): LogFile {
  let text: string;
  try {
    text = fs.readFileSync(join(dir, STORE_FILES.log), 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT')
      throw new SealError('STORE_NOT_FOUND', `${dir} holds no store (no LOG file)`);
    throw err;
  }
  let log: Partial<LogFile>;
  try {
    log = JSON.parse(text) as Partial<LogFile>;
  } catch {
    corrupt(dir, 'LOG is not JSON');
  }
  if (log.format !== STORE_FORMAT)
    corrupt(dir, `LOG format is ${JSON.stringify(log.format)}, want ${STORE_FORMAT}`);
  if (typeof log.origin !== 'string' || log.origin === '') corrupt(dir, 'LOG has no origin');
  return log as LogFile;
}

/** Makes an empty store in `dir`; LOG last, so that its presence means the store is complete. */
async function initStore(dir: string, origin: string, io: StoreFs): Promise<void> {
  const ours = new Set<string>([STORE_FILES.entries, STORE_FILES.index, STORE_FILES.checkpoints]);
  for (const name of await fsp.readdir(dir)) {
    // A crash during an earlier init may have left our empty data files or LOG's temp file behind.
    const leftover =
      name === `${STORE_FILES.log}.tmp` || (ours.has(name) && (await fsp.stat(join(dir, name))).size === 0);
    if (!leftover)
      throw new SealError('STORE_NOT_FOUND', `${dir} has no LOG file but is not empty (${name})`);
  }
  for (const name of ours) await (await fsp.open(join(dir, name), 'w', 0o600)).close();
  const log: LogFile = { format: STORE_FORMAT, origin, created: new Date().toISOString() };
  await atomicReplace(join(dir, STORE_FILES.log), Buffer.from(`${JSON.stringify(log)}\n`), io); // fsyncs dir
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers may drop `durable` and rely on onFailure; a rejection must not crash the process then.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Frames appended since the last write, with their offsets: frame headers and small entries packed into a
 * few large buffers, and each large part of an entry appended in parts (a sealed record's ciphertext)
 * kept by reference between them, so that it is written from where it lies instead of copied.
 */
class Batch {
  /** The writev buffers, in file order. */
  readonly chunks: Uint8Array[] = [];
  readonly offsets: number[] = [];
  readonly done = deferred();
  /** entries.bin's length once this batch is written. */
  end = 0;
  #current: Buffer | undefined;
  #used = 0;
  /** Where the bytes of #current not yet in `chunks` start. */
  #from = 0;

  constructor(readonly firstAt: number) {}

  get count(): number {
    return this.offsets.length;
  }

  /**
   * Adds the frame for an entry of `length` bytes (at file offset `offset`). A whole entry is copied in;
   * the large parts of an entry given in parts are kept by reference (their owner hands them over: they
   * must not change), the rest copied. Returns the entry as it will be written, for reads meanwhile.
   */
  add(entry: Uint8Array | readonly Uint8Array[], length: number, offset: number): Uint8Array | Uint8Array[] {
    const parts = entry instanceof Uint8Array ? [entry] : entry;
    const byReference = entry instanceof Uint8Array ? [] : parts.filter((p) => p.length >= BY_REFERENCE);
    let copied = FRAME_HEADER + length;
    for (const p of byReference) copied -= p.length;
    this.#room(copied);
    const buf = this.#current!;
    buf.writeUInt32BE(length, this.#used);
    this.#used += FRAME_HEADER;
    const written: Uint8Array[] = [];
    for (const p of parts) {
      if (byReference.includes(p)) {
        this.#cut();
        this.chunks.push(p);
        written.push(p);
      } else {
        buf.set(p, this.#used);
        written.push(view(buf, this.#used, p.length));
        this.#used += p.length;
      }
    }
    this.offsets.push(offset);
    this.end = offset + FRAME_HEADER + length;
    return written.length === 1 ? written[0]! : written;
  }

  /** The frames as writev buffers, and the index entries for them. */
  take(): { frames: Uint8Array[]; index: Buffer } {
    this.#cut();
    const index = Buffer.allocUnsafe(INDEX_WIDTH * this.count);
    this.offsets.forEach((o, i) => writeU64(index, INDEX_WIDTH * i, o));
    return { frames: this.chunks, index };
  }

  /** Makes sure #current has `need` free bytes. */
  #room(need: number): void {
    if (this.#current && this.#current.length - this.#used >= need) return;
    this.#cut();
    this.#current = Buffer.allocUnsafe(Math.max(BATCH_CHUNK, need));
    this.#used = 0;
    this.#from = 0;
  }

  /** Moves the bytes packed into #current since the last cut to `chunks`. */
  #cut(): void {
    if (this.#current && this.#used > this.#from) {
      this.chunks.push(this.#current.subarray(this.#from, this.#used));
      this.#from = this.#used;
    }
  }
}

interface Fds {
  readonly entries: number;
  readonly index: number;
  readonly checkpoints: number;
}

/** What only a writer has: its options, and the files it opened at start besides the data files. */
interface Writer {
  readonly opts: LocalStoreOptions;
  readonly io: StoreFs;
  readonly treeState: StateFile;
  /** The store directory, for the fsync after writer.lock is removed. */
  readonly dirFd: number;
}

const TREE_STATE = { code: 'STORE_CORRUPT' } as const;

export class LocalStore implements LogStore {
  readonly #dir: string;
  readonly #origin: string;
  readonly #fds: Fds;
  readonly #writer: Writer | undefined;

  /** Entries whose frames are written (readable from the files); those after are in #unwritten. */
  #written: number;
  /** Bytes of entries.bin holding written frames. */
  #writtenBytes: number;
  #durable: number;
  /** Views of the entries in [#written, size), for reads before their frames reach the file. */
  #unwritten: (Uint8Array | Uint8Array[])[] = [];
  /** entries.bin's length once everything appended is written: the next frame's offset. */
  #nextOffset: number;

  #pending: Batch | undefined;
  #inflight: Batch | undefined;
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #flushRequested = false;
  #timer: NodeJS.Timeout | undefined;
  #meta: Promise<void> = Promise.resolve();
  #failure: SealError | undefined;
  #closing = false;
  #closed = false;
  #writerFilesClosed = false;
  #closePromise: Promise<void> | undefined;

  #checkpointCount: number;
  #lastCheckpoint: string | undefined;

  private constructor(
    dir: string,
    origin: string,
    fds: Fds,
    layout: { count: number; bytes: number; checkpoints: { count: number; last: string | undefined } },
    writer?: Writer,
  ) {
    this.#dir = dir;
    this.#origin = origin;
    this.#fds = fds;
    this.#writer = writer;
    this.#written = this.#durable = layout.count;
    this.#writtenBytes = this.#nextOffset = layout.bytes;
    this.#checkpointCount = layout.checkpoints.count;
    this.#lastCheckpoint = layout.checkpoints.last;
  }

  /**
   * Opens (or with `create`, makes) the store at `dir` for writing and takes writer.lock. A lock left by
   * a dead writer means a crash: the torn tail is dropped, entries.idx rebuilt if needed, and
   * `recovery` says what was found. The caller appends CRASH_RECOVERY (FORMAT.md §6).
   */
  static async open(
    dir: string,
    opts: LocalStoreOptions,
  ): Promise<{ store: LocalStore; recovery?: RecoveryInfo }> {
    if (!opts.origin) throw new SealError('INVALID_ARGUMENT', 'store: origin is empty');
    if (!opts.runId) throw new SealError('INVALID_ARGUMENT', 'store: runId is empty');
    if (!Number.isSafeInteger(opts.fsyncEveryEntries) || opts.fsyncEveryEntries < 1) {
      throw new SealError(
        'INVALID_ARGUMENT',
        `store: fsyncEveryEntries ${opts.fsyncEveryEntries} is not ≥ 1`,
      );
    }
    if (!Number.isFinite(opts.fsyncEveryMs) || opts.fsyncEveryMs < 0) {
      throw new SealError('INVALID_ARGUMENT', `store: fsyncEveryMs ${opts.fsyncEveryMs} is not ≥ 0`);
    }
    const io = opts.fs ?? nodeStoreFs;

    if (!fs.existsSync(dir)) {
      if (!opts.create) throw new SealError('STORE_NOT_FOUND', `${dir} does not exist`);
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await syncDir(io, dirname(dir));
    }
    if (!fs.existsSync(join(dir, STORE_FILES.log))) {
      if (!opts.create) throw new SealError('STORE_NOT_FOUND', `${dir} holds no store (no LOG file)`);
      await initStore(dir, opts.origin, io);
    }
    const log = readLogFile(dir);
    if (log.origin !== opts.origin) {
      throw new SealError(
        'STORE_ORIGIN_MISMATCH',
        `store ${dir} belongs to origin ${JSON.stringify(log.origin)}, not ${JSON.stringify(opts.origin)}`,
      );
    }
    for (const name of [STORE_FILES.entries, STORE_FILES.index, STORE_FILES.checkpoints]) {
      if (!fs.existsSync(join(dir, name))) corrupt(dir, `${name} is missing`);
    }

    const boot = bootId();
    const previous = await takeLock(dir, io, {
      run_id: opts.runId,
      pid: process.pid,
      ...(boot ? { boot_id: boot } : {}),
    });
    let fds: Fds | undefined;
    let treeState: StateFile | undefined;
    let dirFd: number | undefined;
    try {
      let recovery: RecoveryInfo | undefined;
      if (previous) recovery = await LocalStore.#recover(dir, previous, io);
      fds = {
        entries: fs.openSync(join(dir, STORE_FILES.entries), 'a+'),
        index: fs.openSync(join(dir, STORE_FILES.index), 'a+'),
        checkpoints: fs.openSync(join(dir, STORE_FILES.checkpoints), 'a+'),
      };
      const layout = LocalStore.#layout(dir, fds, true);
      treeState = await StateFile.open(join(dir, STORE_FILES.treeState), io, TREE_STATE);
      dirFd = fs.openSync(dir, 'r');
      return {
        store: new LocalStore(dir, log.origin, fds, layout, { opts, io, treeState, dirFd }),
        ...(recovery ? { recovery } : {}),
      };
    } catch (err) {
      if (fds) Object.values(fds).forEach((fd: number) => fs.closeSync(fd));
      treeState?.close();
      if (dirFd !== undefined) fs.closeSync(dirFd);
      if (previous) {
        // Recovery did not finish: keep the crash marker, and let a retry in this process redo it.
        abandonedRuns.add(opts.runId);
      } else {
        await fsp.unlink(join(dir, STORE_FILES.lock)).catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * Opens the store for reading only: no lock, no recovery, no writes; for auditors and for tools that
   * run beside a live writer. It sees the entries whose index and frame were written when it opened.
   */
  static openReadOnly(dir: string): LocalStore {
    const log = readLogFile(dir);
    const open = (name: string): number => {
      try {
        return fs.openSync(join(dir, name), 'r');
      } catch (err) {
        if (errno(err) === 'ENOENT') corrupt(dir, `${name} is missing`);
        throw err;
      }
    };
    const fds = {
      entries: open(STORE_FILES.entries),
      index: open(STORE_FILES.index),
      checkpoints: open(STORE_FILES.checkpoints),
    };
    try {
      return new LocalStore(dir, log.origin, fds, LocalStore.#layout(dir, fds, false));
    } catch (err) {
      Object.values(fds).forEach((fd: number) => fs.closeSync(fd));
      throw err;
    }
  }

  /** FORMAT.md §6 crash recovery: drop torn tails, rebuild entries.idx from entries.bin if it disagrees. */
  static async #recover(dir: string, previous: LockInfo, io: StoreFs): Promise<RecoveryInfo> {
    const dropTornTail = async (
      name: string,
    ): Promise<{ offsets: Buffer; count: number; dropped: number }> => {
      const fh = await fsp.open(join(dir, name), 'r+');
      try {
        const size = (await fh.stat()).size;
        const scan = scanFrames(fh.fd, size);
        if (scan.end < size) {
          await fh.truncate(scan.end);
          await io.fdatasync(fh.fd);
        }
        return { offsets: scan.offsets, count: scan.count, dropped: size - scan.end };
      } finally {
        await fh.close();
      }
    };
    const entries = await dropTornTail(STORE_FILES.entries);
    const checkpoints = await dropTornTail(STORE_FILES.checkpoints);

    const indexPath = join(dir, STORE_FILES.index);
    const fd = fs.openSync(indexPath, 'r');
    let indexOk: boolean;
    try {
      indexOk = fileEquals(fd, fs.fstatSync(fd).size, entries.offsets);
    } finally {
      fs.closeSync(fd);
    }
    if (!indexOk) await atomicReplace(indexPath, entries.offsets, io);
    return {
      previousRunId: previous.run_id,
      truncatedBytes: entries.dropped,
      entriesFound: entries.count,
      truncatedCheckpointBytes: checkpoints.dropped,
      indexRebuilt: !indexOk,
    };
  }

  /**
   * Entry count and written bytes from entries.idx, checked against entries.bin; and the checkpoints.
   * A writer (after recovery, if any) must find them exactly consistent, or the files were damaged
   * outside any crash: STORE_CORRUPT. A reader takes the longest consistent prefix, since a live writer
   * may be halfway through a write.
   */
  static #layout(
    dir: string,
    fds: Fds,
    exact: boolean,
  ): { count: number; bytes: number; checkpoints: { count: number; last: string | undefined } } {
    const binSize = fs.fstatSync(fds.entries).size;
    const idxSize = fs.fstatSync(fds.index).size;
    if (exact && idxSize % INDEX_WIDTH !== 0)
      corrupt(dir, `entries.idx has ${idxSize} bytes, not a multiple of 8`);
    let count = Math.floor(idxSize / INDEX_WIDTH);
    let bytes = 0;
    for (; count > 0; count--) {
      const at = readU64(readAt(fds.index, INDEX_WIDTH * (count - 1), INDEX_WIDTH), 0);
      if (at + FRAME_HEADER <= binSize) {
        const end = at + FRAME_HEADER + readAt(fds.entries, at, FRAME_HEADER).readUInt32BE(0);
        if (end <= binSize && (!exact || end === binSize)) {
          bytes = end;
          break;
        }
      }
      if (exact)
        corrupt(
          dir,
          `the last frame in entries.idx does not end at the end of entries.bin (${binSize} bytes)`,
        );
    }
    if (exact && count === 0 && binSize !== 0)
      corrupt(dir, `entries.idx is empty but entries.bin has ${binSize} bytes`);

    const cpSize = fs.fstatSync(fds.checkpoints).size;
    const cps = scanFrames(fds.checkpoints, cpSize);
    if (exact && cps.end !== cpSize) corrupt(dir, `checkpoints.bin has a torn frame at ${cps.end}`);
    let last: string | undefined;
    if (cps.count > 0) {
      const at = readU64(cps.offsets, INDEX_WIDTH * (cps.count - 1));
      last = decodeNote(dir, readAt(fds.checkpoints, at + FRAME_HEADER, cps.end - at - FRAME_HEADER));
    }
    return { count, bytes, checkpoints: { count: cps.count, last } };
  }

  get dir(): string {
    return this.#dir;
  }

  /** The log origin recorded in LOG. */
  get origin(): string {
    return this.#origin;
  }

  get size(): number {
    return this.#written + this.#unwritten.length;
  }

  get durableSize(): number {
    return this.#durable;
  }

  get checkpointCount(): number {
    return this.#checkpointCount;
  }

  /** The STORE_FAILED error once the store has failed. */
  get failure(): SealError | undefined {
    return this.#failure;
  }

  append(entry: Uint8Array | readonly Uint8Array[]): { index: number; durable: Promise<void> } {
    const writer = this.#writable();
    const parts = entry instanceof Uint8Array ? [entry] : entry;
    let length = 0;
    for (const p of parts) {
      if (!(p instanceof Uint8Array))
        throw new SealError('INVALID_ARGUMENT', 'store: an entry must be bytes');
      length += p.length;
    }
    if (length === 0 || length > MAX_FRAME) {
      throw new SealError('INVALID_ARGUMENT', `store: an entry must be 1..${MAX_FRAME} bytes`);
    }
    const batch = (this.#pending ??= new Batch(Date.now()));
    this.#unwritten.push(batch.add(entry, length, this.#nextOffset));
    this.#nextOffset += FRAME_HEADER + length;
    if (batch.count >= writer.opts.fsyncEveryEntries) this.#kick();
    else this.#arm();
    return { index: this.size - 1, durable: batch.done.promise };
  }

  flush(): Promise<void> {
    if (!this.#writer) return Promise.resolve();
    if (this.#failure) return Promise.reject(this.#failedAgain());
    const target = this.#pending ?? this.#inflight;
    if (!target) return Promise.resolve();
    if (this.#pending) {
      this.#flushRequested = true;
      this.#kick();
    }
    return target.done.promise;
  }

  entry(index: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new SealError('INVALID_ARGUMENT', `store: no entry ${index} (size ${this.size})`);
    }
    // A copy: the pending bytes are what will be written, and a caller must not be able to change them.
    if (index >= this.#written) return joined(this.#unwritten[index - this.#written]!);
    const at = this.#offsetOf(index);
    const len = readAt(this.#fds.entries, at, FRAME_HEADER).readUInt32BE(0);
    if (at + FRAME_HEADER + len > this.#writtenBytes)
      corrupt(this.#dir, `frame ${index} runs past the written data`);
    const buf = readAt(this.#fds.entries, at + FRAME_HEADER, len);
    return view(buf, 0, len);
  }

  entries(from: number, to: number): Iterable<Uint8Array> {
    const ok = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;
    if (!ok(from) || !ok(to) || from > to || to > this.size) {
      throw new SealError('INVALID_ARGUMENT', `store: no entry range ${from}..${to} (size ${this.size})`);
    }
    return this.#iterate(from, to);
  }

  /** Reads written frames through large windows; entries not written yet come from memory. */
  *#iterate(from: number, to: number): Generator<Uint8Array> {
    for (let i = from; i < to;) {
      if (i >= this.#written) {
        yield joined(this.#unwritten[i - this.#written]!);
        i++;
        continue;
      }
      const end = Math.min(to, this.#written);
      const start = this.#offsetOf(i);
      const stop = end === this.#written ? this.#writtenBytes : this.#offsetOf(end);
      const window = readAt(this.#fds.entries, start, Math.min(stop - start, READ_WINDOW));
      let p = 0;
      const before = i;
      while (i < end && p + FRAME_HEADER <= window.length) {
        const len = window.readUInt32BE(p);
        if (p + FRAME_HEADER + len > window.length) break;
        yield view(window, p + FRAME_HEADER, len);
        p += FRAME_HEADER + len;
        i++;
      }
      if (i === before) {
        // One frame larger than the window: read it whole.
        const len = window.readUInt32BE(0);
        if (start + FRAME_HEADER + len > stop) corrupt(this.#dir, `frame ${i} runs past the written data`);
        yield view(readAt(this.#fds.entries, start + FRAME_HEADER, len), 0, len);
        i++;
      }
    }
  }

  async appendCheckpoint(note: string): Promise<void> {
    const writer = this.#writable();
    const cp = parseCheckpoint(parseNote(note).body);
    if (cp.origin !== this.#origin) {
      throw new SealError(
        'INVALID_ARGUMENT',
        `store: checkpoint origin ${JSON.stringify(cp.origin)} is not this log's`,
      );
    }
    if (cp.size > BigInt(this.#durable)) {
      // FORMAT.md §6: a checkpoint is written only for entries already fsynced.
      throw new SealError(
        'INVALID_ARGUMENT',
        `store: checkpoint of size ${cp.size} covers entries not yet durable (${this.#durable})`,
      );
    }
    const text = Buffer.from(note, 'utf8');
    const frame = Buffer.allocUnsafe(FRAME_HEADER + text.length);
    frame.writeUInt32BE(text.length, 0);
    text.copy(frame, FRAME_HEADER);
    await this.#metaWrite('appending a checkpoint', async () => {
      await writeAll(writer.io, this.#fds.checkpoints, [frame]);
      await writer.io.fdatasync(this.#fds.checkpoints);
      this.#checkpointCount++;
      this.#lastCheckpoint = note;
    });
  }

  checkpoints(): string[] {
    const fd = this.#fds.checkpoints;
    const size = fs.fstatSync(fd).size;
    const data = size > 0 ? readAt(fd, 0, size) : Buffer.alloc(0);
    const out: string[] = [];
    // A torn last frame (a reader beside a writer mid-write) is not a checkpoint yet.
    for (let p = 0; p + FRAME_HEADER <= data.length && out.length < this.#checkpointCountFor();) {
      const len = data.readUInt32BE(p);
      if (len === 0 || p + FRAME_HEADER + len > data.length) break;
      out.push(decodeNote(this.#dir, data.subarray(p + FRAME_HEADER, p + FRAME_HEADER + len)));
      p += FRAME_HEADER + len;
    }
    return out;
  }

  lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  async saveTreeState(state: Uint8Array): Promise<void> {
    const writer = this.#writable();
    const copy = Uint8Array.from(state);
    await this.#metaWrite('saving tree.state', () => writer.treeState.write(copy));
  }

  loadTreeState(): Uint8Array | undefined {
    if (this.#writer) return this.#writer.treeState.read();
    return readStateFile(join(this.#dir, STORE_FILES.treeState), TREE_STATE);
  }

  close(): Promise<void> {
    this.#closePromise ??= this.#close(false);
    return this.#closePromise;
  }

  abandon(): Promise<void> {
    this.#closePromise ??= this.#close(true);
    return this.#closePromise;
  }

  async #close(keepLock: boolean): Promise<void> {
    this.#closing = true;
    if (!this.#writer) {
      this.#closeFds();
      return;
    }
    let flushError: unknown;
    try {
      if (this.#pending) {
        this.#flushRequested = true;
        this.#kick();
      }
      await (this.#pending ?? this.#inflight)?.done.promise;
      await this.#meta;
    } catch (err) {
      flushError = err;
    }
    await this.#drainDone; // never rejects; no write may still be running when the fds close
    clearTimeout(this.#timer);
    this.#closeFds();
    if (this.#failure || flushError || keepLock) this.#closeWriterFiles();
    if (this.#failure) {
      // The lock stays: the next open (in this process too) recovers from this run's torn writes.
      throw this.#failedAgain();
    }
    if (flushError) throw flushError;
    if (keepLock) {
      abandonedRuns.add(this.#writer.opts.runId); // a reopen in this process recovers, as after a crash
      return;
    }
    try {
      await fsp.unlink(join(this.#dir, STORE_FILES.lock));
      await this.#writer.io.fsync(this.#writer.dirFd);
    } finally {
      this.#closeWriterFiles();
    }
  }

  // --- the write path -------------------------------------------------------------------------------

  #writable(): Writer {
    if (!this.#writer) throw new SealError('STORE_NOT_WRITABLE', `store ${this.#dir} is open read-only`);
    if (this.#failure) throw this.#failedAgain();
    if (this.#closing) throw new SealError('STORE_NOT_WRITABLE', `store ${this.#dir} is closed`);
    return this.#writer;
  }

  #failedAgain(): SealError {
    const failure = this.#failure!;
    return new SealError(
      'STORE_FAILED',
      `store ${this.#dir} failed and accepts nothing more (${failure.message})`,
      {
        cause: failure.cause,
      },
    );
  }

  /** Whether the pending batch should be written now (FORMAT.md §6: every N entries or T ms). */
  #due(): boolean {
    const batch = this.#pending;
    if (!batch || !this.#writer) return false;
    const { fsyncEveryEntries, fsyncEveryMs } = this.#writer.opts;
    return (
      this.#flushRequested || batch.count >= fsyncEveryEntries || Date.now() - batch.firstAt >= fsyncEveryMs
    );
  }

  #kick(): void {
    if (this.#draining || this.#failure) return;
    if (!this.#due()) return this.#arm();
    this.#draining = true;
    this.#drainDone = this.#drain();
  }

  /**
   * Starts the timer for the pending batch's deadline. It is deliberately not unref'd: an unref'd timer
   * lets a process whose only remaining work is this flush exit with appended entries never written
   * (and their `durable` promises never settled). A ref'd one-shot timer delays exit by at most
   * fsyncEveryMs while entries are pending, and by nothing once they are written.
   */
  #arm(): void {
    if (this.#timer || this.#draining || this.#failure || !this.#pending || !this.#writer) return;
    const delay = Math.max(0, this.#pending.firstAt + this.#writer.opts.fsyncEveryMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#kick();
    }, delay);
  }

  /** Writes due batches one after another (one writer at a time keeps frames in order). */
  async #drain(): Promise<void> {
    const io = this.#writer!.io;
    try {
      while (!this.#failure && this.#due()) {
        const batch = this.#pending!;
        this.#pending = undefined;
        this.#inflight = batch;
        this.#flushRequested = false;
        clearTimeout(this.#timer);
        this.#timer = undefined;
        const { frames, index } = batch.take();
        await allSettled([writeAll(io, this.#fds.entries, frames), writeAll(io, this.#fds.index, [index])]);
        this.#unwritten.splice(0, batch.count);
        this.#written += batch.count;
        this.#writtenBytes = batch.end;
        await allSettled([io.fdatasync(this.#fds.entries), io.fdatasync(this.#fds.index)]);
        this.#durable += batch.count;
        this.#inflight = undefined;
        batch.done.resolve();
      }
    } catch (err) {
      this.#fail(storeFailed(`store ${this.#dir}: writing entries failed`, err));
    } finally {
      this.#draining = false;
      this.#arm();
    }
  }

  /** Runs checkpoint and tree-state writes one at a time; any error fails the store. */
  #metaWrite(what: string, task: () => Promise<void>): Promise<void> {
    const run = this.#meta.then(async () => {
      if (this.#failure) throw this.#failedAgain();
      try {
        await task();
      } catch (err) {
        this.#fail(storeFailed(`store ${this.#dir}: ${what} failed`, err));
        throw this.#failedAgain();
      }
    });
    this.#meta = run.catch(() => undefined);
    return run;
  }

  #fail(failure: SealError): void {
    if (this.#failure) return;
    this.#failure = failure;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const batch of [this.#inflight, this.#pending]) batch?.done.reject(failure);
    this.#inflight = this.#pending = undefined;
    abandonedRuns.add(this.#writer!.opts.runId);
    try {
      this.#writer!.opts.onFailure?.(failure);
    } catch {
      // The callback's own failure must not hide the store's.
    }
  }

  // --- helpers --------------------------------------------------------------------------------------

  #offsetOf(index: number): number {
    return readU64(readAt(this.#fds.index, INDEX_WIDTH * index, INDEX_WIDTH), 0);
  }

  #checkpointCountFor(): number {
    // A writer knows exactly how many frames are complete; a reader takes what the file holds.
    return this.#writer ? this.#checkpointCount : Number.MAX_SAFE_INTEGER;
  }

  #closeWriterFiles(): void {
    if (!this.#writer || this.#writerFilesClosed) return;
    this.#writerFilesClosed = true;
    this.#writer.treeState.close();
    try {
      fs.closeSync(this.#writer.dirFd);
    } catch {
      // Best effort, as for the data files.
    }
  }

  #closeFds(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of Object.values(this.#fds) as number[]) {
      try {
        fs.closeSync(fd);
      } catch {
        // Closing is best effort; the data was fsynced (or the store failed) before.
      }
    }
  }
}

function decodeNote(dir: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    corrupt(dir, 'checkpoints.bin holds a note that is not UTF-8');
  }
}
