/**
 * The segment header entry, docs/FORMAT.md §3.1: pure encode and decode, with every check the spec
 * implies. The encoder takes the DEK already wrapped and the commitment already computed (the sealer
 * does the cryptography), which is also how the §9 test vectors fix the randomised RSA-OAEP output.
 */
import { SealError, type SealErrorCode } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeJsonObject, decodeUtf8, encodeJsonObject, encodeUtf8, type JsonObject } from './json.js';
import { EntryKind } from './types.js';

/** The one suite (FORMAT.md §2). */
export const SUITE_1 = 1;
/** segment_id, prev_segment_id and session_id. */
export const ID_LEN = 16;
/** H(SubjectPublicKeyInfo DER). */
export const KEY_ID_LEN = 32;
export const COMMITMENT_LEN = 32;
export const MAX_ORIGIN_LEN = 255;
export const MAX_RECIPIENTS = 16;

/**
 * Characters an origin may not contain: it is also the checkpoint's first line and the signed note's key
 * name (FORMAT.md §5), and C2SP signed-note forbids Unicode spaces, `+` and ASCII control characters
 * there. `\s` is JavaScript's Unicode white space; U+0085 is white space to Go, which C2SP tools use.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const ORIGIN_FORBIDDEN = /[\s\u0085+\u0000-\u001f\u007f]/u;

/** FORMAT.md §3.1.1. `fips` and `backend` are required; other keys describe the backend. */
export interface Provenance extends JsonObject {
  fips: boolean;
  backend: string;
}

/** One recipient: who can unwrap the DEK, and the DEK wrapped to them. */
export interface Recipient {
  /** H(SubjectPublicKeyInfo DER) of the recipient's RSA public key. */
  keyId: Uint8Array;
  /** RSA-OAEP-SHA-256(recipient, DEK). */
  wrappedDek: Uint8Array;
}

export interface SegmentHeader {
  kind: typeof EntryKind.SEGMENT_HEADER;
  suite: typeof SUITE_1;
  /** The log's origin (FORMAT.md §1), 1..255 bytes of UTF-8. */
  origin: string;
  segmentId: Uint8Array;
  /** The previous segment of the same session, or 16 zero bytes. */
  prevSegmentId: Uint8Array;
  sessionId: Uint8Array;
  /** Microseconds since the Unix epoch. */
  createdUs: bigint;
  /** FORMAT.md §3.1.1: a JSON object with at least boolean `fips` and string `backend` (see Provenance). */
  provenance: JsonObject;
  /** 1..16 recipients with distinct key ids. */
  recipients: Recipient[];
  /** FORMAT.md §4. */
  commitment: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Checks an origin already known to be well-formed text; `fail` throws. */
function checkOrigin(origin: string, byteLength: number, fail: (m: string) => never): void {
  if (byteLength < 1 || byteLength > MAX_ORIGIN_LEN) {
    fail(`origin_len ${byteLength} is outside 1..${MAX_ORIGIN_LEN}`);
  }
  const bad = ORIGIN_FORBIDDEN.exec(origin);
  if (bad) {
    const cp = bad[0].codePointAt(0) ?? 0;
    fail(
      `origin contains U+${cp.toString(16).toUpperCase().padStart(4, '0')} (white space, "+" or a control character)`,
    );
  }
}

function checkProvenance(p: JsonObject, fail: (m: string) => never): asserts p is Provenance {
  if (typeof p.fips !== 'boolean') fail('provenance "fips" must be a boolean');
  if (typeof p.backend !== 'string') fail('provenance "backend" must be a string');
}

function checkRecipientCount(n: number, fail: (m: string) => never): void {
  if (n < 1 || n > MAX_RECIPIENTS) fail(`recipient_count ${n} is outside 1..${MAX_RECIPIENTS}`);
}

/** Key ids must be distinct, so that a key finds exactly one entry (FORMAT.md §3.1). */
function checkDistinctKeyIds(recipients: readonly Recipient[], fail: (m: string) => never): void {
  const seen = new Map<string, number>();
  recipients.forEach((r, i) => {
    const id = hex(r.keyId);
    const first = seen.get(id);
    if (first !== undefined) fail(`recipients[${i}] repeats the key id of recipients[${first}] (${id})`);
    seen.set(id, i);
  });
}

/** FORMAT.md §3.1. Throws SealError('INVALID_ARGUMENT') for a header the spec does not allow. */
export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  const code: SealErrorCode = 'INVALID_ARGUMENT';
  const fail = (m: string): never => {
    throw new SealError(code, `segment header: ${m}`);
  };
  if (h.kind !== EntryKind.SEGMENT_HEADER) fail(`kind ${String(h.kind)} is not ${EntryKind.SEGMENT_HEADER}`);
  if (h.suite !== SUITE_1) fail(`suite ${String(h.suite)} is not ${SUITE_1}`);
  const origin = encodeUtf8(h.origin, 'segment header: origin');
  checkOrigin(h.origin, origin.length, fail);
  checkProvenance(h.provenance, fail);
  const provenance = encodeJsonObject(h.provenance, 'segment header: provenance');
  if (provenance.length > 0xffff) fail(`provenance is ${provenance.length} bytes; at most 65535 fit`);
  checkRecipientCount(h.recipients.length, fail);
  checkDistinctKeyIds(h.recipients, fail);

  const size =
    2 +
    2 +
    origin.length +
    3 * ID_LEN +
    8 +
    2 +
    provenance.length +
    1 +
    h.recipients.reduce((n, r) => n + KEY_ID_LEN + 2 + r.wrappedDek.length, 0) +
    COMMITMENT_LEN;
  const w = new ByteWriter(size)
    .u8(EntryKind.SEGMENT_HEADER, 'kind')
    .u8(SUITE_1, 'suite')
    .prefixed16(origin, 'origin')
    .fixed(h.segmentId, ID_LEN, 'segment_id')
    .fixed(h.prevSegmentId, ID_LEN, 'prev_segment_id')
    .fixed(h.sessionId, ID_LEN, 'session_id')
    .u64(h.createdUs, 'created_us')
    .prefixed16(provenance, 'provenance')
    .u8(h.recipients.length, 'recipient_count');
  h.recipients.forEach((r, i) => {
    w.fixed(r.keyId, KEY_ID_LEN, `recipients[${i}].key_id`).prefixed16(
      r.wrappedDek,
      `recipients[${i}].wrapped_dek`,
    );
  });
  return w.fixed(h.commitment, COMMITMENT_LEN, 'commitment').end();
}

/**
 * FORMAT.md §3.1. Throws SealError('MALFORMED_ENTRY') naming the field. Byte fields are copies: a header
 * outlives the buffer it was read from.
 */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader {
  const r: ByteReader = new ByteReader(bytes, 'segment header');
  const fail = (m: string): never => r.fail(m);
  const kind = r.u8('kind');
  if (kind !== EntryKind.SEGMENT_HEADER) fail(`kind 0x${kind.toString(16).padStart(2, '0')} is not 0x01`);
  const suite = r.u8('suite');
  if (suite !== SUITE_1) fail(`suite ${suite} is not ${SUITE_1}`);
  const originBytes = r.prefixed16('origin');
  const origin = decodeUtf8(originBytes, 'origin', fail);
  checkOrigin(origin, originBytes.length, fail);
  const segmentId = r.fixed(ID_LEN, 'segment_id').slice();
  const prevSegmentId = r.fixed(ID_LEN, 'prev_segment_id').slice();
  const sessionId = r.fixed(ID_LEN, 'session_id').slice();
  const createdUs = r.u64('created_us');
  const provenance = decodeJsonObject(r.prefixed16('provenance'), 'provenance', fail);
  checkProvenance(provenance, fail);
  const count = r.u8('recipient_count');
  checkRecipientCount(count, fail);
  const recipients: Recipient[] = [];
  for (let i = 0; i < count; i++) {
    const keyId = r.fixed(KEY_ID_LEN, `recipients[${i}].key_id`).slice();
    const wrappedDek = r.prefixed16(`recipients[${i}].wrapped_dek`).slice();
    recipients.push({ keyId, wrappedDek });
  }
  checkDistinctKeyIds(recipients, fail);
  const commitment = r.fixed(COMMITMENT_LEN, 'commitment').slice();
  r.end();
  return {
    kind: EntryKind.SEGMENT_HEADER,
    suite: SUITE_1,
    origin,
    segmentId,
    prevSegmentId,
    sessionId,
    createdUs,
    provenance,
    recipients,
    commitment,
  };
}
