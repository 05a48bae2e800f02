/**
 * Checkpoint bodies (docs/FORMAT.md §5.1): the C2SP tlog-checkpoint note text, pure and strict.
 *
 *     <origin>\n
 *     <tree size, decimal, no leading zeros>\n
 *     <base64 root hash>\n
 *     [extension lines\n]   (accepted and ignored; sealgate never writes them)
 *
 * The signature around it is note.ts; whether to sign it at all is signer.ts.
 */
import { SealError } from './errors.js';
import { HASH_SIZE } from './merkle.js';

export interface Checkpoint {
  readonly origin: string;
  /** Leaves in the tree: a u64. */
  readonly size: bigint;
  /** RFC 6962 MTH of the first `size` leaves: 32 bytes. */
  readonly root: Uint8Array;
}

const U64_MAX = (1n << 64n) - 1n;
/** C2SP tlog-checkpoint: "ASCII decimal … with no leading zeroes (unless the tree is empty)". */
const DECIMAL = /^(0|[1-9][0-9]*)$/;
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL = /[\u0000-\u001f]/;

function malformed(message: string): never {
  throw new SealError('CHECKPOINT_MALFORMED', `checkpoint: ${message}`);
}

/**
 * Strict RFC 4648 §4 base64: the standard alphabet, padding required, and canonical (the unused bits of
 * the last character are zero), so one byte string has exactly one text form. Undefined if not.
 */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return undefined;
  return new Uint8Array(bytes); // a copy: small Buffers share Node's pool
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** The note text of a checkpoint, final newline included. Throws INVALID_ARGUMENT on an impossible one. */
export function formatCheckpoint(cp: Checkpoint): string {
  const bad = (message: string): never => {
    throw new SealError('INVALID_ARGUMENT', `checkpoint: ${message}`);
  };
  if (cp.origin.length === 0) bad('origin is empty');
  if (CONTROL.test(cp.origin)) bad('origin holds a newline or control character');
  if (typeof cp.size !== 'bigint' || cp.size < 0n || cp.size > U64_MAX) bad(`size ${cp.size} is not a u64`);
  if (cp.root.length !== HASH_SIZE) bad(`root has ${cp.root.length} bytes, want ${HASH_SIZE}`);
  return `${cp.origin}\n${cp.size}\n${encodeBase64(cp.root)}\n`;
}

/**
 * Parses a checkpoint body (a verified note's text). Extension lines are accepted and ignored, as
 * tlog-checkpoint allows; everything else is checked exactly: three non-empty lines first, a canonical
 * decimal u64, a 32-byte root in canonical base64, and the final newline.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) malformed('the text does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) malformed(`${lines.length} line(s), want at least 3 (origin, size, root)`);
  const [origin, sizeText, rootText] = lines;
  lines.forEach((line, i) => {
    if (line.length === 0) malformed(`line ${i + 1} is empty`);
    if (CONTROL.test(line)) malformed(`line ${i + 1} holds a control character`);
  });
  if (!DECIMAL.test(sizeText)) malformed(`size ${JSON.stringify(sizeText)} is not a canonical decimal`);
  const size = BigInt(sizeText);
  if (size > U64_MAX) malformed(`size ${sizeText} is beyond 2^64 - 1`);
  const root = decodeBase64Strict(rootText);
  if (!root) malformed(`root ${JSON.stringify(rootText)} is not canonical base64`);
  if (root.length !== HASH_SIZE) malformed(`root has ${root.length} bytes, want ${HASH_SIZE}`);
  return { origin, size, root };
}
