/**
 * The PKCS#11 mechanisms sealgate asks tokens for, chosen to be portable (BRIEF section 5):
 *
 * - ECDSA: `CKM_ECDSA` over a digest computed in software for the curve (SHA-256 for P-256, SHA-384 for
 *   P-384, or the scheme's hash). Many HSMs lack `CKM_ECDSA_SHA384`; SoftHSM2 2.6.1 does.
 *   The token returns raw r||s (PKCS#11 v2.40 §2.3.1), converted to DER when the scheme asks.
 * - RSA PKCS#1 v1.5: `CKM_RSA_PKCS` over DigestInfo || digest (RFC 8017 §9.2).
 * - RSA-PSS: `CKM_RSA_PKCS_PSS` over the digest, MGF1 with the same hash.
 * - RSA-OAEP: `CKM_RSA_PKCS_OAEP` with `CKM_SHA256` and `CKG_MGF1_SHA256`, and the label as
 *   `CKZ_DATA_SPECIFIED` source data. Never SHA-1.
 */
import { CryptoError } from '../errors.js';
import { hashForCurve } from '../policy.js';
import type { HashAlg, KeyAlgorithm, SignatureScheme } from '../provider.js';
import { digestInfo, p1363ToDer } from './encoding.js';
import { P11 } from './module.js';

const CKZ_DATA_SPECIFIED = 1;

const HASH_MECHANISMS: Readonly<Record<HashAlg, number>> = {
  sha256: P11.CKM_SHA256,
  sha384: P11.CKM_SHA384,
  sha512: P11.CKM_SHA512,
};

const MGF1: Readonly<Record<HashAlg, number>> = {
  sha256: P11.CKG_MGF1_SHA256,
  sha384: P11.CKG_MGF1_SHA384,
  sha512: P11.CKG_MGF1_SHA512,
};

export interface Mechanism {
  mechanism: number;
  parameter?:
    | { type: number; hashAlg: number; mgf: number; saltLen: number }
    | { type: number; hashAlg: number; mgf: number; source: number; sourceData?: Buffer };
}

/** How to make one signature: the mechanism, what the token signs, and what to do with its output. */
export interface SignPlan {
  /** For messages: "ECDSA (CKM_ECDSA)". */
  readonly name: string;
  readonly mechanism: Mechanism;
  readonly input: Uint8Array;
  readonly outLength: number;
  readonly finish: (out: Uint8Array) => Uint8Array;
}

/** `size` is the modulus or field size in bytes; `digest` hashes in software (the OpenSSL backend). */
export function signPlan(
  alg: KeyAlgorithm,
  size: number,
  data: Uint8Array,
  scheme: SignatureScheme,
  digest: (hash: HashAlg, data: Uint8Array) => Uint8Array,
): SignPlan {
  switch (scheme.scheme) {
    case 'ecdsa': {
      const hash = scheme.hash ?? hashForCurve(alg.type === 'ec' ? alg.curve : 'P-256');
      return {
        name: 'ECDSA (CKM_ECDSA)',
        mechanism: { mechanism: P11.CKM_ECDSA },
        input: digest(hash, data),
        outLength: 2 * size,
        finish: (raw) => {
          if (raw.length !== 2 * size) {
            throw new CryptoError(
              'BACKEND',
              `the token returned a ${raw.length}-byte ECDSA signature; want ${2 * size}`,
            );
          }
          return scheme.encoding === 'p1363' ? raw : p1363ToDer(raw);
        },
      };
    }
    case 'rsa-pkcs1v15':
      return {
        name: 'RSA PKCS#1 v1.5 (CKM_RSA_PKCS)',
        mechanism: { mechanism: P11.CKM_RSA_PKCS },
        input: digestInfo(scheme.hash, digest(scheme.hash, data)),
        outLength: size,
        finish: (sig) => sig,
      };
    case 'rsa-pss':
      return {
        name: `RSA-PSS with ${scheme.hash.toUpperCase()} (CKM_RSA_PKCS_PSS)`,
        mechanism: {
          mechanism: P11.CKM_RSA_PKCS_PSS,
          parameter: {
            type: P11.CK_PARAMS_RSA_PSS,
            hashAlg: HASH_MECHANISMS[scheme.hash],
            mgf: MGF1[scheme.hash],
            saltLen: scheme.saltLength,
          },
        },
        input: digest(scheme.hash, data),
        outLength: size,
        finish: (sig) => sig,
      };
    case 'ed25519':
      throw new CryptoError('UNSUPPORTED', 'the pkcs11 backend does not sign Ed25519');
  }
}

/** RSA-OAEP with SHA-256 and MGF1-SHA-256; the suite's only key wrap (docs/FORMAT.md §2). */
export function oaepSha256(label: Uint8Array | undefined): Mechanism {
  return {
    mechanism: P11.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: P11.CK_PARAMS_RSA_OAEP,
      hashAlg: P11.CKM_SHA256,
      mgf: P11.CKG_MGF1_SHA256,
      source: CKZ_DATA_SPECIFIED,
      ...(label && label.length > 0 ? { sourceData: Buffer.from(label) } : {}),
    },
  };
}

export const OAEP_SHA256_NAME = 'RSA-OAEP with SHA-256';
