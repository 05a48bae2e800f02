/**
 * The bundle's pieces on their own: entries.bin framing (in memory and through the file window, which
 * must agree, also for an entry larger than the window), the entries digest, and the verifier's
 * in-place record reader, which must accept exactly what the format's decoder accepts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import {
  encodeEntryFrames,
  EntriesDigest,
  FramingError,
  readEntryFrames,
  readEntryFramesFromFile,
} from '../../src/audit/bundle.js';
import { readRecordMeta } from '../../src/audit/verify/record-meta.js';
import { decodeSealedRecord, encodeSealedRecord } from '../../src/seal/format/record.js';
import { EntryKind, RecordType } from '../../src/seal/format/types.js';
import { hashLeaf } from '../../src/seal/merkle.js';
import { tempDir } from './helpers.js';

const p = new OpenSslProvider();
const sha = (d: Uint8Array): Uint8Array => p.digest('sha256', d);

/** Copies each entry as it comes: a view from the file window is valid only until the next is pulled. */
function collect(frames: Iterable<{ index: number; bytes: Uint8Array }>): { index: number; hex: string }[] {
  const out: { index: number; hex: string }[] = [];
  for (const e of frames) out.push({ index: e.index, hex: Buffer.from(e.bytes).toString('hex') });
  return out;
}

describe('entries.bin frames', () => {
  const entries = [1, 100, 3 * 1024 * 1024, 7, 200_000, 1].map((len, i) => ({
    index: i * 3,
    bytes: p.randomBytes(len),
  }));
  const bytes = encodeEntryFrames(entries);

  it('read the same in memory and through the file window (an entry larger than the window too)', () => {
    const file = join(tempDir(), 'entries.bin');
    writeFileSync(file, bytes);
    const want = entries.map((e) => ({ index: e.index, hex: Buffer.from(e.bytes).toString('hex') }));
    assert.deepEqual(collect(readEntryFrames(bytes)), want);
    assert.deepEqual(collect(readEntryFramesFromFile(file)), want);
  });

  it('a cut anywhere is a FramingError naming the offset, in memory and from a file', () => {
    const file = join(tempDir(), 'entries.bin');
    for (const cut of [5, 12, 20, bytes.length - 1]) {
      writeFileSync(file, bytes.subarray(0, cut));
      for (const frames of [readEntryFrames(bytes.subarray(0, cut)), readEntryFramesFromFile(file)]) {
        assert.throws(
          () => collect(frames),
          (err: unknown) => err instanceof FramingError && /^entries\.bin offset \d+$/.test(err.location),
        );
      }
    }
    const empty = new Uint8Array(12); // a frame with a zero length
    assert.throws(() => collect(readEntryFrames(empty)), /is empty/);
  });

  it('the entries digest is H(u64 index || leaf hash …)', () => {
    const d = new EntriesDigest(1);
    const parts: Uint8Array[] = [];
    for (const e of entries) {
      const lh = hashLeaf(sha, e.bytes);
      d.add(e.index, lh);
      const idx = new Uint8Array(8);
      new DataView(idx.buffer).setBigUint64(0, BigInt(e.index));
      parts.push(idx, lh);
    }
    assert.equal(d.hex(sha), Buffer.from(sha(Buffer.concat(parts))).toString('hex'));
  });
});

describe('readRecordMeta', () => {
  const record = encodeSealedRecord({
    kind: EntryKind.SEALED_RECORD,
    segmentId: Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i),
    seq: 41n,
    type: RecordType.SESSION_END,
    flags: 1,
    final: true,
    timeUs: 1_764_000_000_000_123n,
    sealed: p.randomBytes(40),
  });

  it('reads the fields decodeSealedRecord reads', () => {
    const meta = readRecordMeta(record);
    assert.deepEqual(meta, {
      segment: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
      seq: 41,
      type: RecordType.SESSION_END,
      final: true,
      timeUs: 1_764_000_000_000_123,
    });
  });

  it('accepts exactly what decodeSealedRecord accepts (every byte of the prefix, every value)', () => {
    const decodes = (b: Uint8Array): boolean => {
      try {
        decodeSealedRecord(b);
        return true;
      } catch {
        return false;
      }
    };
    let checked = 0;
    for (let at = 0; at < 39; at++) {
      for (let v = 0; v < 256; v++) {
        const b = Uint8Array.from(record);
        b[at] = v;
        const meta = readRecordMeta(b);
        assert.equal(meta !== undefined, decodes(b), `byte ${at} = ${v}`);
        if (meta) {
          const r = decodeSealedRecord(b);
          assert.equal(meta.seq, Number(r.seq));
          assert.equal(meta.type, r.type);
          assert.equal(meta.final, r.final);
          assert.equal(meta.timeUs, Number(r.timeUs));
          assert.equal(meta.segment, Buffer.from(r.segmentId).toString('hex'));
        }
        checked++;
      }
    }
    for (const len of [0, 1, 38, 39, 54, record.length - 1, record.length + 1]) {
      const b = new Uint8Array(len);
      b.set(record.subarray(0, Math.min(len, record.length)));
      assert.equal(readRecordMeta(b) !== undefined, decodes(b), `length ${len}`);
    }
    assert.equal(checked, 39 * 256);
  });
});
