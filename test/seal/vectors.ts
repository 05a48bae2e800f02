/**
 * The test vectors of docs/FORMAT.md §9: a generator that builds them with the code's pure encoders and
 * the provider, and tests that (1) the code reproduces docs/FORMAT-vectors.json byte for byte and (2) the
 * JSON agrees with values computed independently: the key schedule with the `openssl kdf` command line,
 * the header by hand from the §3.1 layout, the records by hand from §3.2 with node:crypto's AES-GCM.
 *
 * Registered by format-vectors.test.ts (normal Node) and format.fips.ts (FIPS-mode Node).
 * Regenerate the JSON after a format change (then review the diff):
 *   npx tsc -p tsconfig.json && SEALGATE_WRITE_VECTORS=1 node --test dist/test/seal/format-vectors.test.js
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
// eslint-disable-next-line no-restricted-imports -- independent reference computation
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import type { CryptoProvider } from '../../src/crypto/index.js';
import { recordAad, recordIv, encodeSealedRecord, RECORD_PREFIX_LEN } from '../../src/seal/format/record.js';
import { encodeSegmentHeader } from '../../src/seal/format/segment-header.js';
import { EntryKind, FLAG_FINAL, RecordType, type RecordTypeName } from '../../src/seal/format/types.js';
import { deriveSegmentKeys } from '../../src/seal/segment-keys.js';
import { repoRoot } from '../helpers/paths.js';

export const VECTORS_FILE = join(repoRoot(), 'docs', 'FORMAT-vectors.json');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const range = (start: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => start + i);

interface RecordInput {
  seq: number;
  type: RecordTypeName;
  flags: number;
  time_us: string;
  plaintext: string;
}

/** The inputs of FORMAT.md §9. Integers above 2^53 would not survive JSON, so u64s are decimal strings. */
const INPUTS = {
  dek: hex(range(0x00, 32)),
  segment_id: hex(range(0xa0, 16)),
  session_id: hex(range(0xb0, 16)),
  prev_segment_id: hex(new Uint8Array(16)),
  created_us: '1764000000000000',
  origin: 'test.sealgate/log',
  provenance: '{"fips":false,"backend":"openssl"}',
  recipient_key_id_of: 'test recipient',
  wrapped_dek: 'deadbeef',
  records: [
    {
      seq: 0,
      type: 'EXEC',
      flags: 0,
      time_us: '1764000000000001',
      plaintext: '{"channel":0,"command":"id"}',
    },
    {
      seq: 1,
      type: 'SESSION_END',
      flags: FLAG_FINAL,
      time_us: '1764000000000002',
      plaintext: '{"reason":"closed"}',
    },
  ] as RecordInput[],
};

export interface FormatVectors {
  description: string;
  regenerate: string;
  inputs: typeof INPUTS;
  outputs: {
    record_key: string;
    commitment: string;
    key_id: string;
    segment_header: string;
    header_hash: string;
    records: { iv: string; aad: string; sealed: string; entry: string }[];
  };
}

/** Builds the vectors with the code under test: the pure encoders plus the provider's HKDF, SHA-256, GCM. */
export function generateVectors(provider: CryptoProvider): FormatVectors {
  const segmentId = unhex(INPUTS.segment_id);
  const keys = deriveSegmentKeys(provider, unhex(INPUTS.dek), segmentId);
  const keyId = provider.digest('sha256', utf8(INPUTS.recipient_key_id_of));
  const header = encodeSegmentHeader({
    kind: EntryKind.SEGMENT_HEADER,
    suite: 1,
    origin: INPUTS.origin,
    segmentId,
    prevSegmentId: unhex(INPUTS.prev_segment_id),
    sessionId: unhex(INPUTS.session_id),
    createdUs: BigInt(INPUTS.created_us),
    provenance: JSON.parse(INPUTS.provenance) as Record<string, unknown>,
    recipients: [{ keyId, wrappedDek: unhex(INPUTS.wrapped_dek) }],
    commitment: keys.commitment,
  });
  const headerHash = provider.digest('sha256', header);
  const records = INPUTS.records.map((r) => {
    const plaintext = utf8(r.plaintext);
    const fields = {
      kind: EntryKind.SEALED_RECORD,
      segmentId,
      seq: BigInt(r.seq),
      type: RecordType[r.type],
      flags: r.flags,
      final: (r.flags & FLAG_FINAL) !== 0,
      timeUs: BigInt(r.time_us),
    };
    // The AAD covers sealed_len, which is known before sealing: encode once with a placeholder to get it.
    const prefix = encodeSealedRecord({ ...fields, sealed: new Uint8Array(plaintext.length + 16) });
    const aad = recordAad(headerHash, prefix);
    const iv = recordIv(BigInt(r.seq));
    const sealed = provider.aesGcmSeal({ key: keys.recordKey, iv, aad }, plaintext);
    const entry = encodeSealedRecord({ ...fields, sealed });
    return { iv: hex(iv), aad: hex(aad), sealed: hex(sealed), entry: hex(entry) };
  });
  return {
    description:
      'sealgate log format v1 test vectors (docs/FORMAT.md §9). Hex unless noted; u64 values as decimal strings.',
    regenerate:
      'npx tsc -p tsconfig.json && SEALGATE_WRITE_VECTORS=1 node --test dist/test/seal/format-vectors.test.js',
    inputs: INPUTS,
    outputs: {
      record_key: hex(keys.recordKey),
      commitment: hex(keys.commitment),
      key_id: hex(keyId),
      segment_header: hex(header),
      header_hash: hex(headerHash),
      records,
    },
  };
}

/** HKDF-SHA-512 by the `openssl kdf` command line (OpenSSL 3), with the default configuration. */
function opensslHkdf(ikm: string, salt: string, info: string): string {
  const env = { ...process.env };
  delete env.OPENSSL_CONF; // the reference runs outside the FIPS configuration of the code under test
  delete env.OPENSSL_MODULES;
  const out = execFileSync(
    'openssl',
    [
      'kdf',
      '-keylen',
      '32',
      '-kdfopt',
      'digest:SHA512',
      '-kdfopt',
      `hexkey:${ikm}`,
      '-kdfopt',
      `hexsalt:${salt}`,
    ].concat(['-kdfopt', `info:${info}`, 'HKDF']),
    { encoding: 'utf8', env },
  );
  return out.trim().replace(/:/g, '').toLowerCase(); // prints "D3:03:A1:…"
}

const u64 = (v: string | number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** FORMAT.md §3.1, assembled field by field from the spec's table rather than by the encoder. */
function headerByHand(v: FormatVectors): Buffer {
  const i = v.inputs;
  const origin = Buffer.from(i.origin, 'utf8');
  const provenance = Buffer.from(i.provenance, 'utf8');
  const wrapped = Buffer.from(i.wrapped_dek, 'hex');
  return Buffer.concat([
    Buffer.from([0x01, 0x01]),
    u16(origin.length),
    origin,
    Buffer.from(i.segment_id, 'hex'),
    Buffer.from(i.prev_segment_id, 'hex'),
    Buffer.from(i.session_id, 'hex'),
    u64(i.created_us),
    u16(provenance.length),
    provenance,
    Buffer.from([1]),
    createHash('sha256').update(i.recipient_key_id_of).digest(),
    u16(wrapped.length),
    wrapped,
    Buffer.from(v.outputs.commitment, 'hex'),
  ]);
}

/** FORMAT.md §3.2: kind through sealed_len, by hand. */
function recordPrefixByHand(v: FormatVectors, r: RecordInput, sealedLen: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x02]),
    Buffer.from(v.inputs.segment_id, 'hex'),
    u64(r.seq),
    Buffer.from([RecordType[r.type], r.flags]),
    u64(r.time_us),
    u32(sealedLen),
  ]);
}

export function registerVectorTests(provider: CryptoProvider): void {
  it('reproduces docs/FORMAT-vectors.json byte for byte (SEALGATE_WRITE_VECTORS=1 rewrites it)', () => {
    const generated = generateVectors(provider);
    if (process.env.SEALGATE_WRITE_VECTORS === '1') {
      writeFileSync(VECTORS_FILE, `${JSON.stringify(generated, null, 2)}\n`);
    }
    const stored = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as FormatVectors;
    assert.deepEqual(generated, stored);
  });

  const stored = (): FormatVectors => JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as FormatVectors;

  it('record key and commitment match `openssl kdf` HKDF-SHA-512 (FORMAT.md §4)', () => {
    const v = stored();
    const { dek, segment_id } = v.inputs;
    assert.equal(opensslHkdf(dek, segment_id, 'sealgate/v1 record key'), v.outputs.record_key);
    assert.equal(opensslHkdf(dek, segment_id, 'sealgate/v1 key commitment'), v.outputs.commitment);
    assert.notEqual(v.outputs.record_key, v.outputs.commitment);
  });

  it('segment header matches a hand-assembled §3.1 layout, and its hash is SHA-256 of it', () => {
    const v = stored();
    const header = headerByHand(v);
    assert.equal(header.toString('hex'), v.outputs.segment_header);
    assert.equal(createHash('sha256').update(header).digest('hex'), v.outputs.header_hash);
    assert.equal(createHash('sha256').update(v.inputs.recipient_key_id_of).digest('hex'), v.outputs.key_id);
  });

  it('records match node:crypto AES-256-GCM under the openssl-derived key, hand-built AAD and IV', () => {
    const v = stored();
    const key = Buffer.from(opensslHkdf(v.inputs.dek, v.inputs.segment_id, 'sealgate/v1 record key'), 'hex');
    const headerHash = createHash('sha256').update(headerByHand(v)).digest();
    v.inputs.records.forEach((r, n) => {
      const out = v.outputs.records[n];
      const plaintext = Buffer.from(r.plaintext, 'utf8');
      const prefix = recordPrefixByHand(v, r, plaintext.length + 16);
      const aad = Buffer.concat([headerHash, prefix]);
      const iv = Buffer.concat([u32(0), u64(r.seq)]);
      assert.equal(aad.length, 32 + RECORD_PREFIX_LEN);
      assert.equal(aad.toString('hex'), out.aad, `record ${n} aad`);
      assert.equal(iv.toString('hex'), out.iv, `record ${n} iv`);
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 }).setAAD(aad);
      const sealed = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
      assert.equal(sealed.toString('hex'), out.sealed, `record ${n} sealed`);
      assert.equal(Buffer.concat([prefix, sealed]).toString('hex'), out.entry, `record ${n} entry`);
      const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 }).setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - 16));
      const opened = Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
      assert.equal(opened.toString('utf8'), r.plaintext);
    });
  });
}
