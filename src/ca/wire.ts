/**
 * The SSH wire types a certificate needs beyond src/ssh/wire.ts: `uint32`, `uint64`, and a reader that
 * fails with a typed error (MALFORMED) naming the field it was reading. Pure: bytes in, values out.
 */
import { readSshString } from '../ssh/wire.js';
import { CertError } from './errors.js';

export { sshString } from '../ssh/wire.js';

export function sshU32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value, 0);
  return out;
}

export const U64_MAX = 0xffff_ffff_ffff_ffffn;

export function sshU64(value: bigint): Buffer {
  if (value < 0n || value > U64_MAX) throw new RangeError(`uint64 out of range: ${value}`);
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(value, 0);
  return out;
}

/** Reads fields in order; every failure is CertError MALFORMED with the field's name. */
export class CertReader {
  private off = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'certificate',
  ) {}

  get offset(): number {
    return this.off;
  }

  string(field: string): Uint8Array {
    const s = readSshString(this.buf, this.off);
    if (!s) throw this.bad(`truncated at ${field}`);
    this.off = s.next;
    return s.value;
  }

  /** A `string` that must be printable UTF-8 text. */
  text(field: string): string {
    const bytes = this.string(field);
    const text = Buffer.from(bytes).toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(Buffer.from(bytes))) throw this.bad(`${field} is not UTF-8`);
    return text;
  }

  u32(field: string): number {
    if (this.off + 4 > this.buf.length) throw this.bad(`truncated at ${field}`);
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.length).readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  u64(field: string): bigint {
    if (this.off + 8 > this.buf.length) throw this.bad(`truncated at ${field}`);
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.length).readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }

  get done(): boolean {
    return this.off === this.buf.length;
  }

  end(): void {
    if (!this.done) throw this.bad(`${this.buf.length - this.off} trailing bytes`);
  }

  private bad(why: string): CertError {
    return new CertError('MALFORMED', `malformed ${this.what}: ${why}`);
  }
}
