/**
 * Byte formats at the token boundary: what PKCS#11 hands back (raw ECDSA r||s, DER-wrapped EC points,
 * curve OIDs) and what it wants (PKCS#1 v1.5 DigestInfo). Pure functions.
 */
import { CryptoError } from '../errors.js';
import type { EcCurve, HashAlg } from '../provider.js';

/** Named-curve OIDs as CKA_EC_PARAMS holds them (DER, RFC 5480 §2.1.1.1). */
export const EC_PARAMS: Readonly<Record<EcCurve, string>> = {
  'P-256': '06082a8648ce3d030107', // 1.2.840.10045.3.1.7
  'P-384': '06052b81040022', // 1.3.132.0.34
};

/** Field size in bytes: r and s each take this many bytes in a raw signature. */
export const EC_FIELD_BYTES: Readonly<Record<EcCurve, number>> = { 'P-256': 32, 'P-384': 48 };

const OTHER_CURVES: Readonly<Record<string, string>> = {
  '06052b81040023': 'P-521',
  '06082a8648ce3d030101': 'P-192',
  '06052b81040021': 'P-224',
  '06092b2403030208010107': 'brainpoolP256r1',
  '06032b6570': 'Ed25519',
  '06032b6571': 'Ed448',
};

/** Some tokens (and CKK_EC_EDWARDS keys) name the curve as a PrintableString instead of an OID. */
const CURVE_NAMES: Readonly<Record<string, EcCurve>> = {
  prime256v1: 'P-256',
  secp256r1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
};

/** The curve of CKA_EC_PARAMS; UNSUPPORTED for a curve sealgate does not use. */
export function curveOfParams(params: Uint8Array): EcCurve {
  const hex = Buffer.from(params).toString('hex');
  for (const [curve, oid] of Object.entries(EC_PARAMS) as [EcCurve, string][]) if (oid === hex) return curve;
  if (params[0] === 0x13 && params[1] === params.length - 2) {
    const name = Buffer.from(params.subarray(2)).toString('latin1');
    const curve = CURVE_NAMES[name];
    if (curve) return curve;
  }
  const name = OTHER_CURVES[hex] ?? `with parameters ${hex}`;
  throw new CryptoError('UNSUPPORTED', `EC curve ${name} is not supported (use P-256 or P-384)`);
}

/**
 * The uncompressed point from CKA_EC_POINT. PKCS#11 v2.40 §2.3.3 says DER OCTET STRING (`04 61 04…` for
 * P-384); some tokens return the bare point, which is told apart by its length.
 */
export function ecPointOf(value: Uint8Array, curve: EcCurve): Uint8Array {
  const size = 1 + 2 * EC_FIELD_BYTES[curve];
  if (value.length === size && value[0] === 0x04) return value;
  if (value[0] === 0x04) {
    let off = 2;
    let len = value[1] ?? 0;
    if (len === 0x81) {
      len = value[2] ?? 0;
      off = 3;
    }
    if (len === size && value.length === off + size && value[off] === 0x04) return value.subarray(off);
  }
  throw new CryptoError(
    'INVALID_INPUT',
    `the token's CKA_EC_POINT (${value.length} bytes) is not an uncompressed ${curve} point`,
  );
}

/** DER OCTET STRING around an EC point, as CKA_EC_POINT is written. */
export function derOctetString(value: Uint8Array): Uint8Array {
  if (value.length >= 0x80) {
    if (value.length > 0xff) throw new CryptoError('INVALID_INPUT', 'EC point too long');
    return new Uint8Array([0x04, 0x81, value.length, ...value]);
  }
  return new Uint8Array([0x04, value.length, ...value]);
}

function derInteger(unsigned: Uint8Array): Uint8Array {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  let v = unsigned.subarray(i);
  if ((v[0] ?? 0) & 0x80) v = new Uint8Array([0, ...v]);
  return new Uint8Array([0x02, v.length, ...v]);
}

/** ECDSA r||s (what CKM_ECDSA returns, IEEE P1363) to the X9.62 DER SEQUENCE { r, s }. */
export function p1363ToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  const len = r.length + s.length;
  const head = len >= 0x80 ? [0x30, 0x81, len] : [0x30, len];
  return new Uint8Array([...head, ...r, ...s]);
}

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for CKM_RSA_PKCS, which signs what it is given. */
const DIGEST_INFO: Readonly<Record<HashAlg, string>> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

export function digestInfo(hash: HashAlg, digest: Uint8Array): Uint8Array {
  return new Uint8Array([...Buffer.from(DIGEST_INFO[hash], 'hex'), ...digest]);
}

/** Big-endian unsigned bytes without leading zeros (a CKA_MODULUS may carry one). */
export function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}
