/**
 * File operations shared by the store (store.ts) and the state files (state-file.ts): the injectable
 * write-path calls, and the writes built on them.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The file operations on the write path, injectable so that tests can count fsyncs and make writes
 * fail. Everything else (open, read, rename) uses node:fs directly.
 */
export interface StoreFs {
  /** Writes at the end of an O_APPEND file; may write less than asked (it is called again for the rest). */
  writev(fd: number, buffers: readonly Uint8Array[]): Promise<number>;
  /** pwrite(2): writes at `position`; may write less than asked (it is called again for the rest). */
  pwrite(fd: number, buffer: Uint8Array, position: number): Promise<number>;
  /** fdatasync(2) of a regular file. */
  fdatasync(fd: number): Promise<void>;
  /** fsync(2), used on directories after creating, renaming or removing a file in them. */
  fsync(fd: number): Promise<void>;
}

export const nodeStoreFs: StoreFs = {
  writev: (fd, buffers) =>
    new Promise((resolve, reject) =>
      fs.writev(fd, buffers as Uint8Array[], (err, n) => (err ? reject(err) : resolve(n))),
    ),
  pwrite: (fd, buffer, position) =>
    new Promise((resolve, reject) =>
      fs.write(fd, buffer, 0, buffer.length, position, (err, n) => (err ? reject(err) : resolve(n))),
    ),
  fdatasync: (fd) =>
    new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  fsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve()))),
};

/** Writes all of `buffers` with as many writev calls as it takes. */
export async function writeAll(io: StoreFs, fd: number, buffers: readonly Uint8Array[]): Promise<void> {
  const rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let n = await io.writev(fd, [...rest]);
    if (!(n > 0)) throw new Error(`writev wrote ${n} bytes`);
    while (rest.length > 0 && n >= rest[0].length) n -= rest.shift()!.length;
    if (n > 0) rest[0] = rest[0].subarray(n);
  }
}

/** Writes all of `data` at `position` with as many pwrite calls as it takes. */
export async function writeAllAt(io: StoreFs, fd: number, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const n = await io.pwrite(fd, data.subarray(done), position + done);
    if (!(n > 0)) throw new Error(`pwrite wrote ${n} bytes`);
    done += n;
  }
}

/** fsync(2) of a directory, opened for the purpose (at start and in recovery; see LocalStore for the kept one). */
export async function syncDir(io: StoreFs, dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await io.fsync(fh.fd);
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` so that a crash leaves the old or the new content, never a mix: write a
 * temp file, fdatasync it, rename it over `path`, fsync the directory (the rename is durable only then).
 * It opens files: for start-up and recovery only, never on the write path of a running log.
 */
export async function atomicReplace(
  path: string,
  data: Uint8Array,
  io: StoreFs = nodeStoreFs,
): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await writeAll(io, fh.fd, [data]);
    await io.fdatasync(fh.fd);
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path);
  await syncDir(io, dirname(path));
}
