/**
 * The two-slot state file (docs/FORMAT.md §6.2): signed.state and tree.state are replaced with a
 * pwrite and an fdatasync on a descriptor kept open, and a torn or damaged newest slot falls back to
 * the last good state. Files in the old format (the bare payload) still load, and are converted.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';
import {
  decodeSlot,
  decodeStateFile,
  encodeSlot,
  SLOT_SIZE,
  STATE_FILE_SIZE,
} from '../../src/seal/format/state-file.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import { CheckpointSigner, encodeSignedState, readSignedState } from '../../src/seal/signer.js';
import { readStateFile, StateFile } from '../../src/seal/state-file.js';
import { LocalStore, nodeStoreFs, STORE_FILES } from '../../src/seal/store.js';

const p = new OpenSslProvider();
const ORIGIN = 'test.sealgate/state';
const CODE = 'CHECKPOINT_STATE_INVALID';
const isSealError =
  (code: SealErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof SealError, `expected SealError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };

let work: string;
let n = 0;
const fresh = (): string => join(work, `state-${++n}`);
let recipient: PrivateKey;
let signer: PrivateKey;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sealgate-state-'));
  recipient = await p.generateKey({ type: 'rsa', bits: 2048 });
  signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
});
after(() => rmSync(work, { recursive: true, force: true }));

const bytes = (fill: number, length = 40): Uint8Array => new Uint8Array(length).fill(fill);

/** Overwrites `data` at `position` of the file, as a torn or damaging write would. */
function overwrite(path: string, position: number, data: Uint8Array): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, position);
  } finally {
    closeSync(fd);
  }
}

/** Which slot holds the current state, from the file's bytes. */
const currentSlot = (path: string): 0 | 1 =>
  decodeStateFile(new Uint8Array(readFileSync(path)), path, CODE).slot;

describe('two-slot state file (FORMAT.md §6.2)', () => {
  it('encodes a slot that decodes to itself; any damage makes it invalid', () => {
    const slot = encodeSlot(7n, bytes(3));
    assert.equal(slot.length, SLOT_SIZE);
    assert.deepEqual(decodeSlot(slot), { generation: 7n, payload: bytes(3) });
    assert.deepEqual(decodeSlot(encodeSlot(0n, undefined)), { generation: 0n, payload: undefined });
    for (const at of [0, 9, 17, 20, 100, SLOT_SIZE - 1]) {
      const damaged = Uint8Array.from(slot);
      damaged[at]! ^= 0x01;
      assert.equal(decodeSlot(damaged), undefined, `a flipped bit at ${at}`);
    }
    assert.equal(decodeSlot(new Uint8Array(SLOT_SIZE)), undefined, 'never written');
    assert.throws(() => encodeSlot(1n, new Uint8Array(SLOT_SIZE)), isSealError('INVALID_ARGUMENT'));
  });

  it('writes alternate between the slots, the newer generation wins, the file never changes size', async () => {
    const path = fresh();
    const file = await StateFile.open(path, nodeStoreFs, { code: CODE });
    try {
      assert.equal(file.read(), undefined, 'a new file holds no state');
      assert.equal(statSync(path).size, STATE_FILE_SIZE);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const slots: number[] = [];
      for (let i = 1; i <= 5; i++) {
        await file.write(bytes(i));
        assert.deepEqual(file.read(), bytes(i));
        assert.deepEqual(readStateFile(path, { code: CODE }), bytes(i), 'a reader sees it too');
        slots.push(currentSlot(path));
        assert.equal(statSync(path).size, STATE_FILE_SIZE);
      }
      assert.deepEqual(slots, [1, 0, 1, 0, 1]);
      assert.deepEqual(
        readdirSync(work).filter((f) => f.endsWith('.tmp')),
        [],
        'no temp file',
      );
    } finally {
      file.close();
    }
  });

  it('a half-written new slot loses to the last good one; a corrupted newest slot falls back to the older one', async () => {
    const path = fresh();
    const file = await StateFile.open(path, nodeStoreFs, { code: CODE });
    await file.write(bytes(1));
    await file.write(bytes(2)); // in slot A, generation 2; slot B holds bytes(1), generation 1
    const newest = currentSlot(path);
    // A crash halfway through writing generation 3 over the older slot: its first half only.
    const torn = encodeSlot(3n, bytes(3)).subarray(0, SLOT_SIZE / 2);
    overwrite(path, (1 - newest) * SLOT_SIZE, torn);
    assert.deepEqual(file.read(), bytes(2), 'the half-written slot loses');
    // A damaged newest slot (one flipped byte in its payload): the older valid one wins.
    overwrite(path, newest * SLOT_SIZE + 24, new Uint8Array([0xff]));
    const damagedBoth = (): Uint8Array | undefined => file.read();
    assert.throws(damagedBoth, isSealError(CODE), 'neither slot valid now: refused, not "no state"');
    file.close();

    const path2 = fresh();
    const file2 = await StateFile.open(path2, nodeStoreFs, { code: CODE });
    await file2.write(bytes(1));
    await file2.write(bytes(2));
    const newest2 = currentSlot(path2);
    overwrite(path2, newest2 * SLOT_SIZE + 24, new Uint8Array([0xff]));
    assert.deepEqual(file2.read(), bytes(1), 'a corrupted newest slot falls back to the older valid one');
    await file2.write(bytes(4)); // written over the corrupted slot, one generation above the good one
    assert.deepEqual(file2.read(), bytes(4));
    assert.equal(currentSlot(path2), newest2);
    file2.close();
  });

  it('a file with no valid slot, or the wrong size, is refused at open', async () => {
    const zeros = fresh();
    writeFileSync(zeros, new Uint8Array(STATE_FILE_SIZE));
    await assert.rejects(StateFile.open(zeros, nodeStoreFs, { code: CODE }), isSealError(CODE));
    const empty = fresh();
    writeFileSync(empty, new Uint8Array(0));
    await assert.rejects(StateFile.open(empty, nodeStoreFs, { code: CODE }), isSealError(CODE));
  });

  it('an old-format signed.state (40 bytes) still loads, is converted at open, and still binds', async () => {
    const path = fresh();
    const root = p.digest('sha256', Buffer.from('root at 9'));
    writeFileSync(path, encodeSignedState({ size: 9n, root }), { mode: 0o600 });
    assert.equal(readSignedState(path)?.size, 9n, 'a reader reads the old format');
    const s = await CheckpointSigner.open(p, { key: signer, origin: ORIGIN, statePath: path });
    try {
      assert.deepEqual(s.lastSigned(), { size: 9n, root });
      assert.equal(statSync(path).size, STATE_FILE_SIZE, 'converted');
      // It still binds: another root at size 9 is refused.
      await assert.rejects(
        s.sign({ size: 9n, root: new Uint8Array(32) }, () => []),
        isSealError('CHECKPOINT_INCONSISTENT'),
      );
    } finally {
      s.close();
    }
    const bad = fresh();
    writeFileSync(bad, new Uint8Array(39));
    await assert.rejects(
      CheckpointSigner.open(p, { key: signer, origin: ORIGIN, statePath: bad }),
      isSealError(CODE),
    );
  });

  it('a store whose signed.state and tree.state are in the old format opens, goes on and verifies', async () => {
    const dir = join(fresh(), 'store');
    const open = (create = false): Promise<SealedLog> =>
      SealedLog.open({
        provider: p,
        dir,
        origin: ORIGIN,
        recipients: [recipient.publicKey],
        signingKey: signer,
        create,
      });
    const log = await open(true);
    const session = log.openSession();
    for (let i = 0; i < 10; i++)
      session.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from(`r ${i}`) });
    await session.end('done').durable;
    await log.close('stopped');
    // Rewrite both as the previous version left them: the bare payload.
    for (const name of [STORE_FILES.signedState, STORE_FILES.treeState]) {
      const payload = readStateFile(join(dir, name), { code: CODE })!;
      writeFileSync(join(dir, name), payload, { mode: 0o600 });
    }
    const before = LocalStore.openReadOnly(dir);
    assert.ok(before.loadTreeState(), 'a reader reads an old tree.state');
    await before.close();

    const again = await open();
    again.openSession().end('second run');
    await again.close('stopped');
    for (const name of [STORE_FILES.signedState, STORE_FILES.treeState]) {
      assert.equal(statSync(join(dir, name)).size, STATE_FILE_SIZE, `${name} converted`);
    }
    const source = storeSource(dir);
    try {
      const report = verifyLog(p, source, { trustedSigners: [signer.publicKey] });
      assert.deepEqual(report.failures, []);
      assert.equal(report.counts.runs, 2);
    } finally {
      source.close();
    }
  });
});
