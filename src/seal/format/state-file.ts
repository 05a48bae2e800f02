/**
 * The two-slot state file (docs/FORMAT.md §6.2): how signed.state and tree.state are kept, so that a
 * checkpoint replaces them with a positioned write and an fdatasync on a file descriptor opened at
 * start, never a new file (a temp file and a rename need free descriptors, which a connection flood
 * can take).
 *
 * The file is exactly STATE_FILE_SIZE bytes: two slots of SLOT_SIZE bytes, A at 0 and B at SLOT_SIZE.
 *
 *     8    magic       = "sgstate1"
 *     u64  generation  ; one more than the other slot's at the time it was written
 *     u32  length      ; payload bytes, 0 = no state yet; at most SLOT_SIZE - 24
 *          payload     ; then zero bytes up to the checksum
 *     u32  crc32       ; CRC-32 (ISO-HDLC, as zlib) of the SLOT_SIZE - 4 bytes before it
 *
 * A new state is written over the slot that does not hold the current one, with the next generation;
 * the valid slot (magic, length and checksum right) with the higher generation is the state. A torn
 * write can only damage the slot being written, whose checksum then fails: the other one, the last
 * good state, wins. The checksum guards against torn and partial writes, not against an attacker (who
 * could rewrite the whole file): the signed checkpoints are what make the log tamper-evident.
 *
 * Pure: bytes in, bytes out. The I/O is in ../state-file.ts.
 */
import { crc32 } from 'node:zlib';
import { SealError, type SealErrorCode } from '../errors.js';

export const SLOT_SIZE = 4096;
export const STATE_FILE_SIZE = 2 * SLOT_SIZE;
const MAGIC = Buffer.from('sgstate1', 'latin1');
const HEADER = MAGIC.length + 8 + 4;
const CRC_AT = SLOT_SIZE - 4;
export const MAX_STATE_PAYLOAD = CRC_AT - HEADER;
const U64_MAX = (1n << 64n) - 1n;

/** One valid slot: its generation and payload (undefined when it says "no state yet"). */
export interface StateSlot {
  readonly generation: bigint;
  readonly payload: Uint8Array | undefined;
}

/** The state a file holds, and which slot (0 = A, 1 = B) holds it. */
export interface CurrentState extends StateSlot {
  readonly slot: 0 | 1;
}

export function encodeSlot(generation: bigint, payload: Uint8Array | undefined): Uint8Array {
  if (generation < 0n || generation > U64_MAX) {
    throw new SealError('INVALID_ARGUMENT', `state generation ${generation} is not a u64`);
  }
  const length = payload?.length ?? 0;
  if (length > MAX_STATE_PAYLOAD) {
    throw new SealError('INVALID_ARGUMENT', `a state of ${length} bytes exceeds ${MAX_STATE_PAYLOAD}`);
  }
  const slot = Buffer.alloc(SLOT_SIZE);
  MAGIC.copy(slot, 0);
  slot.writeBigUInt64BE(generation, MAGIC.length);
  slot.writeUInt32BE(length, MAGIC.length + 8);
  if (payload) slot.set(payload, HEADER);
  slot.writeUInt32BE(crc32(slot.subarray(0, CRC_AT)), CRC_AT);
  return new Uint8Array(slot.buffer, slot.byteOffset, SLOT_SIZE);
}

/** The slot's content, or undefined if it is not a valid slot (never written, torn, or damaged). */
export function decodeSlot(bytes: Uint8Array): StateSlot | undefined {
  if (bytes.length !== SLOT_SIZE) return undefined;
  const slot = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!slot.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (slot.readUInt32BE(CRC_AT) !== crc32(slot.subarray(0, CRC_AT))) return undefined;
  const length = slot.readUInt32BE(MAGIC.length + 8);
  if (length > MAX_STATE_PAYLOAD) return undefined;
  // The padding is zero in every slot this code writes; anything else is damage the CRC missed.
  if (slot.subarray(HEADER + length, CRC_AT).some((b) => b !== 0)) return undefined;
  const generation = slot.readBigUInt64BE(MAGIC.length);
  return {
    generation,
    payload: length === 0 ? undefined : Uint8Array.from(slot.subarray(HEADER, HEADER + length)),
  };
}

/** Whether these bytes are a two-slot file; anything else is the old format (a bare payload). */
export function isSlotFile(bytes: Uint8Array): boolean {
  return bytes.length === STATE_FILE_SIZE;
}

/**
 * The state a two-slot file holds. `what` names the file and `code` the error for messages: a file
 * with no valid slot, or two valid slots of one generation that disagree, cannot be trusted.
 */
export function decodeStateFile(bytes: Uint8Array, what: string, code: SealErrorCode): CurrentState {
  if (!isSlotFile(bytes)) {
    throw new SealError(code, `${what} has ${bytes.length} bytes, want ${STATE_FILE_SIZE}`);
  }
  const a = decodeSlot(bytes.subarray(0, SLOT_SIZE));
  const b = decodeSlot(bytes.subarray(SLOT_SIZE));
  if (!a && !b) throw new SealError(code, `${what}: neither slot holds a valid state (damaged file)`);
  if (a && b && a.generation === b.generation && !samePayload(a.payload, b.payload)) {
    throw new SealError(code, `${what}: both slots have generation ${a.generation} but differ`);
  }
  if (a && (!b || a.generation >= b.generation)) return { ...a, slot: 0 };
  return { ...b!, slot: 1 };
}

/** Where and with which generation the state after `current` goes: the other slot, the next one. */
export function nextSlot(current: CurrentState): { slot: 0 | 1; generation: bigint; offset: number } {
  const slot = current.slot === 0 ? 1 : 0;
  return { slot, generation: current.generation + 1n, offset: slot * SLOT_SIZE };
}

/** A whole new file whose slot A holds `payload` (or "no state") and whose slot B is empty. */
export function initialStateFile(payload: Uint8Array | undefined): Uint8Array {
  const file = new Uint8Array(STATE_FILE_SIZE);
  file.set(encodeSlot(0n, payload), 0);
  return file;
}

function samePayload(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
