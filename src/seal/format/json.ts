/**
 * The format's text fields: strict UTF-8 and "UTF-8 JSON object" fields (provenance, system entry
 * bodies, JSON record payloads). Strict means a decoder refuses invalid UTF-8 and a byte order mark,
 * rather than repairing them: the bytes are what the tree commits to.
 */
import { SealError, type SealErrorCode } from '../errors.js';

/** `ignoreBOM` keeps a leading U+FEFF in the output, so JSON.parse refuses it instead of it vanishing. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

export type JsonObject = Record<string, unknown>;

/** UTF-8 bytes of `text`; refuses strings with lone surrogates, which have no UTF-8 form. */
export function encodeUtf8(text: string, field: string): Uint8Array {
  const bytes = utf8Encoder.encode(text);
  if (strictUtf8.decode(bytes) !== text) {
    throw new SealError('INVALID_ARGUMENT', `${field} is not a well-formed Unicode string`);
  }
  return bytes;
}

/** Decodes strict UTF-8, or calls `fail` (which throws). */
export function decodeUtf8(bytes: Uint8Array, field: string, fail: (message: string) => never): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return fail(`${field} is not valid UTF-8`);
  }
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON.stringify of a plain object, as UTF-8. Refuses arrays, primitives and unserialisable values. */
export function encodeJsonObject(
  value: unknown,
  field: string,
  code: SealErrorCode = 'INVALID_ARGUMENT',
): Uint8Array {
  if (!isJsonObject(value)) throw new SealError(code, `${field} must be a JSON object`);
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new SealError(code, `${field} cannot be serialised as JSON: ${(err as Error).message}`);
  }
  return encodeUtf8(text, field);
}

/** Parses UTF-8 JSON that must be an object, or calls `fail` (which throws). */
export function decodeJsonObject(
  bytes: Uint8Array,
  field: string,
  fail: (message: string) => never,
): JsonObject {
  const text = decodeUtf8(bytes, field, fail);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(`${field} is not valid JSON`);
  }
  if (!isJsonObject(value)) return fail(`${field} is JSON but not an object`);
  return value;
}
