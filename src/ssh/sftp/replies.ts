/**
 * The server's packets (draft-ietf-secsh-filexfer-02 §4 and §7) decoded into typed replies: the
 * version, and per request id a STATUS, HANDLE, DATA (its length only), NAME (its count and first
 * name), ATTRS or EXTENDED_REPLY. Pure; a packet that does not decode throws
 * SftpStreamError('MALFORMED_PACKET').
 */
import { SftpStreamError } from './errors.js';
import { FieldReader } from './fields.js';
import type { SftpPacket } from './packet-reader.js';
import { MAX_HANDLE_LENGTH, PacketType } from './protocol.js';

export type SftpReply =
  | { readonly kind: 'version'; readonly version: number; readonly extensions: readonly Uint8Array[] }
  | { readonly kind: 'status'; readonly id: number; readonly code: number; readonly message: Uint8Array }
  | { readonly kind: 'handle'; readonly id: number; readonly handle: Uint8Array }
  | { readonly kind: 'data'; readonly id: number; readonly length: number }
  | { readonly kind: 'name'; readonly id: number; readonly count: number; readonly first?: Uint8Array }
  | { readonly kind: 'attrs' | 'extended-reply'; readonly id: number }
  | { readonly kind: 'unknown'; readonly type: number };

/** DATA's fields before its data: id, data length. */
const DATA_PREFIX = 4 + 4;

/** Body bytes the reader keeps for a server packet: DATA's data is counted, not kept. */
export const keepReplyBody = (type: number): number | undefined =>
  type === PacketType.DATA ? DATA_PREFIX : undefined;

export function decodeReply(packet: SftpPacket): SftpReply {
  const r = new FieldReader(packet.body, `reply type ${packet.type}`);
  switch (packet.type) {
    case PacketType.VERSION: {
      const version = r.u32('version');
      const extensions: Uint8Array[] = [];
      while (r.remaining > 0) {
        extensions.push(r.string('extension name'));
        r.string('extension data');
      }
      return { kind: 'version', version, extensions };
    }
    case PacketType.STATUS: {
      const id = r.u32('id');
      const code = r.u32('code');
      // draft-02 §7: message and language tag; some old servers send neither.
      const message = r.remaining > 0 ? r.string('message') : new Uint8Array(0);
      return { kind: 'status', id, code, message };
    }
    case PacketType.HANDLE:
      return { kind: 'handle', id: r.u32('id'), handle: r.string('handle', MAX_HANDLE_LENGTH) };
    case PacketType.DATA: {
      const id = r.u32('id');
      const length = r.u32('data length');
      const actual = packet.length - 1 - r.offset;
      if (length !== actual) {
        throw new SftpStreamError(
          'MALFORMED_PACKET',
          `DATA says ${length} bytes, the packet holds ${actual}`,
        );
      }
      return { kind: 'data', id, length };
    }
    case PacketType.NAME: {
      const id = r.u32('id');
      const count = r.u32('count');
      const first = count > 0 ? r.string('filename') : undefined;
      return first ? { kind: 'name', id, count, first } : { kind: 'name', id, count };
    }
    case PacketType.ATTRS:
      return { kind: 'attrs', id: r.u32('id') };
    case PacketType.EXTENDED_REPLY:
      return { kind: 'extended-reply', id: r.u32('id') };
    default:
      return { kind: 'unknown', type: packet.type };
  }
}
