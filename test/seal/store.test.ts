import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import { formatCheckpoint } from '../../src/seal/checkpoint.js';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';
import { signNote } from '../../src/seal/note.js';
import {
  LocalStore,
  nodeStoreFs,
  STORE_FILES,
  type LocalStoreOptions,
  type StoreFs,
} from '../../src/seal/store.js';

const ORIGIN = 'test.sealgate/log';
const provider = new OpenSslProvider();
const isSealError =
  (code: SealErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof SealError, `expected SealError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };

/** Entry i: distinct bytes of varying length (1..~300). */
const entryOf = (i: number): Uint8Array =>
  new Uint8Array(Buffer.from(`entry ${i} ${'x'.repeat((i * 7919) % 290)}`));

let work: string;
let runs = 0;
const freshDir = (): string => join(work, `store-${++runs}`);
const options = (over: Partial<LocalStoreOptions> = {}): LocalStoreOptions => ({
  origin: ORIGIN,
  runId: `run-${++runs}`,
  fsyncEveryEntries: 64,
  fsyncEveryMs: 5,
  ...over,
});

async function create(dir: string, over: Partial<LocalStoreOptions> = {}): Promise<LocalStore> {
  return (await LocalStore.open(dir, options({ create: true, ...over }))).store;
}

async function appendAll(store: LocalStore, from: number, to: number): Promise<void> {
  let last: Promise<void> | undefined;
  for (let i = from; i < to; i++) {
    const r = store.append(entryOf(i));
    assert.equal(r.index, i);
    last = r.durable;
  }
  await last;
}

function assertEntries(store: LocalStore, from: number, to: number): void {
  let i = from;
  for (const e of store.entries(from, to)) assert.deepEqual(e, entryOf(i++), `entry ${i - 1}`);
  assert.equal(i, to);
}

/** A pid that no process has: a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  return child.pid!;
}

/** What a writer killed mid-write leaves: its lock, and perhaps a torn frame. */
function leaveCrash(dir: string, lock: object, tail?: Uint8Array): void {
  writeFileSync(join(dir, STORE_FILES.lock), JSON.stringify(lock));
  if (tail) appendFileSync(join(dir, STORE_FILES.entries), tail);
}

/** node:fs with counters, and switches to make the next write or fsync fail. */
function instrumentedFs(): {
  fs: StoreFs;
  calls: { writev: number; fdatasync: number };
  failNext: { writev?: NodeJS.ErrnoException; fdatasync?: NodeJS.ErrnoException; maxBytes?: number };
} {
  const calls = { writev: 0, fdatasync: 0 };
  const failNext: { writev?: NodeJS.ErrnoException; fdatasync?: NodeJS.ErrnoException; maxBytes?: number } =
    {};
  const fs: StoreFs = {
    writev: async (fd, buffers) => {
      calls.writev++;
      if (failNext.writev) throw failNext.writev;
      if (failNext.maxBytes) {
        // A short write: only the first few bytes of the first buffer.
        return nodeStoreFs.writev(fd, [buffers[0].subarray(0, failNext.maxBytes)]);
      }
      return nodeStoreFs.writev(fd, buffers);
    },
    pwrite: async (fd, buffer, position) => {
      calls.writev++;
      if (failNext.writev) throw failNext.writev;
      return nodeStoreFs.pwrite(fd, buffer, position);
    },
    fdatasync: async (fd) => {
      calls.fdatasync++;
      if (failNext.fdatasync) throw failNext.fdatasync;
      return nodeStoreFs.fdatasync(fd);
    },
    fsync: nodeStoreFs.fsync,
  };
  return { fs, calls, failNext };
}

const errnoError = (code: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: injected`), { code }) as NodeJS.ErrnoException;

let key: PrivateKey;
const signedCheckpoint = (size: number, origin = ORIGIN): Promise<string> =>
  signNote(
    provider,
    key,
    origin,
    formatCheckpoint({ origin, size: BigInt(size), root: new Uint8Array(32).fill(size & 0xff) }),
  );

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sealgate-store-'));
  key = await provider.generateKey({ type: 'ec', curve: 'P-384' });
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('LocalStore (FORMAT.md §6)', () => {
  test('create makes a 0700 directory with 0600 files and a LOG naming the format and origin', async () => {
    const dir = freshDir();
    const store = await create(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const name of [STORE_FILES.log, STORE_FILES.entries, STORE_FILES.index, STORE_FILES.checkpoints]) {
      assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600, name);
    }
    const log = JSON.parse(readFileSync(join(dir, STORE_FILES.log), 'utf8'));
    assert.equal(log.format, 'sealgate-store-v1');
    assert.equal(log.origin, ORIGIN);
    assert.ok(!Number.isNaN(Date.parse(log.created)));
    const lock = JSON.parse(readFileSync(join(dir, STORE_FILES.lock), 'utf8'));
    assert.equal(lock.pid, process.pid);
    assert.equal(typeof lock.run_id, 'string');
    assert.equal(store.size, 0);
    await store.close();
    assert.equal(existsSync(join(dir, STORE_FILES.lock)), false, 'close releases the lock');
    assert.deepEqual(readdirSync(dir).sort(), [
      'LOG',
      'checkpoints.bin',
      'entries.bin',
      'entries.idx',
      'tree.state',
    ]);
  });

  test('appends and reads back 10,000 entries across re-opens', async () => {
    const dir = freshDir();
    let store = await create(dir, { fsyncEveryEntries: 256 });
    await appendAll(store, 0, 4000);
    await store.close();

    const reopened = await LocalStore.open(dir, options());
    assert.equal(reopened.recovery, undefined, 'a clean stop needs no recovery');
    store = reopened.store;
    assert.equal(store.size, 4000);
    assert.equal(store.durableSize, 4000);
    await appendAll(store, 4000, 10_000);
    assert.equal(store.durableSize, 10_000);
    assertEntries(store, 0, 10_000);
    for (const i of [0, 1, 255, 256, 3999, 4000, 4001, 7777, 9999])
      assert.deepEqual(store.entry(i), entryOf(i));
    assertEntries(store, 3990, 4010);
    await store.close();

    const reader = LocalStore.openReadOnly(dir);
    assert.equal(reader.size, 10_000);
    assert.equal(reader.origin, ORIGIN);
    assertEntries(reader, 0, 10_000);
    assert.deepEqual(reader.entry(5000), entryOf(5000));
    await reader.close();
    // entries.idx is exactly one u64 per entry.
    assert.equal(statSync(join(dir, STORE_FILES.index)).size, 8 * 10_000);
  });

  test('entries appended in parts: large parts by reference, small ones copied; same bytes and offsets', async () => {
    const dir = freshDir();
    const store = await create(dir, { fsyncEveryEntries: 1000, fsyncEveryMs: 60_000 });
    const big = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) {
        want.push(entryOf(i));
        store.append(entryOf(i));
        continue;
      }
      const parts = [
        entryOf(i).subarray(0, 5),
        big(i % 2 ? 4096 : 300_000, i),
        new Uint8Array(0),
        big(16, i),
      ];
      want.push(new Uint8Array(Buffer.concat(parts)));
      assert.equal(store.append(parts).index, i);
    }
    // Readable before the write, as a copy: changing it changes nothing.
    store.entry(1).fill(0);
    for (let i = 0; i < 12; i++) assert.deepEqual(store.entry(i), want[i], `unwritten entry ${i}`);
    assert.deepEqual([...store.entries(0, 12)], want);
    assert.throws(() => store.append([new Uint8Array(0)]), isSealError('INVALID_ARGUMENT'));
    await store.flush();
    for (let i = 0; i < 12; i++) assert.deepEqual(store.entry(i), want[i], `written entry ${i}`);
    await store.close();
    const reader = LocalStore.openReadOnly(dir);
    assert.deepEqual([...reader.entries(0, 12)], want);
    await reader.close();
    const total = want.reduce((n, e) => n + 4 + e.length, 0);
    assert.equal(statSync(join(dir, STORE_FILES.entries)).size, total);
  });

  test('entries are readable at once, and the store keeps its own copy', async () => {
    const store = await create(freshDir(), { fsyncEveryEntries: 1000, fsyncEveryMs: 60_000 });
    const buf = new Uint8Array(entryOf(0));
    store.append(buf);
    buf.fill(0);
    store.entry(0).fill(0); // neither the caller's buffer nor a read-back changes what gets written
    for (let i = 1; i < 10; i++) store.append(entryOf(i));
    assert.equal(store.size, 10);
    assert.equal(store.durableSize, 0);
    assert.deepEqual(store.entry(0), entryOf(0));
    assertEntries(store, 0, 10);
    await store.flush();
    assert.equal(store.durableSize, 10);
    assertEntries(store, 0, 10);
    await store.close();
  });

  test('reads frames larger than the read window and runs across window boundaries', async () => {
    const dir = freshDir();
    const store = await create(dir, { fsyncEveryEntries: 4 });
    const big = (i: number): Uint8Array =>
      new Uint8Array(i % 5 === 0 ? 5 * 1024 * 1024 : 300 * 1024).fill(i + 1);
    let last: Promise<void> | undefined;
    for (let i = 0; i < 23; i++) last = store.append(big(i)).durable;
    await last;
    let i = 0;
    for (const e of store.entries(0, 23)) {
      assert.equal(e.length, big(i).length, `entry ${i} length`);
      assert.ok(
        e.every((b) => b === i + 1),
        `entry ${i} content`,
      );
      i++;
    }
    assert.equal(i, 23);
    assert.equal(store.entry(20).length, 5 * 1024 * 1024);
    await store.close();
  });

  test('durable promises settle when the covering fsync returns; durableSize follows', async () => {
    const store = await create(freshDir(), { fsyncEveryEntries: 1000, fsyncEveryMs: 30 });
    const started = Date.now();
    const a = store.append(entryOf(0));
    const b = store.append(entryOf(1));
    assert.equal(store.durableSize, 0);
    let settled = false;
    void a.durable.then(() => (settled = true));
    await sleep(5);
    assert.equal(settled, false, 'not durable before the timer');
    await b.durable;
    assert.ok(settled);
    assert.ok(Date.now() - started >= 25, 'fsynced by the fsyncEveryMs timer');
    assert.equal(store.durableSize, 2);
    await store.close();
  });

  test('batches writes and fsyncs: one writev and one fdatasync per file per batch', async () => {
    const io = instrumentedFs();
    const store = await create(freshDir(), { fs: io.fs, fsyncEveryEntries: 100, fsyncEveryMs: 60_000 });
    io.calls.writev = io.calls.fdatasync = 0;
    for (let round = 0; round < 10; round++) {
      let last: Promise<void> | undefined;
      for (let i = 0; i < 100; i++) last = store.append(entryOf(round * 100 + i)).durable;
      await last;
    }
    assert.equal(store.durableSize, 1000);
    assert.equal(io.calls.writev, 20, 'entries.bin and entries.idx, once per batch of 100');
    assert.equal(io.calls.fdatasync, 20);

    // Below the threshold nothing is written until flush().
    for (let i = 1000; i < 1050; i++) store.append(entryOf(i));
    await sleep(20);
    assert.equal(io.calls.writev, 20);
    assert.equal(store.durableSize, 1000);
    await store.flush();
    assert.equal(io.calls.writev, 22);
    assert.equal(store.durableSize, 1050);

    // Appends during an fsync group into the next batch instead of one fsync each.
    io.calls.writev = io.calls.fdatasync = 0;
    let last: Promise<void> | undefined;
    for (let i = 1050; i < 2050; i++) last = store.append(entryOf(i)).durable;
    await last;
    assert.ok(io.calls.fdatasync <= 20, `${io.calls.fdatasync} fdatasyncs for 10 batches`);
    assertEntries(store, 0, 2050);
    await store.close();
  });

  test('short writes are continued until the frame is complete', async () => {
    const io = instrumentedFs();
    const dir = freshDir();
    const store = await create(dir, { fs: io.fs, fsyncEveryEntries: 10 });
    io.failNext.maxBytes = 7;
    await appendAll(store, 0, 30);
    io.failNext.maxBytes = undefined;
    await store.close();
    const reader = LocalStore.openReadOnly(dir);
    assertEntries(reader, 0, 30);
    await reader.close();
  });

  test('abandon writes everything, keeps writer.lock, and the next open (in this process) recovers', async () => {
    const dir = freshDir();
    const opts = options({ create: true, fsyncEveryEntries: 1000, fsyncEveryMs: 60_000 });
    const { store } = await LocalStore.open(dir, opts);
    for (let i = 0; i < 11; i++) store.append(entryOf(i)); // pending: abandon writes them
    await store.abandon();
    assert.ok(existsSync(join(dir, STORE_FILES.lock)), 'the lock stays, as after a crash');
    assert.throws(() => store.append(entryOf(11)), isSealError('STORE_NOT_WRITABLE'));
    const { store: next, recovery } = await LocalStore.open(dir, options());
    assert.equal(recovery?.previousRunId, opts.runId);
    assert.equal(recovery?.entriesFound, 11);
    assertEntries(next, 0, 11);
    await next.close();
  });

  test('tree.state is written in place (same inode, no temp file), through a descriptor held since start', async () => {
    const dir = freshDir();
    const store = await create(dir);
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const inode = (): number => statSync(join(dir, STORE_FILES.treeState)).ino;
    await appendAll(store, 0, 5);
    const before = fds();
    const ino = inode();
    for (let i = 5; i < 25; i++) {
      await appendAll(store, i, i + 1);
      await store.appendCheckpoint(await signedCheckpoint(i + 1));
      await store.saveTreeState(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, ...new Uint8Array(32).fill(i)]));
    }
    assert.equal(fds(), before);
    assert.equal(inode(), ino, 'never replaced by a new file (a rename would change the inode)');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
    await store.close();
  });

  test('crash recovery drops a torn final frame and keeps every entry', async () => {
    const dir = freshDir();
    const store = await create(dir);
    await appendAll(store, 0, 100);
    await store.close();

    const torn = Buffer.alloc(14);
    torn.writeUInt32BE(1000, 0); // a length that runs past the end of the file
    leaveCrash(dir, { run_id: 'crashed-run', pid: await deadPid() }, torn);
    const { store: recovered, recovery } = await LocalStore.open(dir, options());
    assert.deepEqual(recovery, {
      previousRunId: 'crashed-run',
      truncatedBytes: 14,
      entriesFound: 100,
      truncatedCheckpointBytes: 0,
      indexRebuilt: false,
    });
    assert.equal(recovered.size, 100);
    assertEntries(recovered, 0, 100);
    await appendAll(recovered, 100, 120);
    await recovered.close();

    const again = await LocalStore.open(dir, options());
    assert.equal(again.recovery, undefined);
    assertEntries(again.store, 0, 120);
    await again.store.close();
  });

  test('crash recovery rebuilds entries.idx when it disagrees with entries.bin', async () => {
    for (const damage of ['index ahead', 'index behind', 'torn index', 'zero-filled tail'] as const) {
      const dir = freshDir();
      const store = await create(dir);
      await appendAll(store, 0, 50);
      await store.close();
      const idx = join(dir, STORE_FILES.index);
      const bin = join(dir, STORE_FILES.entries);
      let tail: Uint8Array | undefined;
      if (damage === 'index ahead') appendFileSync(idx, Buffer.alloc(16, 0xee));
      if (damage === 'index behind') truncateSync(idx, 8 * 45);
      if (damage === 'torn index') truncateSync(idx, 8 * 49 + 3);
      if (damage === 'zero-filled tail') tail = new Uint8Array(4096);
      leaveCrash(dir, { run_id: `crash-${damage}`, pid: await deadPid() }, tail);
      const { store: recovered, recovery } = await LocalStore.open(dir, options());
      assert.equal(recovery?.entriesFound, 50, damage);
      assert.equal(recovery?.indexRebuilt, damage !== 'zero-filled tail', damage);
      assert.equal(recovery?.truncatedBytes, damage === 'zero-filled tail' ? 4096 : 0, damage);
      assert.equal(statSync(idx).size, 8 * 50);
      assert.equal(statSync(bin).size, readFileSync(bin).length);
      assertEntries(recovered, 0, 50);
      await recovered.close();
    }
  });

  test('crash recovery drops a torn checkpoint frame', async () => {
    const dir = freshDir();
    const store = await create(dir);
    await appendAll(store, 0, 10);
    const note = await signedCheckpoint(10);
    await store.appendCheckpoint(note);
    await store.close();
    appendFileSync(join(dir, STORE_FILES.checkpoints), Buffer.from([0, 0, 1, 0, 0x41]));
    leaveCrash(dir, { run_id: 'r', pid: await deadPid() });
    const { store: recovered, recovery } = await LocalStore.open(dir, options());
    assert.equal(recovery?.truncatedCheckpointBytes, 5);
    assert.deepEqual(recovered.checkpoints(), [note]);
    await recovered.close();
  });

  test('a lock from another boot is stale even if its pid is alive now', async (t) => {
    if (!existsSync('/proc/sys/kernel/random/boot_id')) return t.skip('no boot id on this system');
    const dir = freshDir();
    await (await create(dir)).close();
    leaveCrash(dir, { run_id: 'before-reboot', pid: process.pid, boot_id: 'another-boot' });
    const { store, recovery } = await LocalStore.open(dir, options());
    assert.equal(recovery?.previousRunId, 'before-reboot');
    await store.close();
  });

  test('a live writer holds the lock: STORE_LOCKED', async () => {
    const dir = freshDir();
    const store = await create(dir);
    await assert.rejects(LocalStore.open(dir, options()), isSealError('STORE_LOCKED'));
    await store.close();

    for (const pid of [process.pid]) {
      leaveCrash(dir, { run_id: 'someone', pid });
      await assert.rejects(LocalStore.open(dir, options()), isSealError('STORE_LOCKED'));
    }
    const sleeper = spawn('sleep', ['30']);
    try {
      leaveCrash(dir, { run_id: 'other-process', pid: sleeper.pid });
      await assert.rejects(LocalStore.open(dir, options()), isSealError('STORE_LOCKED'));
    } finally {
      sleeper.kill();
      await once(sleeper, 'exit');
    }
    // Now that process is gone: recovery.
    const { store: recovered, recovery } = await LocalStore.open(dir, options());
    assert.equal(recovery?.previousRunId, 'other-process');
    await recovered.close();

    writeFileSync(join(dir, STORE_FILES.lock), 'not json');
    await assert.rejects(LocalStore.open(dir, options()), isSealError('STORE_LOCKED'));
  });

  test('refuses another origin, a missing store and damaged files', async () => {
    const dir = freshDir();
    await (await create(dir)).close();
    await assert.rejects(
      LocalStore.open(dir, options({ origin: 'other.example/log' })),
      isSealError('STORE_ORIGIN_MISMATCH'),
    );
    assert.equal(existsSync(join(dir, STORE_FILES.lock)), false, 'a refused open leaves no lock');

    await assert.rejects(LocalStore.open(freshDir(), options()), isSealError('STORE_NOT_FOUND'));
    const notAStore = freshDir();
    mkdirSync(notAStore);
    writeFileSync(join(notAStore, 'precious.txt'), 'keep me');
    await assert.rejects(
      LocalStore.open(notAStore, options({ create: true })),
      isSealError('STORE_NOT_FOUND'),
    );
    assert.throws(() => LocalStore.openReadOnly(notAStore), isSealError('STORE_NOT_FOUND'));

    // Without a crash, entries.idx and entries.bin must agree exactly.
    const damaged = freshDir();
    const store = await create(damaged);
    await appendAll(store, 0, 20);
    await store.close();
    truncateSync(join(damaged, STORE_FILES.index), 8 * 19);
    await assert.rejects(LocalStore.open(damaged, options()), isSealError('STORE_CORRUPT'));
    assert.equal(existsSync(join(damaged, STORE_FILES.lock)), false);

    const wrongFormat = freshDir();
    await (await create(wrongFormat)).close();
    writeFileSync(join(wrongFormat, STORE_FILES.log), JSON.stringify({ format: 'other', origin: ORIGIN }));
    await assert.rejects(LocalStore.open(wrongFormat, options()), isSealError('STORE_CORRUPT'));
  });

  test('a write failure fails the store closed: durable rejects, append throws, onFailure once', async () => {
    for (const what of ['writev', 'fdatasync'] as const) {
      const io = instrumentedFs();
      const failures: Error[] = [];
      const dir = freshDir();
      const opts = options({
        create: true,
        fs: io.fs,
        fsyncEveryEntries: 10,
        onFailure: (e) => failures.push(e),
      });
      const { store } = await LocalStore.open(dir, opts);
      await appendAll(store, 0, 20);

      io.failNext[what] = errnoError(what === 'writev' ? 'ENOSPC' : 'EIO');
      const pending = Array.from({ length: 15 }, (_, i) => store.append(entryOf(20 + i)).durable);
      for (const p of pending) {
        await assert.rejects(p, (err: unknown) => {
          isSealError('STORE_FAILED')(err);
          assert.equal(
            ((err as SealError).cause as NodeJS.ErrnoException).code,
            what === 'writev' ? 'ENOSPC' : 'EIO',
          );
          return true;
        });
      }
      assert.throws(() => store.append(entryOf(99)), isSealError('STORE_FAILED'));
      await assert.rejects(store.flush(), isSealError('STORE_FAILED'));
      await assert.rejects(store.appendCheckpoint(await signedCheckpoint(20)), isSealError('STORE_FAILED'));
      await assert.rejects(store.saveTreeState(new Uint8Array(8)), isSealError('STORE_FAILED'));
      assert.equal(failures.length, 1, what);
      assert.ok(failures[0] instanceof SealError && failures[0].code === 'STORE_FAILED');
      assert.equal(store.durableSize, 20);
      await assert.rejects(store.close(), isSealError('STORE_FAILED'));
      assert.ok(existsSync(join(dir, STORE_FILES.lock)), 'the lock stays, so that the next start recovers');

      // The next open in this same process recovers the failed run; the acknowledged entries are intact.
      const { store: recovered, recovery } = await LocalStore.open(dir, options());
      assert.equal(recovery?.previousRunId, opts.runId);
      assert.ok(recovered.size >= 20);
      assertEntries(recovered, 0, 20);
      await recovered.close();
      assert.equal(failures.length, 1);
    }
  });

  test('a failing checkpoint write fails the store too', async () => {
    const io = instrumentedFs();
    const failures: Error[] = [];
    const store = await create(freshDir(), { fs: io.fs, onFailure: (e) => failures.push(e) });
    await appendAll(store, 0, 5);
    io.failNext.fdatasync = errnoError('EIO');
    await assert.rejects(store.appendCheckpoint(await signedCheckpoint(5)), isSealError('STORE_FAILED'));
    assert.equal(failures.length, 1);
    assert.throws(() => store.append(entryOf(5)), isSealError('STORE_FAILED'));
    await assert.rejects(store.close(), isSealError('STORE_FAILED'));
  });

  test('a real full disk (64 KiB tmpfs): ENOSPC fails the store, recovery after space is freed', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a tmpfs');
    const mnt = mkdtempSync(join(tmpdir(), 'sealgate-tmpfs-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0) {
      rmSync(mnt, { recursive: true, force: true });
      return t.skip(`cannot mount a tmpfs: ${mounted.stderr.trim()}`);
    }
    try {
      const dir = join(mnt, 'store');
      const failures: Error[] = [];
      const opts = options({
        create: true,
        fsyncEveryEntries: 4,
        fsyncEveryMs: 60_000,
        onFailure: (e) => failures.push(e),
      });
      const { store } = await LocalStore.open(dir, opts);
      const kib = (i: number): Uint8Array => new Uint8Array(1024).fill(i & 0xff);
      let acked = 0;
      let failure: unknown;
      for (let i = 0; i < 1000 && !failure; i += 4) {
        let last: Promise<void> | undefined;
        for (let j = i; j < i + 4; j++) last = store.append(kib(j)).durable;
        try {
          await last;
          acked = i + 4;
        } catch (err) {
          failure = err;
        }
      }
      assert.ok(failure, 'the disk filled up');
      isSealError('STORE_FAILED')(failure);
      assert.equal(((failure as SealError).cause as NodeJS.ErrnoException).code, 'ENOSPC');
      assert.ok(acked > 0 && acked < 64, `${acked} entries acknowledged before the disk was full`);
      assert.throws(() => store.append(kib(0)), isSealError('STORE_FAILED'));
      assert.equal(failures.length, 1);
      await assert.rejects(store.close(), isSealError('STORE_FAILED'));

      // The operator frees space; the next start recovers and every acknowledged entry is there.
      const grown = spawnSync('mount', ['-o', 'remount,size=256k', mnt], { encoding: 'utf8' });
      assert.equal(grown.status, 0, grown.stderr);
      const { store: recovered, recovery } = await LocalStore.open(dir, options());
      assert.equal(recovery?.previousRunId, opts.runId);
      assert.ok(recovery.entriesFound >= acked);
      t.diagnostic(
        `tmpfs: ${acked} entries acknowledged before ENOSPC; recovery found ${recovery.entriesFound}, ` +
          `dropped ${recovery.truncatedBytes} torn bytes, index rebuilt: ${recovery.indexRebuilt}`,
      );
      for (let i = 0; i < acked; i++) assert.deepEqual(recovered.entry(i), kib(i));
      await recovered.close();
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  test('checkpoints: durable, in order, only over durable entries, kept across re-opens', async () => {
    const dir = freshDir();
    const store = await create(dir, { fsyncEveryEntries: 1000, fsyncEveryMs: 60_000 });
    assert.deepEqual(store.checkpoints(), []);
    assert.equal(store.lastCheckpoint(), undefined);
    for (let i = 0; i < 5; i++) store.append(entryOf(i));
    await assert.rejects(store.appendCheckpoint(await signedCheckpoint(5)), isSealError('INVALID_ARGUMENT'));
    await store.flush();
    const notes = [await signedCheckpoint(3), await signedCheckpoint(5)];
    for (const n of notes) await store.appendCheckpoint(n);
    await assert.rejects(
      store.appendCheckpoint(await signedCheckpoint(5, 'other.example/log')),
      isSealError('INVALID_ARGUMENT'),
    );
    await assert.rejects(store.appendCheckpoint('not a note'), isSealError('NOTE_MALFORMED'));
    assert.deepEqual(store.checkpoints(), notes);
    assert.equal(store.checkpointCount, 2);
    assert.equal(store.lastCheckpoint(), notes[1]);
    await store.close();

    const { store: reopened } = await LocalStore.open(dir, options());
    assert.deepEqual(reopened.checkpoints(), notes);
    assert.equal(reopened.checkpointCount, 2);
    assert.equal(reopened.lastCheckpoint(), notes[1]);
    await reopened.close();
    const reader = LocalStore.openReadOnly(dir);
    assert.deepEqual(reader.checkpoints(), notes);
    assert.equal(reader.checkpointCount, 2);
    await reader.close();
  });

  test('tree state is replaced durably and read back', async () => {
    const dir = freshDir();
    const store = await create(dir);
    assert.equal(store.loadTreeState(), undefined);
    await store.saveTreeState(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, ...new Uint8Array(32).fill(9)]));
    const second = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 2, ...new Uint8Array(32).fill(7)]);
    await store.saveTreeState(second);
    assert.deepEqual(store.loadTreeState(), second);
    assert.equal(existsSync(join(dir, `${STORE_FILES.treeState}.tmp`)), false);
    assert.equal(statSync(join(dir, STORE_FILES.treeState)).mode & 0o777, 0o600);
    await store.close();
  });

  test('a read-only store needs no lock, sees written entries and refuses writes', async () => {
    const dir = freshDir();
    const writer = await create(dir, { fsyncEveryEntries: 1000, fsyncEveryMs: 60_000 });
    for (let i = 0; i < 30; i++) writer.append(entryOf(i));
    await writer.flush();
    writer.append(entryOf(30)); // not written yet

    const reader = LocalStore.openReadOnly(dir);
    assert.equal(reader.size, 30);
    assert.equal(reader.durableSize, 30);
    assertEntries(reader, 0, 30);
    assert.throws(() => reader.append(entryOf(0)), isSealError('STORE_NOT_WRITABLE'));
    await assert.rejects(reader.saveTreeState(new Uint8Array(8)), isSealError('STORE_NOT_WRITABLE'));
    await assert.rejects(
      reader.appendCheckpoint(await signedCheckpoint(1)),
      isSealError('STORE_NOT_WRITABLE'),
    );
    await reader.close();
    await writer.close();
    assert.throws(() => writer.append(entryOf(0)), isSealError('STORE_NOT_WRITABLE'));
  });

  test('refuses empty entries and out-of-range reads', async () => {
    const store = await create(freshDir());
    assert.throws(() => store.append(new Uint8Array(0)), isSealError('INVALID_ARGUMENT'));
    store.append(entryOf(0));
    assert.throws(() => store.entry(1), isSealError('INVALID_ARGUMENT'));
    assert.throws(() => store.entry(-1), isSealError('INVALID_ARGUMENT'));
    assert.throws(() => store.entries(0, 2), isSealError('INVALID_ARGUMENT'));
    assert.throws(() => store.entries(1, 0), isSealError('INVALID_ARGUMENT'));
    await store.close();
  });
});
