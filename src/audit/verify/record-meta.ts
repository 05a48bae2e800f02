/**
 * A sealed record's plaintext metadata (docs/FORMAT.md §3.2), read in place: the verifier needs only
 * segment id, seq, type, FINAL and time_us of each record, and this is on its per-record path, so it
 * reads them straight from the bytes with no reader object, no views and no bigints.
 *
 * It accepts exactly what `decodeSealedRecord` accepts (kind 0x02, seq < 2^20, a known type, no
 * reserved flag bits, sealed_len ≥ 16 and matching the length) and returns undefined for anything
 * else; the caller then decodes with the format's own decoder for the precise reason.
 */
import { RECORD_PREFIX_LEN, TAG_LEN } from '../../seal/format/record.js';
import { EntryKind, FLAG_FINAL, isRecordType } from '../../seal/format/types.js';

export interface RecordMeta {
  /** segment_id, hex. */
  readonly segment: string;
  readonly seq: number;
  readonly type: number;
  readonly final: boolean;
  /** time_us as a number (exact below 2^53 µs, the year 2255). */
  readonly timeUs: number;
}

const u32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The last segment id read, and its hex: consecutive records mostly share a segment. */
const lastId = new Uint8Array(16);
let lastHex = '';

function segmentHex(b: Uint8Array): string {
  let same = lastHex !== '';
  for (let i = 0; same && i < 16; i++) same = lastId[i] === b[1 + i];
  if (!same) {
    for (let i = 0; i < 16; i++) lastId[i] = b[1 + i]!;
    lastHex = Buffer.from(b.buffer, b.byteOffset + 1, 16).toString('hex');
  }
  return lastHex;
}

export function readRecordMeta(b: Uint8Array): RecordMeta | undefined {
  if (b.length < RECORD_PREFIX_LEN || b[0] !== EntryKind.SEALED_RECORD) return undefined;
  if (u32(b, 17) !== 0 || u32(b, 21) >= 2 ** 20) return undefined; // seq
  const type = b[25]!;
  const flags = b[26]!;
  if (!isRecordType(type) || (flags & ~FLAG_FINAL) !== 0) return undefined;
  const sealedLen = u32(b, 35);
  if (sealedLen < TAG_LEN || b.length !== RECORD_PREFIX_LEN + sealedLen) return undefined;
  return {
    segment: segmentHex(b),
    seq: u32(b, 21),
    type,
    final: (flags & FLAG_FINAL) !== 0,
    timeUs: u32(b, 27) * 2 ** 32 + u32(b, 31),
  };
}
