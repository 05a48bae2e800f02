/**
 * OpenSSH public key blobs (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4) to and from JWK.
 * Pure format code: bytes in, values out. The provider turns the JWK into a key object.
 */
import { CryptoError } from './errors.js';

export interface RsaJwk {
  kty: 'RSA';
  n: string;
  e: string;
}
export interface EcJwk {
  kty: 'EC';
  crv: 'P-256' | 'P-384' | 'P-521';
  x: string;
  y: string;
}
export interface OkpJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}
export type PublicJwk = RsaJwk | EcJwk | OkpJwk;

const CURVES = {
  nistp256: { crv: 'P-256', size: 32 },
  nistp384: { crv: 'P-384', size: 48 },
  nistp521: { crv: 'P-521', size: 66 },
} as const;
type SshCurve = keyof typeof CURVES;

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const unb64u = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

/** Reads SSH wire `string`s (uint32 length + bytes) from a blob. */
class WireReader {
  private off = 0;
  constructor(private readonly buf: Uint8Array) {}
  string(): Uint8Array {
    if (this.off + 4 > this.buf.length) throw bad('truncated length');
    const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(this.off);
    this.off += 4;
    if (this.off + len > this.buf.length) throw bad('truncated field');
    const out = this.buf.subarray(this.off, this.off + len);
    this.off += len;
    return out;
  }
  text(): string {
    return Buffer.from(this.string()).toString('latin1');
  }
  end(): void {
    if (this.off !== this.buf.length) throw bad('trailing bytes');
  }
}

function bad(why: string): CryptoError {
  return new CryptoError('INVALID_INPUT', `malformed OpenSSH public key: ${why}`);
}

function wireString(b: Uint8Array | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** RFC 4251 §5 mpint: two's complement, minimal, with a leading zero when the top bit is set. */
function mpint(unsigned: Uint8Array): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  return wireString((v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function unsignedFromMpint(m: Uint8Array): Uint8Array {
  if (m.length > 0 && (m[0] ?? 0) & 0x80) throw bad('negative mpint');
  let i = 0;
  while (i < m.length - 1 && m[i] === 0) i++;
  return m.subarray(i);
}

/** The OpenSSH key type name for a JWK, e.g. `ecdsa-sha2-nistp384`. */
export function sshKeyType(jwk: PublicJwk): string {
  if (jwk.kty === 'RSA') return 'ssh-rsa';
  if (jwk.kty === 'OKP') return 'ssh-ed25519';
  const name = (Object.keys(CURVES) as SshCurve[]).find((c) => CURVES[c].crv === jwk.crv);
  return `ecdsa-sha2-${name}`;
}

export function jwkToSshBlob(jwk: PublicJwk): Buffer {
  const type = sshKeyType(jwk);
  if (jwk.kty === 'RSA') return Buffer.concat([wireString(type), mpint(unb64u(jwk.e)), mpint(unb64u(jwk.n))]);
  if (jwk.kty === 'OKP') return Buffer.concat([wireString(type), wireString(unb64u(jwk.x))]);
  const point = Buffer.concat([Buffer.from([4]), unb64u(jwk.x), unb64u(jwk.y)]);
  return Buffer.concat([wireString(type), wireString(type.slice('ecdsa-sha2-'.length)), wireString(point)]);
}

export function sshBlobToJwk(blob: Uint8Array): PublicJwk {
  const r = new WireReader(blob);
  const type = r.text();
  let jwk: PublicJwk;
  if (type === 'ssh-rsa') {
    const e = unsignedFromMpint(r.string());
    const n = unsignedFromMpint(r.string());
    jwk = { kty: 'RSA', n: b64u(n), e: b64u(e) };
  } else if (type === 'ssh-ed25519') {
    const x = r.string();
    if (x.length !== 32) throw bad('Ed25519 key is not 32 bytes');
    jwk = { kty: 'OKP', crv: 'Ed25519', x: b64u(x) };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curveName = r.text();
    if (`ecdsa-sha2-${curveName}` !== type || !(curveName in CURVES))
      throw bad(`curve ${curveName} for ${type}`);
    const { crv, size } = CURVES[curveName as SshCurve];
    const q = r.string();
    if (q.length !== 1 + 2 * size || q[0] !== 4)
      throw bad('EC point is not uncompressed or has the wrong size');
    jwk = { kty: 'EC', crv, x: b64u(q.subarray(1, 1 + size)), y: b64u(q.subarray(1 + size)) };
  } else {
    throw new CryptoError('UNSUPPORTED', `OpenSSH key type ${type} is not supported`);
  }
  r.end();
  return jwk;
}

/** Parses `<type> <base64> [comment]` and checks that the type matches the blob. */
export function parseOpenSshLine(line: string): { jwk: PublicJwk; comment: string } {
  const [type, b64, ...rest] = line.trim().split(/\s+/);
  if (!type || !b64) throw bad('expected "<type> <base64> [comment]"');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw bad('invalid base64');
  const blob = new Uint8Array(Buffer.from(b64, 'base64'));
  const jwk = sshBlobToJwk(blob);
  if (sshKeyType(jwk) !== type) throw bad(`line says ${type}, blob holds ${sshKeyType(jwk)}`);
  return { jwk, comment: rest.join(' ') };
}

export function formatOpenSshLine(jwk: PublicJwk, comment?: string): string {
  const line = `${sshKeyType(jwk)} ${jwkToSshBlob(jwk).toString('base64')}`;
  return comment ? `${line} ${comment}` : line;
}
