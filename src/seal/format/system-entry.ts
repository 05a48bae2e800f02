/**
 * The system entry, docs/FORMAT.md §3.3: plaintext, authenticated only through the tree and the
 * checkpoint signatures. Pure encode and decode; the body's fields per type are the writer's business.
 */
import { SealError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeJsonObject, encodeJsonObject, type JsonObject } from './json.js';
import { EntryKind, isSystemType, systemTypeName, type SystemType } from './types.js';

export interface SystemEntry {
  kind: typeof EntryKind.SYSTEM;
  type: SystemType;
  /** Microseconds since the Unix epoch. */
  timeUs: bigint;
  /** The UTF-8 JSON object of the type's row in FORMAT.md §3.3. */
  body: JsonObject;
}

/** FORMAT.md §3.3. Throws SealError('INVALID_ARGUMENT') for an entry the spec does not allow. */
export function encodeSystemEntry(e: SystemEntry): Uint8Array {
  if (e.kind !== EntryKind.SYSTEM) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `system entry: kind ${String(e.kind)} is not ${EntryKind.SYSTEM}`,
    );
  }
  if (!isSystemType(e.type))
    throw new SealError('INVALID_ARGUMENT', `system entry: ${systemTypeName(e.type)}`);
  const body = encodeJsonObject(e.body, 'system entry: body');
  return new ByteWriter(1 + 1 + 8 + 4 + body.length)
    .u8(EntryKind.SYSTEM, 'kind')
    .u8(e.type, 'type')
    .u64(e.timeUs, 'time_us')
    .prefixed32(body, 'body')
    .end();
}

/** FORMAT.md §3.3. Throws SealError('MALFORMED_ENTRY') naming the field. */
export function decodeSystemEntry(bytes: Uint8Array): SystemEntry {
  const r: ByteReader = new ByteReader(bytes, 'system entry');
  const fail = (m: string): never => r.fail(m);
  const kind = r.u8('kind');
  if (kind !== EntryKind.SYSTEM) fail(`kind 0x${kind.toString(16).padStart(2, '0')} is not 0x03`);
  const type = r.u8('type');
  if (!isSystemType(type)) r.fail(systemTypeName(type));
  const timeUs = r.u64('time_us');
  const body = decodeJsonObject(r.prefixed32('body'), 'body', fail);
  r.end();
  return { kind: EntryKind.SYSTEM, type, timeUs, body };
}
