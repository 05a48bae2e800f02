/**
 * The key schedule of docs/FORMAT.md §4, and recipient key ids (§3.1). Cryptography goes through the
 * provider; this file only says which operation with which inputs.
 */
import type { CryptoProvider, PublicKey } from '../crypto/index.js';
import { SealError } from './errors.js';
import { ID_LEN } from './format/segment-header.js';

/** A DEK is 32 random bytes, one per segment. */
export const DEK_LEN = 32;
/** Both outputs of the key schedule are 32 bytes. */
export const SEGMENT_KEY_LEN = 32;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
/** FORMAT.md §4: the HKDF info strings. */
export const RECORD_KEY_INFO = ascii('sealgate/v1 record key');
export const KEY_COMMITMENT_INFO = ascii('sealgate/v1 key commitment');

export interface SegmentKeys {
  /** The AES-256-GCM key of every record of the segment. */
  recordKey: Uint8Array;
  /** The header's commitment to the DEK (key commitment, as in the AWS Encryption SDK). */
  commitment: Uint8Array;
}

/**
 * FORMAT.md §4: record_key and commitment = HKDF-SHA-512(ikm = DEK, salt = segment_id, info, L = 32).
 * The caller zeroes the DEK when it is done with it.
 */
export function deriveSegmentKeys(
  provider: CryptoProvider,
  dek: Uint8Array,
  segmentId: Uint8Array,
): SegmentKeys {
  if (dek.length !== DEK_LEN)
    throw new SealError('INVALID_ARGUMENT', `DEK has ${dek.length} bytes, want ${DEK_LEN}`);
  if (segmentId.length !== ID_LEN) {
    throw new SealError('INVALID_ARGUMENT', `segment id has ${segmentId.length} bytes, want ${ID_LEN}`);
  }
  return {
    recordKey: provider.hkdf('sha512', dek, segmentId, RECORD_KEY_INFO, SEGMENT_KEY_LEN),
    commitment: provider.hkdf('sha512', dek, segmentId, KEY_COMMITMENT_INFO, SEGMENT_KEY_LEN),
  };
}

/** FORMAT.md §3.1: key_id = H(SubjectPublicKeyInfo DER). */
export function recipientKeyId(provider: CryptoProvider, publicKey: PublicKey): Uint8Array {
  return provider.digest('sha256', publicKey.spkiDer());
}
