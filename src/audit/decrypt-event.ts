/**
 * The shape of what `decrypt` releases: one JSON object per authenticated record or system entry.
 *
 *     {"kind":"record","index":7,"session":"…","segment":"…","seq":2,"type":"DATA_OUT","final":false,
 *      "time":"2025-11-25T10:00:00.123456Z","channel":0,"text":"hi\n"}
 *     {"kind":"system","index":0,"type":"LOG_START","time":"…","run_id":"…","origin":"…","version":1}
 *
 * The envelope (kind, index, session, segment, seq, type, final, time) comes from the entry; the
 * record's JSON payload (docs/FORMAT.md §3.2.1) or the system entry's body (§3.3) is merged in. A
 * payload field whose name the envelope already uses (CHANNEL_OPEN's `type`, FORWARD's `kind`) is not
 * dropped and does not overwrite: it goes into a nested `payload` object, so that the payload is
 * always recoverable as "every non-envelope field, plus `payload`". Data records (DATA_IN/OUT/ERR)
 * give `channel` and the bytes once: `text` when they are valid UTF-8 (decoded strictly, so encoding
 * the string as UTF-8 gives back exactly these bytes), otherwise `data` (base64). Never both: a
 * consumer takes `Buffer.from(text, 'utf8')` or `Buffer.from(data, 'base64')`, whichever is present
 * (docs/FORMAT.md §3.2.1, docs/AUDITOR.md).
 */
import type { DataPayload } from '../seal/format/payload.js';
import type { JsonObject } from '../seal/format/json.js';
import type { RecordTypeName, SystemTypeName } from '../seal/format/types.js';

/** An authenticated record of a segment addressed to the key. */
export interface RecordEvent {
  readonly kind: 'record';
  /** Leaf index in the log. */
  readonly index: number;
  /** Session id, hex. */
  readonly session: string;
  /** Segment id, hex. */
  readonly segment: string;
  readonly seq: number;
  readonly type: RecordTypeName;
  readonly final: boolean;
  /** ISO 8601, UTC, microseconds: `2025-11-25T10:00:00.123456Z`. */
  readonly time: string;
  readonly [field: string]: unknown;
}

/** A plaintext system entry (docs/FORMAT.md §3.3): authenticated by the tree (`verify`), not by decrypt. */
export interface SystemEvent {
  readonly kind: 'system';
  readonly index: number;
  readonly type: SystemTypeName;
  readonly time: string;
  readonly [field: string]: unknown;
}

export type DecryptedEvent = RecordEvent | SystemEvent;

/** Field names the envelope owns; payload fields with these names go into the nested `payload`. */
export const ENVELOPE_FIELDS: ReadonlySet<string> = new Set([
  'kind',
  'index',
  'session',
  'segment',
  'seq',
  'type',
  'final',
  'time',
  'payload',
]);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Microseconds since the epoch as ISO 8601 with six fractional digits. Date covers ±8.64e15 ms; a u64
 * beyond it (an authenticated but absurd timestamp) is given as `"@<µs>us"` rather than failing.
 */
export function isoMicros(timeUs: bigint): string {
  const ms = timeUs / 1000n;
  const date = ms <= 8_640_000_000_000_000n ? new Date(Number(ms)) : undefined;
  if (!date || Number.isNaN(date.getTime())) return `@${timeUs}us`;
  const iso = date.toISOString(); // …T10:00:00.123Z
  return `${iso.slice(0, -1)}${(timeUs % 1000n).toString().padStart(3, '0')}Z`;
}

/** Own-property assignment: a payload key "__proto__" must be data, not a prototype change. */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Merges `fields` into `envelope`; names the envelope owns go into `envelope.payload`. */
export function mergeFields(envelope: Record<string, unknown>, fields: JsonObject): void {
  let clashes: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(fields)) {
    if (ENVELOPE_FIELDS.has(key)) put((clashes ??= {}), key, value);
    else put(envelope, key, value);
  }
  if (clashes) put(envelope, 'payload', clashes);
}

/**
 * `{channel, text}` or `{channel, data}` of a data record: `text` when the bytes are valid UTF-8, else
 * `data` (base64). One representation, so that the JSON is about the size of the plaintext.
 */
export function dataFields(payload: DataPayload): JsonObject {
  try {
    // Strict (fatal, BOM kept) UTF-8 is a bijection on valid input: the text gives back these bytes.
    return { channel: payload.channel, text: strictUtf8.decode(payload.data) };
  } catch {
    return { channel: payload.channel, data: dataBytes(payload).toString('base64') };
  }
}

/** The exact bytes a data record's JSON fields carry (the inverse of dataFields). */
export function dataBytesOf(fields: { readonly [field: string]: unknown }): Buffer {
  if (typeof fields.text === 'string') return Buffer.from(fields.text, 'utf8');
  if (typeof fields.data === 'string') return Buffer.from(fields.data, 'base64');
  throw new TypeError('a data record carries `text` or `data`');
}

const dataBytes = (payload: DataPayload): Buffer =>
  Buffer.from(payload.data.buffer, payload.data.byteOffset, payload.data.byteLength);
