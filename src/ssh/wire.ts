/**
 * The few SSH wire types (RFC 4251 §5) the gate encodes and decodes itself: `string`, `mpint`, and the
 * key type at the head of a public key blob (RFC 4253 §6.6). Pure: bytes in, bytes out.
 */

/** `uint32 length || bytes`. */
export function sshString(value: Uint8Array | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** RFC 4251 §5 mpint of an unsigned big-endian integer: minimal, with a 0x00 lead when the top bit is set. */
export function sshMpint(unsigned: Uint8Array): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const digits = unsigned.subarray(i);
  if (digits.length === 0) return sshString(new Uint8Array(0));
  if ((digits[0] ?? 0) & 0x80) {
    const out = Buffer.allocUnsafe(4 + 1 + digits.length);
    out.writeUInt32BE(digits.length + 1, 0);
    out[4] = 0;
    out.set(digits, 5);
    return out;
  }
  return sshString(digits);
}

/** Reads one `string` at `offset`; undefined when the bytes are too short. */
export function readSshString(buf: Uint8Array, offset = 0): { value: Uint8Array; next: number } | undefined {
  if (offset + 4 > buf.length) return undefined;
  const len = new DataView(buf.buffer, buf.byteOffset, buf.length).getUint32(offset);
  const start = offset + 4;
  if (start + len > buf.length) return undefined;
  return { value: buf.subarray(start, start + len), next: start + len };
}

/** The key type named at the head of a public key blob (`ecdsa-sha2-nistp256`), or undefined. */
export function blobKeyType(blob: Uint8Array): string | undefined {
  const s = readSshString(blob);
  if (!s || s.value.length === 0 || s.value.length > 64) return undefined;
  const type = Buffer.from(s.value).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

/**
 * RFC 5656 §3.1.2: the body of an ECDSA signature blob, `mpint r || mpint s`, from the IEEE P1363 form
 * (`r || s`, each half the curve's size) that the provider returns.
 */
export function ecdsaSignatureBody(p1363: Uint8Array): Buffer {
  if (p1363.length === 0 || p1363.length % 2 !== 0) {
    throw new RangeError(`an ECDSA P1363 signature has an even, non-zero length (got ${p1363.length})`);
  }
  const half = p1363.length / 2;
  return Buffer.concat([sshMpint(p1363.subarray(0, half)), sshMpint(p1363.subarray(half))]);
}
