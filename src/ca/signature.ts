/**
 * CA signatures on certificates (RFC 5656 §3.1.2 for ECDSA, RFC 8332 for RSA), through the provider.
 * Accepted: `ecdsa-sha2-nistp256` (SHA-256), `ecdsa-sha2-nistp384` (SHA-384), `rsa-sha2-256`,
 * `rsa-sha2-512`. Never `ssh-rsa` (SHA-1). Ed25519 CAs are not issued or accepted (FIPS mode refuses them).
 */
import type { CryptoProvider, HashAlg, PrivateKey, PublicKey, SignatureScheme } from '../crypto/index.js';
import { ecdsaSignatureBody } from '../ssh/wire.js';
import type { Certificate } from './certificate.js';
import { CertError } from './errors.js';
import { CertReader, sshString } from './wire.js';

interface SignatureAlgorithm {
  readonly name: string;
  /** The CA key type whose blob this algorithm goes with. */
  readonly keyType: string;
  readonly scheme: SignatureScheme;
  /** ECDSA: the size of r and s in bytes. */
  readonly half?: number;
}

const ALGORITHMS: readonly SignatureAlgorithm[] = [
  {
    name: 'ecdsa-sha2-nistp256',
    keyType: 'ecdsa-sha2-nistp256',
    scheme: { scheme: 'ecdsa', hash: 'sha256', encoding: 'p1363' },
    half: 32,
  },
  {
    name: 'ecdsa-sha2-nistp384',
    keyType: 'ecdsa-sha2-nistp384',
    scheme: { scheme: 'ecdsa', hash: 'sha384', encoding: 'p1363' },
    half: 48,
  },
  { name: 'rsa-sha2-256', keyType: 'ssh-rsa', scheme: { scheme: 'rsa-pkcs1v15', hash: 'sha256' } },
  { name: 'rsa-sha2-512', keyType: 'ssh-rsa', scheme: { scheme: 'rsa-pkcs1v15', hash: 'sha512' } },
];

/** The signature algorithms a certificate may carry, by name. */
export const CERT_SIGNATURE_ALGORITHMS: readonly string[] = ALGORITHMS.map((a) => a.name);

/** The OpenSSH public key blob of a key (`string type || fields`), from its `.openssh()` line. */
export function publicKeyBlob(key: PublicKey): Buffer {
  const b64 = key.openssh().split(' ')[1] ?? '';
  return Buffer.from(b64, 'base64');
}

/** The algorithm a CA key signs with: the curve's hash for ECDSA; rsa-sha2-512 (as ssh-keygen) or -256 for RSA. */
export function signatureAlgorithmFor(key: PublicKey, rsaHash: HashAlg = 'sha512'): SignatureAlgorithm {
  const alg = key.algorithm;
  const pick = (name: string) => ALGORITHMS.find((a) => a.name === name);
  const found =
    alg.type === 'ec'
      ? pick(alg.curve === 'P-256' ? 'ecdsa-sha2-nistp256' : 'ecdsa-sha2-nistp384')
      : alg.type === 'rsa' && (rsaHash === 'sha256' || rsaHash === 'sha512')
        ? pick(`rsa-sha2-${rsaHash.slice(3)}`)
        : undefined;
  if (!found) {
    throw new CertError('UNSUPPORTED_SIGNATURE', `a ${alg.type} key cannot be a certificate authority here`);
  }
  return found;
}

/** Signs the to-be-signed bytes; returns the signature blob (`string algorithm || string signature`). */
export async function signCertificateBody(
  provider: CryptoProvider,
  caKey: PrivateKey,
  toBeSigned: Uint8Array,
  rsaHash?: HashAlg,
): Promise<Buffer> {
  const alg = signatureAlgorithmFor(caKey.publicKey, rsaHash);
  const raw = await provider.sign(caKey, toBeSigned, alg.scheme);
  const body = alg.half !== undefined ? ecdsaSignatureBody(raw) : raw;
  return Buffer.concat([sshString(alg.name), sshString(body)]);
}

/** The signature blob's parts. */
export function decodeSignature(blob: Uint8Array): { algorithm: string; body: Uint8Array } {
  const r = new CertReader(blob, 'signature');
  const algorithm = r.text('algorithm');
  const body = r.string('signature');
  r.end();
  return { algorithm, body };
}

/** mpint r || mpint s → r || s, each padded to `half` bytes; undefined when they do not fit. */
function ecdsaP1363(body: Uint8Array, half: number): Uint8Array | undefined {
  const r = new CertReader(body, 'ECDSA signature');
  const parts = [r.string('r'), r.string('s')];
  r.end();
  const out = new Uint8Array(2 * half);
  for (const [i, m] of parts.entries()) {
    let start = 0;
    while (start < m.length && m[start] === 0) start++;
    const digits = m.subarray(start);
    if (digits.length > half || (m.length > 0 && (m[0] ?? 0) & 0x80)) return undefined;
    out.set(digits, (i + 1) * half - digits.length);
  }
  return out;
}

/**
 * Whether the certificate's signature verifies under its own signature key. The caller decides
 * separately whether that key is a trusted CA. Throws UNSUPPORTED_SIGNATURE for an algorithm sealgate
 * does not accept (ssh-rsa SHA-1, Ed25519, one that does not fit the key); MALFORMED for a bad blob.
 */
export function verifyCertificateSignature(provider: CryptoProvider, cert: Certificate): boolean {
  const { algorithm, body } = decodeSignature(cert.signature);
  const alg = ALGORITHMS.find((a) => a.name === algorithm);
  if (!alg) throw new CertError('UNSUPPORTED_SIGNATURE', `signature algorithm ${algorithm} is not accepted`);
  const caType = new CertReader(cert.signatureKey, 'signature key').text('key type');
  if (caType !== alg.keyType) {
    throw new CertError('UNSUPPORTED_SIGNATURE', `a ${algorithm} signature does not fit a ${caType} CA key`);
  }
  const caKey = provider.importPublicKey(`${caType} ${Buffer.from(cert.signatureKey).toString('base64')}`);
  const sig = alg.half !== undefined ? ecdsaP1363(body, alg.half) : body;
  if (!sig) return false;
  return provider.verify(caKey, cert.signedBytes, sig, alg.scheme);
}
