/**
 * The totals the gate keeps per open handle instead of recording each READ, WRITE and READDIR
 * (docs/FORMAT.md §3.2.2), and the fields a CLOSE reply carries. Pure.
 */
import { STATUS_EOF, STATUS_OK } from './protocol.js';
import type { SftpReply } from './replies.js';

export interface HandleState {
  readonly path: Uint8Array | undefined;
  readonly dir: boolean;
  reads: number;
  readBytes: number;
  readErrors: number;
  writes: number;
  writtenBytes: number;
  writeErrors: number;
  entries: number;
}

export function newHandle(path: Uint8Array | undefined, dir: boolean): HandleState {
  return {
    path,
    dir,
    reads: 0,
    readBytes: 0,
    readErrors: 0,
    writes: 0,
    writtenBytes: 0,
    writeErrors: 0,
    entries: 0,
  };
}

/** A READ, WRITE or READDIR answered: counted against its handle. */
export function countReply(kind: 'read' | 'write' | 'readdir', handle: HandleState, reply: SftpReply): void {
  const failed = reply.kind === 'status' && reply.code !== STATUS_OK && reply.code !== STATUS_EOF;
  if (kind === 'read') {
    if (reply.kind === 'data') handle.readBytes += reply.length;
    if (failed) handle.readErrors++;
  } else if (kind === 'write') {
    if (reply.kind === 'status' && reply.code !== STATUS_OK) handle.writeErrors++;
  } else if (reply.kind === 'name') {
    handle.entries += reply.count;
  }
}

/** The totals a CLOSE reply carries. */
export function summary(h: HandleState): Record<string, number> {
  if (h.dir) return { entries: h.entries };
  return {
    reads: h.reads,
    read_bytes: h.readBytes,
    read_errors: h.readErrors,
    writes: h.writes,
    written_bytes: h.writtenBytes,
    write_errors: h.writeErrors,
  };
}
