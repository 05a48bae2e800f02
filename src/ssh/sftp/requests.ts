/**
 * The client's packets (draft-ietf-secsh-filexfer-02 §4 and §6, plus OpenSSH's extensions in its
 * PROTOCOL file) decoded into typed requests. Paths stay bytes here; the observer writes them.
 * Pure; a packet that does not decode throws SftpStreamError('MALFORMED_PACKET').
 */
import { SftpStreamError } from './errors.js';
import { FieldReader, type Attrs } from './fields.js';
import type { SftpPacket } from './packet-reader.js';
import { MAX_HANDLE_LENGTH, PacketType } from './protocol.js';

/** A request recorded on its own (everything but READ, WRITE and READDIR). */
export interface OpRequest {
  readonly kind: 'op';
  /** Absent only for an unknown packet type too short to hold one. */
  readonly id?: number;
  /** The protocol's name; an extended request's own name, as sent. */
  readonly op: string | Uint8Array;
  readonly path?: Uint8Array;
  readonly newPath?: Uint8Array;
  readonly target?: Uint8Array;
  readonly user?: Uint8Array;
  readonly handle?: Uint8Array;
  /** copy-data's destination handle. */
  readonly newHandle?: Uint8Array;
  /** OPEN's pflags. */
  readonly flags?: number;
  readonly attrs?: Attrs;
}

export type SftpRequest =
  | { readonly kind: 'init'; readonly version: number }
  | { readonly kind: 'read'; readonly id: number; readonly handle: Uint8Array }
  | { readonly kind: 'write'; readonly id: number; readonly handle: Uint8Array; readonly length: number }
  | { readonly kind: 'readdir'; readonly id: number; readonly handle: Uint8Array }
  | OpRequest;

/** WRITE's fields before its data: id, handle (≤ 256 bytes), offset, data length. */
const WRITE_PREFIX = 4 + 4 + MAX_HANDLE_LENGTH + 8 + 4;

/** Body bytes the reader keeps for a client packet: WRITE's data is counted, not kept. */
export const keepRequestBody = (type: number): number | undefined =>
  type === PacketType.WRITE ? WRITE_PREFIX : undefined;

/** Requests whose only argument is a path. */
const PATH_OPS: ReadonlyMap<number, string> = new Map([
  [PacketType.LSTAT, 'lstat'],
  [PacketType.OPENDIR, 'opendir'],
  [PacketType.REMOVE, 'remove'],
  [PacketType.RMDIR, 'rmdir'],
  [PacketType.REALPATH, 'realpath'],
  [PacketType.STAT, 'stat'],
  [PacketType.READLINK, 'readlink'],
]);

export function decodeRequest(packet: SftpPacket): SftpRequest {
  const r = new FieldReader(packet.body, `request type ${packet.type}`);
  const handle = () => r.string('handle', MAX_HANDLE_LENGTH);
  const path = () => r.string('path');
  const { type } = packet;
  if (type === PacketType.INIT) return { kind: 'init', version: r.u32('version') };
  if (r.remaining < 4) return { kind: 'op', op: `unknown-${type}` };
  const id = r.u32('id');
  const pathOp = PATH_OPS.get(type);
  if (pathOp) return { kind: 'op', id, op: pathOp, path: path() };
  switch (type) {
    case PacketType.OPEN:
      return { kind: 'op', id, op: 'open', path: path(), flags: r.u32('pflags'), attrs: r.attrs('attrs') };
    case PacketType.CLOSE:
      return { kind: 'op', id, op: 'close', handle: handle() };
    case PacketType.READ:
      return { kind: 'read', id, handle: handle() };
    case PacketType.WRITE:
      return decodeWrite(r, id, packet.length);
    case PacketType.READDIR:
      return { kind: 'readdir', id, handle: handle() };
    case PacketType.FSTAT:
      return { kind: 'op', id, op: 'fstat', handle: handle() };
    case PacketType.SETSTAT:
      return { kind: 'op', id, op: 'setstat', path: path(), attrs: r.attrs('attrs') };
    case PacketType.FSETSTAT:
      return { kind: 'op', id, op: 'fsetstat', handle: handle(), attrs: r.attrs('attrs') };
    case PacketType.MKDIR:
      return { kind: 'op', id, op: 'mkdir', path: path(), attrs: r.attrs('attrs') };
    case PacketType.RENAME:
      return { kind: 'op', id, op: 'rename', path: path(), newPath: r.string('new path') };
    case PacketType.SYMLINK: {
      // OpenSSH's order (PROTOCOL, "Reversal of arguments to SSH_FXP_SYMLINK"): target, then link path.
      const target = r.string('target path');
      return { kind: 'op', id, op: 'symlink', path: r.string('link path'), target };
    }
    case PacketType.EXTENDED:
      return decodeExtended(r, id);
    default:
      return { kind: 'op', id, op: `unknown-${type}` };
  }
}

function decodeWrite(r: FieldReader, id: number, packetLength: number): SftpRequest {
  const handle = r.string('handle', MAX_HANDLE_LENGTH);
  r.u64('offset');
  const length = r.u32('data length');
  const actual = packetLength - 1 - r.offset;
  if (length !== actual) {
    return malformed(`WRITE says ${length} data bytes, the packet holds ${actual}`);
  }
  return { kind: 'write', id, handle, length };
}

function malformed(message: string): never {
  throw new SftpStreamError('MALFORMED_PACKET', message);
}

/** OpenSSH's extensions (its PROTOCOL file) with the arguments the log shows; others by name only. */
function decodeExtended(r: FieldReader, id: number): OpRequest {
  const op = r.string('extended request name');
  const name = Buffer.from(op).toString('latin1');
  const handle = () => r.string('handle', MAX_HANDLE_LENGTH);
  switch (name) {
    case 'posix-rename@openssh.com':
    case 'hardlink@openssh.com':
      return { kind: 'op', id, op: name, path: r.string('old path'), newPath: r.string('new path') };
    case 'statvfs@openssh.com':
    case 'expand-path@openssh.com':
      return { kind: 'op', id, op: name, path: r.string('path') };
    case 'fstatvfs@openssh.com':
    case 'fsync@openssh.com':
      return { kind: 'op', id, op: name, handle: handle() };
    case 'lsetstat@openssh.com':
      return { kind: 'op', id, op: name, path: r.string('path'), attrs: r.attrs('attrs') };
    case 'home-directory':
      return { kind: 'op', id, op: name, user: r.string('user name') };
    case 'copy-data': {
      const from = handle();
      r.u64('read offset');
      r.u64('length');
      return { kind: 'op', id, op: name, handle: from, newHandle: handle() };
    }
    default:
      return { kind: 'op', id, op };
  }
}
