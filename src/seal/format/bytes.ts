/**
 * Big-endian byte writing and reading for the entry encodings of docs/FORMAT.md §3 (`u8`, `u16`, `u32`,
 * `u64`, fixed-length fields, length-prefixed fields).
 *
 * The writer fills a buffer of a size computed up front, so an entry is encoded with one allocation.
 * The reader names the entry and the field in every failure ("segment header: recipient 2 wrapped_len
 * runs past the end"), and `end()` refuses trailing bytes: FORMAT.md §3 says decoders reject both.
 */
import { SealError } from '../errors.js';

const U64_MAX = (1n << 64n) - 1n;

function invalid(message: string): never {
  throw new SealError('INVALID_ARGUMENT', message);
}

/** Writes big-endian fields into a buffer of exactly the encoded size. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  /** A fresh buffer of `size` bytes, or (for a caller that reuses one) an existing buffer to fill. */
  constructor(target: number | Uint8Array) {
    this.bytes = typeof target === 'number' ? new Uint8Array(target) : target;
    this.#view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  get offset(): number {
    return this.#pos;
  }

  #take(n: number, field: string): number {
    const at = this.#pos;
    if (at + n > this.bytes.length) invalid(`${field} does not fit the ${this.bytes.length}-byte buffer`);
    this.#pos = at + n;
    return at;
  }

  #uint(v: number, bits: 8 | 16 | 32, field: string): number {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) invalid(`${field} ${v} is not a u${bits}`);
    return this.#take(bits / 8, field);
  }

  u8(v: number, field: string): this {
    this.#view.setUint8(this.#uint(v, 8, field), v);
    return this;
  }

  u16(v: number, field: string): this {
    this.#view.setUint16(this.#uint(v, 16, field), v);
    return this;
  }

  u32(v: number, field: string): this {
    this.#view.setUint32(this.#uint(v, 32, field), v);
    return this;
  }

  u64(v: bigint, field: string): this {
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) invalid(`${field} ${String(v)} is not a u64`);
    this.#view.setBigUint64(this.#take(8, field), v);
    return this;
  }

  /** A fixed-length field: `b` must have exactly `length` bytes. */
  fixed(b: Uint8Array, length: number, field: string): this {
    if (b.length !== length) invalid(`${field} has ${b.length} bytes, want ${length}`);
    return this.raw(b, field);
  }

  /** Bytes whose length the format states elsewhere (a preceding length field). */
  raw(b: Uint8Array, field: string): this {
    this.bytes.set(b, this.#take(b.length, field));
    return this;
  }

  /** `u16 len || bytes` */
  prefixed16(b: Uint8Array, field: string): this {
    return this.u16(b.length, `${field} length`).raw(b, field);
  }

  /** `u32 len || bytes` */
  prefixed32(b: Uint8Array, field: string): this {
    return this.u32(b.length, `${field} length`).raw(b, field);
  }

  /** The filled buffer. Throws unless every byte was written: a size computed wrong is a bug. */
  end(): Uint8Array {
    if (this.#pos !== this.bytes.length) {
      invalid(`encoded ${this.#pos} bytes into a buffer of ${this.bytes.length}`);
    }
    return this.bytes;
  }
}

/** Throws the caller's error for a failure message that already names the structure and field. */
export type ReadFailure = (message: string) => never;

const malformedEntry: ReadFailure = (message) => {
  throw new SealError('MALFORMED_ENTRY', message);
};

/**
 * Reads big-endian fields; every failure names `what` and the field, and is SealError('MALFORMED_ENTRY')
 * unless the caller gives its own `onFailure` (the SFTP parser reads the same wire types with its own
 * error). Byte fields are views into the input (no copy).
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #what: string;
  readonly #onFailure: ReadFailure;
  #pos = 0;

  /** `what` names the structure in messages, e.g. "segment header". */
  constructor(bytes: Uint8Array, what: string, onFailure: ReadFailure = malformedEntry) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
    this.#onFailure = onFailure;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  /** Throws the reader's failure (by default MALFORMED_ENTRY) with the structure's name in front of `message`. */
  fail(message: string): never {
    return this.#onFailure(`${this.#what}: ${message}`);
  }

  #take(n: number, field: string): number {
    const at = this.#pos;
    if (n > this.#bytes.length - at) {
      this.fail(`${field} runs past the end (needs ${n} bytes at offset ${at}, ${this.remaining} left)`);
    }
    this.#pos = at + n;
    return at;
  }

  u8(field: string): number {
    return this.#view.getUint8(this.#take(1, field));
  }

  u16(field: string): number {
    return this.#view.getUint16(this.#take(2, field));
  }

  u32(field: string): number {
    return this.#view.getUint32(this.#take(4, field));
  }

  u64(field: string): bigint {
    return this.#view.getBigUint64(this.#take(8, field));
  }

  /** `n` bytes, as a view into the input. */
  fixed(n: number, field: string): Uint8Array {
    const at = this.#take(n, field);
    return this.#bytes.subarray(at, at + n);
  }

  /** `u16 len || bytes`; the length field is reported as `<field>_len`. */
  prefixed16(field: string): Uint8Array {
    return this.fixed(this.u16(`${field}_len`), field);
  }

  /** `u32 len || bytes`; the length field is reported as `<field>_len`. */
  prefixed32(field: string): Uint8Array {
    return this.fixed(this.u32(`${field}_len`), field);
  }

  /** Refuses trailing bytes (FORMAT.md §3). */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes after offset ${this.#pos}`);
  }
}
