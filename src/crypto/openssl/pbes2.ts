/**
 * PKCS#8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018 §6.2): PBKDF2-HMAC-SHA-256 and AES-256-CBC, all
 * FIPS-approved. We encode it ourselves because Node's `export({cipher, passphrase})` uses OpenSSL's
 * defaults: 2,048 iterations and an 8-byte salt, below SP 800-132's 128-bit salt and far below today's
 * guidance for iterations. Reading needs no custom code: OpenSSL parses any PBES2 parameters.
 */
import { createCipheriv, pbkdf2Sync, randomBytes, type KeyObject } from 'node:crypto';

export const PBKDF2_ITERATIONS = 600_000;
const SALT_BYTES = 16;

// DER object identifiers (RFC 8018 appendix C; NIST CSOR for AES).
const OID_PBES2 = '2a864886f70d01050d';
const OID_PBKDF2 = '2a864886f70d01050c';
const OID_HMAC_SHA256 = '2a864886f70d0209';
const OID_AES256_CBC = '60864801650304012a';

function der(tag: number, body: Buffer): Buffer {
  const len = body.length;
  let head: Buffer;
  if (len < 0x80) head = Buffer.from([tag, len]);
  else if (len < 0x100) head = Buffer.from([tag, 0x81, len]);
  else if (len < 0x10000) head = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  else head = Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  return Buffer.concat([head, body]);
}
const seq = (...parts: Buffer[]) => der(0x30, Buffer.concat(parts));
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));
const octets = (b: Buffer) => der(0x04, b);
const nul = () => Buffer.from([0x05, 0x00]);
function integer(n: number): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return der(0x02, b);
}

export function encryptPkcs8(key: KeyObject, passphrase: Uint8Array, iterations = PBKDF2_ITERATIONS): string {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(16);
  const kek = pbkdf2Sync(passphrase, salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', kek, iv);
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  kek.fill(0);
  const params = seq(
    seq(oid(OID_PBKDF2), seq(octets(salt), integer(iterations), seq(oid(OID_HMAC_SHA256), nul()))),
    seq(oid(OID_AES256_CBC), octets(iv)),
  );
  const info = seq(seq(oid(OID_PBES2), params), octets(encrypted));
  const b64 = info.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b64.trimEnd()}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}
