/**
 * The sealed log writer end to end on a real directory: sessions, segments, system entries, checkpoints.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import { parseCheckpoint } from '../../src/seal/checkpoint.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { decodePayload } from '../../src/seal/format/payload.js';
import { EntryKind, RecordType, SystemType } from '../../src/seal/format/types.js';
import { SealedLog, type LogPolicy } from '../../src/seal/log.js';
import { hashLeaf, rootOf } from '../../src/seal/merkle.js';
import { verifyNote } from '../../src/seal/note.js';
import { SegmentOpener } from '../../src/seal/opener.js';
import { verifyRotation } from '../../src/seal/signer.js';
import { LocalStore } from '../../src/seal/store.js';

const p = new OpenSslProvider();
const sha256 = (d: Uint8Array) => p.digest('sha256', d);
const ORIGIN = 'test.sealgate/log';

async function keys(): Promise<{ recipient: PrivateKey; signer: PrivateKey }> {
  return {
    recipient: await p.generateKey({ type: 'rsa', bits: 2048 }),
    signer: await p.generateKey({ type: 'ec', curve: 'P-384' }),
  };
}

function readAll(dir: string): Uint8Array[] {
  const store = LocalStore.openReadOnly(dir);
  return [...store.entries(0, store.size)];
}

/** A new log in a fresh directory, with fresh recipient and signer keys. */
async function newLog(policy: Partial<LogPolicy> = {}) {
  const { recipient, signer } = await keys();
  const dir = join(mkdtempSync(join(tmpdir(), 'sealgate-log-')), 'store');
  const log = await SealedLog.open({
    provider: p,
    dir,
    origin: ORIGIN,
    recipients: [recipient.publicKey],
    signingKey: signer,
    create: true,
    policy,
  });
  return { log, dir, recipient, signer };
}

describe('sealed log writer', () => {
  it('large data records (sealed, hashed and stored in parts) are the same entries: tree root and plaintext', async () => {
    const { log, dir, recipient, signer } = await newLog({ fsyncEveryEntries: 3 });
    const session = log.openSession();
    const sizes = [40_000, 1, 4095, 4096, 70_000, 0, 33_000];
    const sent = sizes.map((n, i) => p.randomBytes(n).map((b) => b ^ i));
    sent.forEach((data, i) => session.event(RecordType.DATA_IN, { channel: i, data }));
    await session.end('closed').durable;
    await log.close('test done');

    const entries = readAll(dir);
    const store = LocalStore.openReadOnly(dir);
    const cp = parseCheckpoint(
      verifyNote(p, store.lastCheckpoint()!, [{ name: ORIGIN, key: signer.publicKey }]).body,
    );
    assert.equal(cp.size, BigInt(entries.length));
    assert.deepEqual(
      cp.root,
      rootOf(
        sha256,
        entries.map((e) => hashLeaf(sha256, e)),
      ),
    );
    let opener: SegmentOpener | undefined;
    const got: { channel: number; data: Uint8Array }[] = [];
    for (const e of entries) {
      const d = decodeEntry(e);
      if (d.kind === EntryKind.SEGMENT_HEADER) opener = await SegmentOpener.open(p, e, recipient);
      if (d.kind !== EntryKind.SEALED_RECORD) continue;
      const r = opener!.open(e);
      if (r.type === RecordType.DATA_IN) got.push(decodePayload(RecordType.DATA_IN, r.plaintext));
    }
    assert.deepEqual(
      got.map((g) => g.channel),
      sizes.map((_, i) => i),
    );
    got.forEach((g, i) => assert.deepEqual(g.data, sent[i], `record ${i}`));
  });

  it('writes sessions as segments, brackets the run, and signs checkpoints over the whole tree', async () => {
    const { log, dir, recipient, signer } = await newLog({ maxRecords: 4 });
    const session = log.openSession();
    session.event(RecordType.EXEC, { channel: 0, command: 'id' });
    for (let i = 0; i < 5; i++) {
      session.event(RecordType.DATA_OUT, { channel: 0, data: new TextEncoder().encode(`line ${i}\n`) });
    }
    await session.end('closed').durable;
    await log.close('test done');

    const entries = readAll(dir);
    const decoded = entries.map((e) => decodeEntry(e));
    const kinds = decoded.map((e) => e.kind);
    // LOG_START, header, 4 records (last FINAL), header, 3 records (SESSION_END FINAL), LOG_STOP.
    assert.equal(decoded[0]?.kind === EntryKind.SYSTEM && decoded[0].type, SystemType.LOG_START);
    const last = decoded.at(-1);
    assert.equal(last?.kind === EntryKind.SYSTEM && last.type, SystemType.LOG_STOP);
    assert.equal(kinds.filter((k) => k === EntryKind.SEGMENT_HEADER).length, 2);
    const records = decoded.filter((e) => e.kind === EntryKind.SEALED_RECORD);
    assert.equal(records.length, 7);
    assert.deepEqual(
      records.map((r) => [Number(r.seq), r.final]),
      [
        [0, false],
        [1, false],
        [2, false],
        [3, true],
        [0, false],
        [1, false],
        [2, true],
      ],
    );

    // The last checkpoint covers every entry and verifies with the signer's public key alone.
    const store = LocalStore.openReadOnly(dir);
    const note = store.lastCheckpoint();
    assert.ok(note);
    const { body } = verifyNote(p, note, [{ name: ORIGIN, key: signer.publicKey }]);
    const cp = parseCheckpoint(body);
    assert.equal(cp.size, BigInt(entries.length));
    assert.deepEqual(
      cp.root,
      rootOf(
        sha256,
        entries.map((e) => hashLeaf(sha256, e)),
      ),
    );

    // The recipient opens both segments.
    let headerBytes: Uint8Array | undefined;
    const plaintexts: string[] = [];
    let opener: SegmentOpener | undefined;
    for (const e of entries) {
      const d = decodeEntry(e);
      if (d.kind === EntryKind.SEGMENT_HEADER) {
        headerBytes = e;
        opener = await SegmentOpener.open(p, headerBytes, recipient);
      } else if (d.kind === EntryKind.SEALED_RECORD && opener) {
        const r = opener.open(e);
        if (r.type === RecordType.DATA_OUT) {
          const payload = decodePayload(RecordType.DATA_OUT, r.plaintext);
          plaintexts.push(new TextDecoder().decode(payload.data));
        }
      }
    }
    assert.deepEqual(plaintexts, ['line 0\n', 'line 1\n', 'line 2\n', 'line 3\n', 'line 4\n']);
  });

  it('reopens a stopped log and keeps one tree across runs, consistent checkpoints', async () => {
    const { recipient, signer } = await keys();
    const dir = join(mkdtempSync(join(tmpdir(), 'sealgate-log-')), 'store');
    const options = {
      provider: p,
      dir,
      origin: ORIGIN,
      recipients: [recipient.publicKey],
      signingKey: signer,
    };
    const first = await SealedLog.open({ ...options, create: true });
    first.openSession().end('empty');
    await first.close();
    const second = await SealedLog.open(options);
    second.openSession().end('empty');
    await second.close();
    const entries = readAll(dir);
    const starts = entries
      .map((e) => decodeEntry(e))
      .filter((e) => e.kind === EntryKind.SYSTEM && e.type === SystemType.LOG_START);
    assert.equal(starts.length, 2);
    const store = LocalStore.openReadOnly(dir);
    const sizes = store
      .checkpoints()
      .map((n) => parseCheckpoint(verifyNote(p, n, [{ name: ORIGIN, key: signer.publicKey }]).body).size);
    assert.ok(sizes.length >= 4, `checkpoints: ${sizes.join(',')}`);
    for (let i = 1; i < sizes.length; i++) assert.ok((sizes[i] ?? 0n) > (sizes[i - 1] ?? 0n));
    assert.equal(sizes.at(-1), BigInt(entries.length));
  });

  it('writes heartbeats while idle', async () => {
    const { log, dir } = await newLog({ heartbeatMs: 20 });
    await new Promise((r) => setTimeout(r, 150));
    await log.close();
    const beats = readAll(dir)
      .map((e) => decodeEntry(e))
      .filter((e) => e.kind === EntryKind.SYSTEM && e.type === SystemType.HEARTBEAT);
    assert.ok(beats.length >= 3, `only ${beats.length} heartbeats in 150 ms at 20 ms`);
  });

  it('rotates recipients: segments after KEY_ROTATION open only with the new key', async () => {
    const next = await p.generateKey({ type: 'rsa', bits: 2048 });
    const { log, dir, recipient } = await newLog();
    log.openSession().end('before');
    log.rotateRecipients([next.publicKey]);
    log.openSession().end('after');
    await log.close();
    const entries = readAll(dir);
    const headers = entries.filter((e) => decodeEntry(e).kind === EntryKind.SEGMENT_HEADER);
    assert.equal(headers.length, 2);
    await SegmentOpener.open(p, headers[0] as Uint8Array, recipient);
    await assert.rejects(SegmentOpener.open(p, headers[1] as Uint8Array, recipient), {
      code: 'NO_RECIPIENT_FOR_KEY',
    });
    await SegmentOpener.open(p, headers[1] as Uint8Array, next);
    const rotation = entries
      .map((e) => decodeEntry(e))
      .find((e) => e.kind === EntryKind.SYSTEM && e.type === SystemType.KEY_ROTATION);
    assert.ok(rotation && rotation.kind === EntryKind.SYSTEM);
    assert.deepEqual(rotation.body.recipients, [
      Buffer.from(p.digest('sha256', next.publicKey.spkiDer())).toString('hex'),
    ]);
  });

  it('rotates the signer: the old key signs the new one, and checkpoints after it are the new key’s', async () => {
    const newSigner = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const { log, dir, signer } = await newLog();
    log.openSession().end('before');
    await log.rotateSigner(newSigner);
    log.openSession().end('after');
    await log.close();
    const entries = readAll(dir);
    const rotationIndex = entries.findIndex((e) => {
      const d = decodeEntry(e);
      return d.kind === EntryKind.SYSTEM && d.type === SystemType.SIGNER_ROTATION;
    });
    const rotation = decodeEntry(entries[rotationIndex] as Uint8Array);
    assert.ok(rotation.kind === EntryKind.SYSTEM);
    const body = rotation.body as Record<string, string>;
    assert.ok(verifyRotation(p, signer.publicKey, ORIGIN, body.new_key_spki ?? '', body.signature ?? ''));
    assert.equal(
      verifyRotation(p, newSigner.publicKey, ORIGIN, body.new_key_spki ?? '', body.signature ?? ''),
      false,
    );
    const store = LocalStore.openReadOnly(dir);
    const oldTrust = [{ name: ORIGIN, key: signer.publicKey }];
    const newTrust = [{ name: ORIGIN, key: newSigner.publicKey }];
    for (const note of store.checkpoints()) {
      const size = parseCheckpoint(note.split('\n\n')[0] + '\n').size;
      if (size > BigInt(rotationIndex)) {
        verifyNote(p, note, newTrust);
        assert.throws(() => verifyNote(p, note, oldTrust), { code: 'NOTE_UNKNOWN_SIGNER' });
      } else {
        verifyNote(p, note, oldTrust);
      }
    }
  });
});
