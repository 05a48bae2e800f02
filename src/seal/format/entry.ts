/**
 * Entries, docs/FORMAT.md §3: the leaves of the log. One byte of kind, then the kind's layout.
 */
import { SealError } from '../errors.js';
import { decodeSealedRecord, encodeSealedRecord, type SealedRecord } from './record.js';
import { decodeSegmentHeader, encodeSegmentHeader, type SegmentHeader } from './segment-header.js';
import { decodeSystemEntry, encodeSystemEntry, type SystemEntry } from './system-entry.js';
import { EntryKind } from './types.js';

export type Entry = SegmentHeader | SealedRecord | SystemEntry;

/** Decodes any entry by its kind. Throws SealError('MALFORMED_ENTRY'), also for an unknown kind. */
export function decodeEntry(bytes: Uint8Array): Entry {
  if (bytes.length === 0) throw new SealError('MALFORMED_ENTRY', 'entry: empty (no kind byte)');
  switch (bytes[0]) {
    case EntryKind.SEGMENT_HEADER:
      return decodeSegmentHeader(bytes);
    case EntryKind.SEALED_RECORD:
      return decodeSealedRecord(bytes);
    case EntryKind.SYSTEM:
      return decodeSystemEntry(bytes);
    default:
      throw new SealError(
        'MALFORMED_ENTRY',
        `entry: unknown kind 0x${bytes[0].toString(16).padStart(2, '0')}`,
      );
  }
}

export function encodeEntry(e: Entry): Uint8Array {
  switch (e.kind) {
    case EntryKind.SEGMENT_HEADER:
      return encodeSegmentHeader(e);
    case EntryKind.SEALED_RECORD:
      return encodeSealedRecord(e);
    case EntryKind.SYSTEM:
      return encodeSystemEntry(e);
    default:
      throw new SealError('INVALID_ARGUMENT', `entry: unknown kind ${String((e as { kind: unknown }).kind)}`);
  }
}
