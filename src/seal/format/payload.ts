/**
 * Record plaintexts, docs/FORMAT.md §3.2.1: `u32 channel || bytes` for the data types (DATA_IN, DATA_OUT,
 * DATA_ERR), a UTF-8 JSON object for every other type. Decoders ignore unknown JSON fields; the fields of
 * each type are the recorder's and the auditor tools' business, not this layer's.
 */
import { SealError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { decodeJsonObject, encodeJsonObject, type JsonObject } from './json.js';
import {
  isDataRecordType,
  isRecordType,
  recordTypeName,
  type DataRecordType,
  type RecordType,
} from './types.js';

/** The plaintext of a data record: an SSH channel number and the bytes that crossed it. */
export interface DataPayload {
  channel: number;
  data: Uint8Array;
}

/** The payload of a record type: DataPayload for the data types, a JSON object for the rest. */
export type Payload<T extends RecordType = RecordType> = T extends DataRecordType ? DataPayload : JsonObject;

function checkType(type: number, code: 'INVALID_ARGUMENT' | 'MALFORMED_PAYLOAD'): void {
  if (!isRecordType(type)) throw new SealError(code, `payload: ${recordTypeName(type)}`);
}

/**
 * The payload as parts whose concatenation is its encoding, without copying a data payload's bytes:
 * `[u32 channel, data]` for the data types (`data` is the caller's buffer, not a copy), `[json]` for the
 * rest. Throws SealError('INVALID_ARGUMENT') when `value` does not fit `type`.
 */
export function encodePayloadParts<T extends RecordType>(type: T, value: Payload<T>): Uint8Array[] {
  checkType(type, 'INVALID_ARGUMENT');
  const what = `${recordTypeName(type)} payload`;
  if (!isDataRecordType(type)) return [encodeJsonObject(value, what)];
  const { channel, data } = value as DataPayload;
  if (!(data instanceof Uint8Array)) throw new SealError('INVALID_ARGUMENT', `${what}: data must be bytes`);
  return [new ByteWriter(4).u32(channel, `${what} channel`).end(), data];
}

/** `encodePayloadParts` joined into one buffer; throws what it throws. */
export function encodePayload<T extends RecordType>(type: T, value: Payload<T>): Uint8Array {
  const parts = encodePayloadParts(type, value);
  if (parts.length === 1) return parts[0]!;
  const joined = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

/**
 * Throws SealError('MALFORMED_PAYLOAD') when authenticated plaintext does not fit its type. A data
 * payload's `data` is a view into `bytes`.
 */
export function decodePayload<T extends RecordType>(type: T, bytes: Uint8Array): Payload<T> {
  checkType(type, 'MALFORMED_PAYLOAD');
  const what = `${recordTypeName(type)} payload`;
  const fail = (m: string): never => {
    throw new SealError('MALFORMED_PAYLOAD', `${what}: ${m}`);
  };
  if (!isDataRecordType(type)) return decodeJsonObject(bytes, 'JSON', fail) as Payload<T>;
  if (bytes.length < 4) fail(`${bytes.length} bytes, too short for the u32 channel`);
  const r: ByteReader = new ByteReader(bytes, what);
  const channel = r.u32('channel');
  const data = r.fixed(r.remaining, 'data');
  return { channel, data } as Payload<T>;
}
