/**
 * Crash accounting (docs/FORMAT.md §6): which segments a dead writer left open. Pure: entries in, the
 * open segments out. A segment is open when its header was written, no FINAL record followed, and no
 * earlier CRASH_RECOVERY named it already.
 */
import { decodeEntry } from './format/entry.js';
import { EntryKind, SystemType } from './format/types.js';

export interface OpenSegment {
  readonly segmentId: string; // hex
  readonly lastSeq: number; // -1 when only the header was written
}

export function findOpenSegments(entries: Iterable<Uint8Array>): OpenSegment[] {
  const open = new Map<string, number>();
  for (const bytes of entries) {
    const kind = bytes[0];
    if (kind === EntryKind.SEGMENT_HEADER) {
      const e = decodeEntry(bytes);
      if (e.kind === EntryKind.SEGMENT_HEADER) open.set(Buffer.from(e.segmentId).toString('hex'), -1);
    } else if (kind === EntryKind.SEALED_RECORD) {
      const e = decodeEntry(bytes);
      if (e.kind !== EntryKind.SEALED_RECORD) continue;
      const id = Buffer.from(e.segmentId).toString('hex');
      if (e.final) open.delete(id);
      else if (open.has(id)) open.set(id, Number(e.seq));
    } else if (kind === EntryKind.SYSTEM) {
      // A segment an earlier CRASH_RECOVERY already accounted for is closed for good: name it once only.
      const e = decodeEntry(bytes);
      if (e.kind !== EntryKind.SYSTEM || e.type !== SystemType.CRASH_RECOVERY) continue;
      const named = Array.isArray(e.body.open_segments) ? e.body.open_segments : [];
      for (const s of named) {
        if (s && typeof s === 'object' && typeof (s as { segment_id?: unknown }).segment_id === 'string') {
          open.delete((s as { segment_id: string }).segment_id);
        }
      }
    }
  }
  return [...open].map(([segmentId, lastSeq]) => ({ segmentId, lastSeq }));
}
