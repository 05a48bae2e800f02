/**
 * One read interface over the two places a log can be read from (docs/FORMAT.md §6 and §7):
 *
 * - a **store** directory (it has a `LOG` file), opened read-only so that a live gate may keep writing;
 * - an export **bundle** directory (it has a `manifest.json`).
 *
 * `verify`, `decrypt` and the other auditor tools take a `LogSource` and need not know which it is.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { AuditError } from './errors.js';
import { openBundle, type Bundle } from './bundle.js';
import { SealError } from '../seal/errors.js';
import { LocalStore, STORE_FILES } from '../seal/store.js';

/** One leaf of the log: its index in the tree and its exact bytes (docs/FORMAT.md §3). */
export interface LogEntry {
  readonly index: number;
  /** A view; valid until the next item is pulled (copy it to keep it). */
  readonly bytes: Uint8Array;
}

export interface LogSource {
  readonly kind: 'store' | 'bundle';
  /** The directory it was opened from. */
  readonly path: string;
  /** The log origin (store: `LOG`; bundle: `manifest.json`). */
  readonly origin: string;
  /** How many entries `entries()` yields (for a bundle, counting reads entries.bin once). */
  readonly entryCount: number;
  /**
   * The entries in leaf order: for a store every entry written so far (also those after its last
   * checkpoint); for a bundle those it holds (a partial bundle skips indexes). With `from`, only the
   * entries whose index is at least `from` (a store reads from there; a bundle skips up to there).
   */
  entries(from?: number): Iterable<LogEntry>;
  /** The signed checkpoint notes, oldest first. */
  checkpoints(): string[];
  /** The bundle's files, for a bundle source; undefined for a store. */
  readonly bundle?: Bundle;
  /** Releases file descriptors. Idempotent. */
  close(): void;
}

function isFile(path: string): boolean {
  try {
    return fs.statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Opens a store or a bundle directory. Throws AuditError SOURCE_NOT_FOUND / SOURCE_UNRECOGNISED / BUNDLE_UNREADABLE. */
export function openLogSource(path: string): LogSource {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AuditError(
      'SOURCE_NOT_FOUND',
      `${path}: ${code === 'ENOENT' ? 'no such file or directory' : String(code)}`,
    );
  }
  if (!stat.isDirectory()) {
    throw new AuditError('SOURCE_UNRECOGNISED', `${path} is not a directory (a store or an export bundle)`);
  }
  if (isFile(join(path, 'manifest.json'))) return bundleSource(path, openBundle(path));
  if (isFile(join(path, STORE_FILES.log))) return storeSource(path);
  throw new AuditError(
    'SOURCE_UNRECOGNISED',
    `${path} is neither a store (no ${STORE_FILES.log} file) nor an export bundle (no manifest.json)`,
  );
}

/** A source over a store directory, read-only. */
export function storeSource(path: string): LogSource {
  let store: LocalStore;
  try {
    store = LocalStore.openReadOnly(path);
  } catch (err) {
    if (err instanceof SealError) throw new AuditError('SOURCE_UNRECOGNISED', err.message, { cause: err });
    throw new AuditError('SOURCE_UNRECOGNISED', `${path}: ${(err as Error).message}`, { cause: err });
  }
  const size = store.size;
  let closed = false;
  return {
    kind: 'store',
    path,
    origin: store.origin,
    entryCount: size,
    *entries(from = 0) {
      let index = Math.min(from, size);
      for (const bytes of store.entries(index, size)) yield { index: index++, bytes };
    },
    checkpoints: () => store.checkpoints(),
    close() {
      if (closed) return;
      closed = true;
      void store.close();
    },
  };
}

/** A source over an opened bundle (also one held in memory, as the tamper tests do). */
export function bundleSource(path: string, bundle: Bundle): LogSource {
  return {
    kind: 'bundle',
    path,
    origin: bundle.manifest?.origin ?? '',
    get entryCount() {
      return bundle.entryCount; // counted on first use: it reads entries.bin
    },
    *entries(from = 0) {
      for (const entry of bundle.entries()) if (entry.index >= from) yield entry;
    },
    checkpoints: () => bundle.checkpoints(),
    bundle,
    close() {},
  };
}
