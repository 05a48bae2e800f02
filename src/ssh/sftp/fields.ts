/**
 * The SFTP v3 field types (draft-ietf-secsh-filexfer-02 §3 and §5): uint32, uint64, string and ATTRS,
 * read from a packet body; and how the log writes them (docs/FORMAT.md §3.2.2): text fields as UTF-8
 * with an exact `_b64` sibling when the bytes are not UTF-8, numbers beyond 2^53 as decimal strings.
 * Pure.
 */
import { ByteReader, type ReadFailure } from '../../seal/format/bytes.js';
import { SftpStreamError } from './errors.js';
import { AttrFlag, OPEN_FLAGS } from './protocol.js';

/** The attributes a request sets, as the log writes them. */
export interface Attrs {
  size?: number | string;
  uid?: number;
  gid?: number;
  /** Octal, e.g. "644" or "100644": the wire value as sent. */
  permissions?: string;
  atime?: number;
  mtime?: number;
}

const malformedPacket: ReadFailure = (message) => {
  throw new SftpStreamError('MALFORMED_PACKET', message);
};

/**
 * Reads fields in order over the seal format's ByteReader (the same big-endian wire types); running past
 * the end throws SftpStreamError('MALFORMED_PACKET').
 */
export class FieldReader {
  readonly #reader: ByteReader;

  constructor(bytes: Uint8Array, what: string) {
    this.#reader = new ByteReader(bytes, what, malformedPacket);
  }

  get offset(): number {
    return this.#reader.offset;
  }

  get remaining(): number {
    return this.#reader.remaining;
  }

  u32(field: string): number {
    return this.#reader.u32(field);
  }

  /** A u64 as a number, or a decimal string beyond 2^53. */
  u64(field: string): number | string {
    const v = this.#reader.u64(field);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }

  /** `uint32 length || bytes`, as a view into the packet. */
  string(field: string, maxLength?: number): Uint8Array {
    const length = this.u32(`${field} length`);
    if (maxLength !== undefined && length > maxLength) {
      this.#reader.fail(`${field} is ${length} bytes, over ${maxLength}`);
    }
    return this.#reader.fixed(length, field);
  }

  /** draft-02 §5 ATTRS; extended pairs are read past, not kept. */
  attrs(field: string): Attrs {
    const flags = this.u32(`${field} flags`);
    const out: Attrs = {};
    if (flags & AttrFlag.SIZE) out.size = this.u64(`${field} size`);
    if (flags & AttrFlag.UIDGID) {
      out.uid = this.u32(`${field} uid`);
      out.gid = this.u32(`${field} gid`);
    }
    if (flags & AttrFlag.PERMISSIONS) out.permissions = this.u32(`${field} permissions`).toString(8);
    if (flags & AttrFlag.ACMODTIME) {
      out.atime = this.u32(`${field} atime`);
      out.mtime = this.u32(`${field} mtime`);
    }
    if (flags & AttrFlag.EXTENDED) {
      const count = this.u32(`${field} extended count`);
      for (let i = 0; i < count; i++) {
        this.string(`${field} extended type`);
        this.string(`${field} extended data`);
      }
    }
    return out;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lossyUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Sets `out[name]` to the bytes as text; when they are not UTF-8, to a lossy decoding, with the exact
 * bytes in `out[name + "_b64"]` (FORMAT.md §3.2.2).
 */
export function putText(out: Record<string, unknown>, name: string, bytes: Uint8Array): void {
  try {
    out[name] = strictUtf8.decode(bytes);
  } catch {
    out[name] = lossyUtf8.decode(bytes);
    out[`${name}_b64`] = view(bytes).toString('base64');
  }
}

/** A Buffer over the same memory (no copy). */
const view = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Lowercase hex, for handles. */
export const hex = (bytes: Uint8Array): string => view(bytes).toString('hex');

/** draft-02 §6.3 pflags by name, in bit order; unknown bits as hex. */
export function openFlagNames(pflags: number): string[] {
  const names: string[] = [];
  let rest = pflags >>> 0;
  for (const [bit, name] of OPEN_FLAGS) {
    if (rest & bit) names.push(name);
    rest &= ~bit;
  }
  for (let bit = 1; rest !== 0 && bit !== 0; bit = (bit << 1) >>> 0) {
    if (rest & bit) {
      names.push(`0x${bit.toString(16).padStart(8, '0')}`);
      rest = (rest & ~bit) >>> 0;
    }
  }
  return names;
}
