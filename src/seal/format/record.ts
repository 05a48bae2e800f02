/**
 * The sealed record entry, docs/FORMAT.md §3.2: pure encode and decode, and the AAD and IV that bind a
 * record to its segment header, position and metadata. No cryptography here: the sealer and the opener
 * hand these bytes to the provider.
 */
import { SealError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { ID_LEN } from './segment-header.js';
import { EntryKind, FLAG_FINAL, isRecordType, recordTypeName, type RecordType } from './types.js';

/** kind through sealed_len: 1 + 16 + 8 + 1 + 1 + 8 + 4. */
export const RECORD_PREFIX_LEN = 39;
/** The AES-256-GCM tag (FORMAT.md §2). */
export const TAG_LEN = 16;
/** H(segment header entry). */
export const HEADER_HASH_LEN = 32;
/** header_hash || record prefix (FORMAT.md §3.2). */
export const AAD_LEN = HEADER_HASH_LEN + RECORD_PREFIX_LEN;
/** u32 0 || u64 seq (SP 800-38D §8.2.1). */
export const IV_LEN = 12;
/** A segment holds at most 2^20 records, so seq < 2^20 (FORMAT.md §3.2). */
export const MAX_RECORDS = 2 ** 20;
/** sealed_len is a u32 and includes the tag. */
export const MAX_PLAINTEXT_LEN = 0xffffffff - TAG_LEN;

export interface SealedRecord {
  kind: typeof EntryKind.SEALED_RECORD;
  segmentId: Uint8Array;
  /** 0, 1, 2, … within the segment; below 2^20. */
  seq: bigint;
  type: RecordType;
  /** Bit 0 is FINAL; the other bits are zero. */
  flags: number;
  /** `(flags & FLAG_FINAL) !== 0`; the encoder checks that the two agree. */
  final: boolean;
  /** Microseconds since the Unix epoch. */
  timeUs: bigint;
  /** AES-256-GCM ciphertext || 16-byte tag. */
  sealed: Uint8Array;
}

const MAX_SEQ = BigInt(MAX_RECORDS);
const U64_MAX = (1n << 64n) - 1n;

/** Offsets in the record prefix (FORMAT.md §3.2). */
const AT_SEGMENT_ID = 1;
const AT_SEQ = 17;
const AT_TYPE = 25;
const AT_FLAGS = 26;
const AT_TIME_US = 27;
const AT_SEALED_LEN = 35;

function invalid(message: string): never {
  throw new SealError('INVALID_ARGUMENT', `record: ${message}`);
}

/**
 * The 39 bytes from kind through sealed_len, in a buffer owned by the caller (for the sealer, the tail of
 * its reused AAD buffer). Kind and segment id are written once; `set` writes the per-record fields in
 * place, without allocating: it runs for every record sealed.
 */
export class RecordPrefix {
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  constructor(target: Uint8Array, segmentId: Uint8Array) {
    if (target.length !== RECORD_PREFIX_LEN) invalid(`prefix buffer has ${target.length} bytes, want 39`);
    if (segmentId.length !== ID_LEN) invalid(`segment_id has ${segmentId.length} bytes, want ${ID_LEN}`);
    this.bytes = target;
    this.#view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    target[0] = EntryKind.SEALED_RECORD;
    target.set(segmentId, AT_SEGMENT_ID);
  }

  /** Throws SealError('INVALID_ARGUMENT') for values the spec does not allow. */
  set(seq: bigint, type: RecordType, flags: number, timeUs: bigint, sealedLen: number): void {
    if (!(seq >= 0n && seq < MAX_SEQ)) invalid(`seq ${seq} is outside 0..2^20-1`);
    if (!isRecordType(type)) invalid(recordTypeName(type));
    if (!Number.isInteger(flags) || (flags & ~FLAG_FINAL) !== 0 || flags < 0) {
      invalid(`flags ${flags} set reserved bits`);
    }
    if (typeof timeUs !== 'bigint' || timeUs < 0n || timeUs > U64_MAX)
      invalid(`time_us ${timeUs} is not a u64`);
    if (!Number.isInteger(sealedLen) || sealedLen < TAG_LEN || sealedLen > 0xffffffff) {
      invalid(`sealed_len ${sealedLen} is outside ${TAG_LEN}..2^32-1`);
    }
    const v = this.#view;
    v.setBigUint64(AT_SEQ, seq);
    v.setUint8(AT_TYPE, type);
    v.setUint8(AT_FLAGS, flags);
    v.setBigUint64(AT_TIME_US, timeUs);
    v.setUint32(AT_SEALED_LEN, sealedLen);
  }
}

/** FORMAT.md §3.2. Throws SealError('INVALID_ARGUMENT') for a record the spec does not allow. */
export function encodeSealedRecord(r: SealedRecord): Uint8Array {
  if (r.kind !== EntryKind.SEALED_RECORD) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `record: kind ${String(r.kind)} is not ${EntryKind.SEALED_RECORD}`,
    );
  }
  if (r.final !== ((r.flags & FLAG_FINAL) !== 0)) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `record: final ${r.final} disagrees with flags 0x${r.flags.toString(16)}`,
    );
  }
  const out = new Uint8Array(RECORD_PREFIX_LEN + r.sealed.length);
  new RecordPrefix(out.subarray(0, RECORD_PREFIX_LEN), r.segmentId).set(
    r.seq,
    r.type,
    r.flags,
    r.timeUs,
    r.sealed.length,
  );
  out.set(r.sealed, RECORD_PREFIX_LEN);
  return out;
}

/**
 * FORMAT.md §3.2. Throws SealError('MALFORMED_ENTRY') naming the field. `segmentId` and `sealed` are views
 * into `bytes` (no copy: this is on the decrypt and verify path).
 */
export function decodeSealedRecord(bytes: Uint8Array): SealedRecord {
  const r: ByteReader = new ByteReader(bytes, 'sealed record');
  const kind = r.u8('kind');
  if (kind !== EntryKind.SEALED_RECORD) r.fail(`kind 0x${kind.toString(16).padStart(2, '0')} is not 0x02`);
  const segmentId = r.fixed(ID_LEN, 'segment_id');
  const seq = r.u64('seq');
  if (seq >= MAX_SEQ) r.fail(`seq ${seq} is beyond the 2^20 records a segment holds`);
  const type = r.u8('type');
  if (!isRecordType(type)) r.fail(recordTypeName(type));
  const flags = r.u8('flags');
  if ((flags & ~FLAG_FINAL) !== 0) r.fail(`flags 0x${flags.toString(16).padStart(2, '0')} set reserved bits`);
  const timeUs = r.u64('time_us');
  const sealedLen = r.u32('sealed_len');
  if (sealedLen < TAG_LEN) r.fail(`sealed_len ${sealedLen} is below the ${TAG_LEN}-byte tag`);
  const sealed = r.fixed(sealedLen, 'sealed');
  r.end();
  return {
    kind: EntryKind.SEALED_RECORD,
    segmentId,
    seq,
    type,
    flags,
    final: (flags & FLAG_FINAL) !== 0,
    timeUs,
    sealed,
  };
}

/** FORMAT.md §3.2: AAD = header_hash || the record's bytes from kind through sealed_len (32 + 39 bytes). */
export function recordAad(headerHash: Uint8Array, recordBytes: Uint8Array): Uint8Array {
  if (headerHash.length !== HEADER_HASH_LEN) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `header hash has ${headerHash.length} bytes, want ${HEADER_HASH_LEN}`,
    );
  }
  if (recordBytes.length < RECORD_PREFIX_LEN) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `record has ${recordBytes.length} bytes, fewer than ${RECORD_PREFIX_LEN}`,
    );
  }
  const aad = new Uint8Array(AAD_LEN);
  aad.set(headerHash);
  aad.set(recordBytes.subarray(0, RECORD_PREFIX_LEN), HEADER_HASH_LEN);
  return aad;
}

/**
 * FORMAT.md §3.2, SP 800-38D §8.2.1 deterministic construction: a zero fixed field (the key is unique to
 * the segment) and the sequence number as the invocation field.
 */
export function recordIv(seq: bigint): Uint8Array {
  const iv = new Uint8Array(IV_LEN);
  new ByteWriter(iv).u32(0, 'fixed field').u64(seq, 'seq').end();
  return iv;
}
