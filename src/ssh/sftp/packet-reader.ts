/**
 * SFTP framing (draft-ietf-secsh-filexfer-02 §3): `uint32 length || byte type || body`, cut out of a
 * byte stream that arrives in chunks with arbitrary boundaries.
 *
 * Memory is bounded: a packet's length may not exceed MAX_PACKET_LENGTH, and for bulk types (WRITE from
 * the client, DATA from the server) only a prefix of the body is kept (`keepBody`), the rest is counted
 * and skipped. So a 100 MB transfer costs a few hundred bytes of copying per packet, not 100 MB.
 * Pure: no I/O; a violation throws SftpStreamError and the reader must not be used again.
 */
import { SftpStreamError } from './errors.js';
import { MAX_PACKET_LENGTH } from './protocol.js';

export interface SftpPacket {
  readonly type: number;
  /** The length field: type byte plus the whole body. */
  readonly length: number;
  /** The body after the type byte, or its first `keepBody(type)` bytes. */
  readonly body: Uint8Array;
}

/** How many body bytes to keep for a packet type; undefined keeps all of it. */
export type KeepBody = (type: number) => number | undefined;

const HEADER = 5; // uint32 length, byte type

export class PacketReader {
  readonly #keepBody: KeepBody;
  readonly #header = new Uint8Array(HEADER);
  #headerFill = 0;
  #type = 0;
  #length = 0;
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #skip = 0;

  constructor(keepBody: KeepBody = () => undefined) {
    this.#keepBody = keepBody;
  }

  /** Feeds one chunk; calls `onPacket` for each packet it completes, in order. */
  push(chunk: Uint8Array, onPacket: (packet: SftpPacket) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.#body) {
        const n = Math.min(HEADER - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + n), this.#headerFill);
        this.#headerFill += n;
        at += n;
        if (this.#headerFill < HEADER) return;
        this.#startBody();
      }
      const body = this.#body as Uint8Array;
      if (this.#bodyFill < body.length) {
        const n = Math.min(body.length - this.#bodyFill, chunk.length - at);
        body.set(chunk.subarray(at, at + n), this.#bodyFill);
        this.#bodyFill += n;
        at += n;
      }
      if (this.#bodyFill === body.length && this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
      }
      if (this.#bodyFill === body.length && this.#skip === 0) this.#emit(onPacket);
    }
  }

  #startBody(): void {
    const view = new DataView(this.#header.buffer);
    const length = view.getUint32(0);
    if (length < 1 || length > MAX_PACKET_LENGTH) {
      throw new SftpStreamError(
        'PACKET_TOO_LONG',
        `a packet length of ${length} is outside 1..${MAX_PACKET_LENGTH}`,
      );
    }
    this.#length = length;
    this.#type = this.#header[4] ?? 0;
    const bodyLength = length - 1;
    const keep = Math.min(bodyLength, this.#keepBody(this.#type) ?? bodyLength);
    this.#body = new Uint8Array(keep);
    this.#bodyFill = 0;
    this.#skip = bodyLength - keep;
  }

  #emit(onPacket: (packet: SftpPacket) => void): void {
    const packet: SftpPacket = { type: this.#type, length: this.#length, body: this.#body as Uint8Array };
    this.#body = undefined;
    this.#headerFill = 0;
    onPacket(packet);
  }
}
