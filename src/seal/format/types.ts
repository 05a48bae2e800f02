/**
 * The numbers of docs/FORMAT.md §3: entry kinds, record types (§3.2.1), system entry types (§3.3) and
 * the record flags. Names are the spec's.
 */

/** FORMAT.md §3: the first byte of every entry. */
export const EntryKind = {
  SEGMENT_HEADER: 0x01,
  SEALED_RECORD: 0x02,
  SYSTEM: 0x03,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/** FORMAT.md §3.2.1. */
export const RecordType = {
  SESSION_START: 0x01,
  AUTH_RESULT: 0x02,
  CHANNEL_OPEN: 0x03,
  PTY_REQ: 0x04,
  WINDOW_CHANGE: 0x05,
  ENV: 0x06,
  EXEC: 0x07,
  SHELL: 0x08,
  SUBSYSTEM: 0x09,
  SIGNAL: 0x0a,
  EXIT_STATUS: 0x0b,
  EXIT_SIGNAL: 0x0c,
  CHANNEL_EOF: 0x0d,
  CHANNEL_CLOSE: 0x0e,
  SESSION_END: 0x0f,
  ALERT: 0x10,
  FORWARD: 0x11,
  SFTP_OP: 0x12,
  AUDIT: 0x13,
  DATA_IN: 0x20,
  DATA_OUT: 0x21,
  DATA_ERR: 0x22,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];
export type RecordTypeName = keyof typeof RecordType;

/** The record types whose plaintext is `u32 channel || bytes`; every other type's is a JSON object. */
export type DataRecordType =
  typeof RecordType.DATA_IN | typeof RecordType.DATA_OUT | typeof RecordType.DATA_ERR;

/** FORMAT.md §3.3. */
export const SystemType = {
  LOG_START: 0x01,
  HEARTBEAT: 0x02,
  LOG_STOP: 0x03,
  KEY_ROTATION: 0x04,
  SIGNER_ROTATION: 0x05,
  CRASH_RECOVERY: 0x06,
  AUDIT_EVENT: 0x07,
} as const;
export type SystemType = (typeof SystemType)[keyof typeof SystemType];
export type SystemTypeName = keyof typeof SystemType;

/** FORMAT.md §3.2: flags bit 0. The other bits must be zero. */
export const FLAG_FINAL = 0x01;

function invert<T extends Record<string, number>>(table: T): ReadonlyMap<number, keyof T & string> {
  return new Map(Object.entries(table).map(([name, n]) => [n, name as keyof T & string]));
}

const RECORD_NAMES = invert(RecordType);
const SYSTEM_NAMES = invert(SystemType);

export function isRecordType(n: number): n is RecordType {
  return RECORD_NAMES.has(n);
}

export function isDataRecordType(n: number): n is DataRecordType {
  return n === RecordType.DATA_IN || n === RecordType.DATA_OUT || n === RecordType.DATA_ERR;
}

export function isSystemType(n: number): n is SystemType {
  return SYSTEM_NAMES.has(n);
}

const hexByte = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** The spec's name of a record type ("EXEC"), or "unknown record type 0x2a". */
export function recordTypeName(n: number): string {
  return RECORD_NAMES.get(n) ?? `unknown record type ${hexByte(n)}`;
}

/** The spec's name of a system entry type ("HEARTBEAT"), or "unknown system type 0x2a". */
export function systemTypeName(n: number): string {
  return SYSTEM_NAMES.get(n) ?? `unknown system type ${hexByte(n)}`;
}
