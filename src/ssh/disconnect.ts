/**
 * SSH_MSG_DISCONNECT with a reason code and a description (RFC 4253 §11.1), which ssh2's public API
 * cannot send: its `end()` always sends BY_APPLICATION with an empty description, so a client that is
 * cut for too many authentication failures would print only "Connection closed". OpenSSH's sshd sends
 * "Too many authentication failures"; users and scripts look for that text.
 *
 * This builds the packet the way ssh2's own Protocol#disconnect does (allocStartKEX, alloc with force,
 * finalize, sendPacket bypassing the key-exchange queue) and adds the description. It reaches into
 * ssh2's internals (`_protocol`, `_packetRW`, lib/protocol/utils.js), checked at run time: if they are
 * not there (another ssh2 version), it falls back to `end()`, which still disconnects.
 */
import type { Connection } from 'ssh2';
import { createRequire } from 'node:module';

/** RFC 4253 §11.1 reason codes used here. */
export const DISCONNECT = {
  PROTOCOL_ERROR: 2,
  BY_APPLICATION: 11,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
} as const;

const MSG_DISCONNECT = 1;

interface PacketWriter {
  allocStartKEX: number;
  alloc(len: number, force?: boolean): Buffer;
  finalize(packet: Buffer, force?: boolean): Buffer;
}

interface ProtocolInternals {
  _packetRW?: { write?: PacketWriter };
}

type SendPacket = (proto: unknown, packet: Buffer, bypass: boolean) => boolean;

function ssh2SendPacket(): SendPacket | undefined {
  try {
    const require = createRequire(import.meta.url);
    const utils = require('ssh2/lib/protocol/utils.js') as { sendPacket?: SendPacket };
    return typeof utils.sendPacket === 'function' ? utils.sendPacket : undefined;
  } catch {
    return undefined;
  }
}

const sendPacket = ssh2SendPacket();

/** Sends DISCONNECT(reason, description) and ends the connection. */
export function disconnect(conn: Connection, reason: number, description: string): void {
  const internals = conn as unknown as {
    _protocol?: ProtocolInternals;
    _sock?: { writable?: boolean; end(): void };
  };
  const writer = internals._protocol?._packetRW?.write;
  const sock = internals._sock;
  if (!sendPacket || !writer || !sock || sock.writable === false) {
    conn.end();
    return;
  }
  const desc = Buffer.from(description, 'utf8');
  // byte MSG_DISCONNECT, uint32 reason, string description, string language tag (empty)
  const length = 1 + 4 + 4 + desc.length + 4;
  let p = writer.allocStartKEX;
  const packet = writer.alloc(length, true);
  packet[p] = MSG_DISCONNECT;
  packet.writeUInt32BE(reason, ++p);
  packet.writeUInt32BE(desc.length, (p += 4));
  packet.set(desc, (p += 4));
  packet.writeUInt32BE(0, p + desc.length);
  sendPacket(internals._protocol, writer.finalize(packet, true), true);
  sock.end();
}
