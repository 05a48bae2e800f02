/**
 * SegmentSealer and SegmentOpener through a real provider: round trips, and every way a segment can be
 * tampered with. Registered by format.test.ts (normal Node) and format.fips.ts (FIPS-mode Node).
 * RSA-2048 recipients keep key generation fast; the warning they earn is asserted too.
 */
import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import {
  CryptoError,
  OpenSslProvider,
  type CryptoProvider,
  type PrivateKey,
  type PublicKey,
} from '../../src/crypto/index.js';
import { decodeSealedRecord, encodeSealedRecord, recordAad, recordIv } from '../../src/seal/format/record.js';
import { decodeSegmentHeader } from '../../src/seal/format/segment-header.js';
import { RecordType, type RecordType as RecordTypeT } from '../../src/seal/format/types.js';
import { decodePayload, encodePayload } from '../../src/seal/format/payload.js';
import { SegmentOpener } from '../../src/seal/opener.js';
import { SegmentSealer, type SegmentSealerOptions } from '../../src/seal/sealer.js';
import { deriveSegmentKeys, recipientKeyId } from '../../src/seal/segment-keys.js';
import { sealError, thrownCode } from './assert-seal-error.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const T0 = 1764000000000000n;
const ALL_TYPES = Object.values(RecordType);

function options(p: CryptoProvider, recipients: PublicKey[], extra: Partial<SegmentSealerOptions> = {}) {
  const info = p.info();
  return {
    origin: 'test.sealgate/log',
    sessionId: p.randomBytes(16),
    provenance: { fips: info.fipsMode, backend: info.backend, library: info.library },
    recipients,
    createdUs: T0,
    ...extra,
  };
}

/** Seals `n` records of cycling types and sizes (the last FINAL); returns the entries and plaintexts. */
function sealMany(p: CryptoProvider, sealer: SegmentSealer, n: number) {
  const records: Uint8Array[] = [];
  const plaintexts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const type = ALL_TYPES[i % ALL_TYPES.length];
    const plaintext = p.randomBytes((i * 37) % 1500);
    plaintexts.push(plaintext);
    records.push(sealer.seal(type, plaintext, { timeUs: T0 + BigInt(i), final: i === n - 1 }));
  }
  return { records, plaintexts };
}

/** `bytes` with `region` replaced by `replacement` (same length). */
function splice(bytes: Uint8Array, at: number, replacement: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out.set(replacement, at);
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const at = Buffer.from(haystack).indexOf(Buffer.from(needle));
  assert.ok(at >= 0, 'needle not found');
  return at;
}

export function registerSealerTests(mode: 'normal' | 'fips'): void {
  const p = new OpenSslProvider();
  let alice: PrivateKey;
  let bob: PrivateKey;
  let carol: PrivateKey;

  before(async () => {
    [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => p.generateKey({ type: 'rsa', bits: 2048 })));
  });

  it(`provider mode is ${mode}`, () => assert.equal(p.info().fipsMode, mode === 'fips'));

  it('round trip: 1,000 records sealed to two recipients; each recipient opens all of them', async () => {
    const sealer = SegmentSealer.create(p, options(p, [alice.publicKey, bob.publicKey]));
    const { records, plaintexts } = sealMany(p, sealer, 1000);
    assert.equal(sealer.nextSeq, 1000n);
    assert.equal(sealer.finalized, true);
    assert.equal(
      sealer.plaintextBytes,
      plaintexts.reduce((n, b) => n + b.length, 0),
    );
    for (const key of [alice, bob]) {
      const opener = await SegmentOpener.open(p, sealer.headerBytes, key);
      assert.deepEqual(opener.headerHash, sealer.headerHash);
      assert.deepEqual(opener.segmentId, sealer.segmentId);
      records.forEach((bytes, i) => {
        const r = opener.open(bytes);
        assert.equal(r.seq, BigInt(i));
        assert.equal(r.type, ALL_TYPES[i % ALL_TYPES.length]);
        assert.equal(r.timeUs, T0 + BigInt(i));
        assert.equal(r.final, i === 999);
        assert.deepEqual(r.plaintext, plaintexts[i]);
      });
    }
  });

  it('sealing in parts makes the same records: mixed with whole seals, they open in order', async () => {
    const sealer = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const data = p.randomBytes(40_000);
    const plaintexts: Uint8Array[] = [];
    const entries: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) {
      const type = i % 2 ? RecordType.DATA_OUT : RecordType.DATA_IN;
      const cut = (i * 4099) % 2000;
      const parts = [new Uint8Array([0, 0, 0, i]), data.subarray(0, cut), data.subarray(cut, 1000 * i * i)];
      const joined = new Uint8Array(Buffer.concat(parts));
      plaintexts.push(joined);
      const opts = { timeUs: T0 + BigInt(i), final: i === 7 };
      if (i % 3 === 0) entries.push(sealer.seal(type, joined, opts));
      else {
        const entryParts = sealer.sealParts(type, parts, opts);
        assert.ok(entryParts.length >= 3, 'prefix, ciphertext, tag');
        entries.push(new Uint8Array(Buffer.concat(entryParts)));
      }
    }
    assert.equal(
      sealer.plaintextBytes,
      plaintexts.reduce((n, b) => n + b.length, 0),
    );
    const opener = await SegmentOpener.open(p, sealer.headerBytes, alice);
    entries.forEach((bytes, i) => {
      const r = opener.open(bytes);
      assert.equal(r.seq, BigInt(i));
      assert.equal(r.type, i % 2 ? RecordType.DATA_OUT : RecordType.DATA_IN);
      assert.equal(r.final, i === 7);
      assert.deepEqual(r.plaintext, plaintexts[i]);
      assert.deepEqual(decodeSealedRecord(bytes).seq, BigInt(i));
    });
    assert.equal(
      thrownCode(() => sealer.sealParts(RecordType.DATA_IN, [data], { timeUs: T0 })),
      'SEGMENT_FINALIZED',
    );
  });

  it('header: suite 1, ids, recipients keyed by SHA-256 of the SPKI DER, and a 2048-bit warning each', () => {
    const sessionId = p.randomBytes(16);
    const prevSegmentId = p.randomBytes(16);
    const sealer = SegmentSealer.create(
      p,
      options(p, [alice.publicKey, bob.publicKey], { sessionId, prevSegmentId }),
    );
    const h = decodeSegmentHeader(sealer.headerBytes);
    assert.equal(h.suite, 1);
    assert.deepEqual(h.segmentId, sealer.segmentId);
    assert.deepEqual(h.sessionId, sessionId);
    assert.deepEqual(sealer.sessionId, sessionId);
    assert.deepEqual(h.prevSegmentId, prevSegmentId);
    assert.equal(h.createdUs, T0);
    assert.deepEqual(
      h.recipients.map((r) => hex(r.keyId)),
      [alice, bob].map((k) => hex(p.digest('sha256', k.publicKey.spkiDer()))),
    );
    assert.deepEqual(recipientKeyId(p, alice.publicKey), h.recipients[0].keyId);
    h.recipients.forEach((r) => assert.equal(r.wrappedDek.length, 256));
    assert.equal(h.provenance.fips, mode === 'fips');
    assert.deepEqual(sealer.headerHash, p.digest('sha256', sealer.headerBytes));
    assert.equal(sealer.warnings.length, 2);
    assert.match(sealer.warnings[0], new RegExp(`${hex(h.recipients[0].keyId)} is RSA-2048.*3072`));
    assert.equal(
      decodeSegmentHeader(
        SegmentSealer.create(p, options(p, [alice.publicKey])).headerBytes,
      ).prevSegmentId.every((b) => b === 0),
      true,
    );
  });

  it('the DEK is random per segment and zeroed after derivation; the commitment and records follow FORMAT.md §4', () => {
    const issued: { bytes: Uint8Array; copy: Uint8Array }[] = [];
    const spy: CryptoProvider = Object.create(p) as CryptoProvider;
    spy.randomBytes = (n: number) => {
      const bytes = p.randomBytes(n);
      issued.push({ bytes, copy: bytes.slice() });
      return bytes;
    };
    const sealer = SegmentSealer.create(spy, options(p, [alice.publicKey]));
    const dek = issued.find((b) => b.bytes.length === 32);
    assert.ok(dek, 'no 32-byte DEK was drawn');
    assert.ok(
      dek.bytes.every((b) => b === 0),
      'the DEK buffer was not zeroed',
    );
    const h = decodeSegmentHeader(sealer.headerBytes);
    const keys = deriveSegmentKeys(p, dek.copy, h.segmentId);
    assert.deepEqual(h.commitment, keys.commitment);
    // The sealer's reused-buffer fast path agrees with the pure AAD and IV functions.
    for (const seq of [0, 1, 2]) {
      const bytes = sealer.seal(RecordType.DATA_OUT, new Uint8Array([seq, 1, 2]), { timeUs: T0 });
      const r = decodeSealedRecord(bytes);
      const aad = recordAad(sealer.headerHash, bytes);
      const plaintext = p.aesGcmOpen({ key: keys.recordKey, iv: recordIv(BigInt(seq)), aad }, r.sealed);
      assert.deepEqual(plaintext, new Uint8Array([seq, 1, 2]));
    }
    const other = SegmentSealer.create(p, options(p, [alice.publicKey]));
    assert.notDeepEqual(other.segmentId, sealer.segmentId);
  });

  it('payloads round trip through seal and open', async () => {
    const sealer = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const data = sealer.seal(
      RecordType.DATA_IN,
      encodePayload(RecordType.DATA_IN, { channel: 3, data: new Uint8Array([104, 105, 10]) }),
      { timeUs: T0 },
    );
    const exec = sealer.seal(RecordType.EXEC, encodePayload(RecordType.EXEC, { channel: 3, command: 'id' }), {
      timeUs: T0,
      final: true,
    });
    const opener = await SegmentOpener.open(p, sealer.headerBytes, alice);
    const d = opener.open(data);
    assert.deepEqual(decodePayload(RecordType.DATA_IN, d.plaintext), {
      channel: 3,
      data: new Uint8Array([104, 105, 10]),
    });
    assert.deepEqual(decodePayload(RecordType.EXEC, opener.open(exec).plaintext), {
      channel: 3,
      command: 'id',
    });
  });

  it('refuses recipients: none, 17, an EC key, a duplicate, RSA below 2048 (by the provider policy)', () => {
    assert.throws(
      () => SegmentSealer.create(p, options(p, [])),
      sealError('INVALID_ARGUMENT', /0 recipients/),
    );
    const many = Array.from({ length: 17 }, () => alice.publicKey);
    assert.throws(
      () => SegmentSealer.create(p, options(p, many)),
      sealError('INVALID_ARGUMENT', /17 recipients/),
    );
    const ec: PublicKey = { ...alice.publicKey, algorithm: { type: 'ec', curve: 'P-384' } };
    assert.throws(() => SegmentSealer.create(p, options(p, [ec])), sealError('INVALID_ARGUMENT', /ec key/));
    assert.throws(
      () => SegmentSealer.create(p, options(p, [alice.publicKey, alice.publicKey])),
      sealError('INVALID_ARGUMENT', /repeats the key id/),
    );
    const weak: PublicKey = {
      algorithm: { type: 'rsa', bits: 1024 },
      spkiDer: () => alice.publicKey.spkiDer(),
      spkiPem: () => alice.publicKey.spkiPem(),
      openssh: () => alice.publicKey.openssh(),
    };
    assert.throws(
      () => SegmentSealer.create(p, options(p, [weak])),
      (e: unknown) =>
        e instanceof CryptoError && e.code === 'POLICY_REFUSED' && e.rule === 'suite.rsa-min-2048',
    );
  });

  it('refuses provenance that misstates the provider (it is an attestation)', () => {
    const info = p.info();
    for (const provenance of [
      { fips: !info.fipsMode, backend: info.backend },
      { fips: info.fipsMode, backend: 'pkcs11' },
    ]) {
      assert.throws(
        () => SegmentSealer.create(p, options(p, [alice.publicKey], { provenance })),
        sealError('INVALID_ARGUMENT', /provenance says/),
      );
    }
  });

  it('a key that is not a recipient: NO_RECIPIENT_FOR_KEY naming its key id', async () => {
    const sealer = SegmentSealer.create(p, options(p, [alice.publicKey, bob.publicKey]));
    const id = hex(recipientKeyId(p, carol.publicKey));
    await assert.rejects(
      SegmentOpener.open(p, sealer.headerBytes, carol),
      sealError('NO_RECIPIENT_FOR_KEY', new RegExp(id)),
    );
  });

  it("a recipient's wrapped DEK swapped in from another segment: KEY_COMMITMENT_MISMATCH", async () => {
    const a = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const b = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const wrappedA = decodeSegmentHeader(a.headerBytes).recipients[0].wrappedDek;
    const wrappedB = decodeSegmentHeader(b.headerBytes).recipients[0].wrappedDek;
    const forged = splice(a.headerBytes, indexOf(a.headerBytes, wrappedA), wrappedB);
    assert.deepEqual(decodeSegmentHeader(forged).recipients[0].wrappedDek, wrappedB);
    await assert.rejects(
      SegmentOpener.open(p, forged, alice),
      sealError(['KEY_COMMITMENT_MISMATCH', 'KEY_UNWRAP_FAILED']),
    );
    await assert.rejects(SegmentOpener.open(p, forged, alice), sealError('KEY_COMMITMENT_MISMATCH'));
  });

  it('a corrupted wrapped DEK: KEY_UNWRAP_FAILED; an edited commitment: KEY_COMMITMENT_MISMATCH', async () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const h = decodeSegmentHeader(s.headerBytes);
    const at = indexOf(s.headerBytes, h.recipients[0].wrappedDek);
    const corrupted = splice(s.headerBytes, at + 100, new Uint8Array([s.headerBytes[at + 100] ^ 0x01]));
    await assert.rejects(SegmentOpener.open(p, corrupted, alice), sealError('KEY_UNWRAP_FAILED'));
    const end = s.headerBytes.length - 1;
    const edited = splice(s.headerBytes, end, new Uint8Array([s.headerBytes[end] ^ 0x80]));
    await assert.rejects(SegmentOpener.open(p, edited, alice), sealError('KEY_COMMITMENT_MISMATCH'));
  });

  it('a header edited after sealing (created_us): it opens, but no record authenticates', async () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const record = s.seal(RecordType.SHELL, new Uint8Array([1]), { timeUs: T0, final: true });
    const h = decodeSegmentHeader(s.headerBytes);
    const at = indexOf(s.headerBytes, h.sessionId) + 16; // created_us follows session_id
    const edited = splice(s.headerBytes, at + 7, new Uint8Array([s.headerBytes[at + 7] ^ 0x01]));
    assert.equal(decodeSegmentHeader(edited).createdUs, T0 ^ 1n);
    const opener = await SegmentOpener.open(p, edited, alice);
    assert.throws(() => opener.open(record), sealError('RECORD_AUTHENTICATION_FAILED', /seq 0 \(SHELL\)/));
  });

  it('every flipped bit of a record is refused, with the code its field implies', async () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const record = s.seal(RecordType.DATA_OUT, p.randomBytes(24), { timeUs: T0 });
    const opener = await SegmentOpener.open(p, s.headerBytes, alice);
    assert.equal(opener.open(record).seq, 0n);
    const seen = new Map<string, number>();
    for (let i = 0; i < record.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = splice(record, i, new Uint8Array([record[i] ^ (1 << bit)]));
        const code = thrownCode(() => opener.open(flipped));
        const allowed =
          i >= 1 && i < 17 ? ['SEGMENT_MISMATCH'] : ['RECORD_AUTHENTICATION_FAILED', 'MALFORMED_ENTRY'];
        assert.ok(code && allowed.includes(code), `byte ${i} bit ${bit}: ${String(code)}`);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    assert.deepEqual([...seen.keys()].sort(), [
      'MALFORMED_ENTRY',
      'RECORD_AUTHENTICATION_FAILED',
      'SEGMENT_MISMATCH',
    ]);
  });

  it('a record replayed into another segment: SEGMENT_MISMATCH; relabelled with its id: authentication fails', async () => {
    const a = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const b = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const record = a.seal(RecordType.EXEC, new Uint8Array([7]), { timeUs: T0 });
    b.seal(RecordType.EXEC, new Uint8Array([7]), { timeUs: T0 });
    const openerB = await SegmentOpener.open(p, b.headerBytes, alice);
    assert.throws(() => openerB.open(record), sealError('SEGMENT_MISMATCH'));
    const relabelled = encodeSealedRecord({ ...decodeSealedRecord(record), segmentId: b.segmentId });
    assert.throws(() => openerB.open(relabelled), sealError('RECORD_AUTHENTICATION_FAILED'));
  });

  it('a record moved, retimed, retyped, or stripped of FINAL: authentication fails', async () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    const r0 = s.seal(RecordType.DATA_IN, new Uint8Array([1, 2, 3]), { timeUs: T0 });
    const r1 = s.seal(RecordType.DATA_IN, new Uint8Array([4, 5, 6]), { timeUs: T0 + 1n, final: true });
    const opener = await SegmentOpener.open(p, s.headerBytes, alice);
    const d0 = decodeSealedRecord(r0);
    const d1 = decodeSealedRecord(r1);
    const forgeries: [string, Uint8Array][] = [
      ['seq 0 -> 5', encodeSealedRecord({ ...d0, seq: 5n })],
      ['seq 1 -> 0', encodeSealedRecord({ ...d1, seq: 0n })],
      ['sealed bytes of 1 under the metadata of 0', encodeSealedRecord({ ...d0, sealed: d1.sealed })],
      ['time_us', encodeSealedRecord({ ...d0, timeUs: T0 + 1n })],
      ['type', encodeSealedRecord({ ...d0, type: RecordType.DATA_OUT })],
      ['FINAL stripped', encodeSealedRecord({ ...d1, flags: 0, final: false })],
      ['FINAL added', encodeSealedRecord({ ...d0, flags: 1, final: true })],
    ];
    for (const [what, bytes] of forgeries) {
      assert.throws(() => opener.open(bytes), sealError('RECORD_AUTHENTICATION_FAILED'), what);
    }
    assert.deepEqual(opener.open(r1).plaintext, new Uint8Array([4, 5, 6]));
  });

  it('after FINAL, seal throws SEGMENT_FINALIZED and the segment is unchanged', () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    s.seal(RecordType.SESSION_END, new Uint8Array(0), { timeUs: T0, final: true });
    assert.equal(s.finalized, true);
    assert.throws(
      () => s.seal(RecordType.DATA_OUT, new Uint8Array(1), { timeUs: T0 }),
      sealError('SEGMENT_FINALIZED'),
    );
    assert.equal(s.nextSeq, 1n);
  });

  it('seal refuses an unknown record type and a bad time, consuming no sequence number', () => {
    const s = SegmentSealer.create(p, options(p, [alice.publicKey]));
    assert.throws(
      () => s.seal(0x42 as RecordTypeT, new Uint8Array(1), { timeUs: T0 }),
      sealError('INVALID_ARGUMENT', /0x42/),
    );
    assert.throws(
      () => s.seal(RecordType.EXEC, new Uint8Array(1), { timeUs: -1n }),
      sealError('INVALID_ARGUMENT'),
    );
    assert.equal(s.nextSeq, 0n);
  });
}
