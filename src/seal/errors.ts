/**
 * One error type for the seal domain (Merkle log, proofs, persisted tree state), with a closed set of
 * codes. Tests assert on `code`; the CLI prints `message`. A stack trace is for bugs only.
 */
export type SealErrorCode =
  /** An inclusion proof is malformed or does not fit the claimed index and tree size. */
  | 'INCLUSION_PROOF_INVALID'
  /** A consistency proof is malformed or does not fit the claimed tree sizes. */
  | 'CONSISTENCY_PROOF_INVALID'
  /** A proof was well formed, but the root it yields differs from the root it was checked against. */
  | 'ROOT_MISMATCH'
  /** Persisted tree state cannot be decoded: wrong length, impossible size. */
  | 'INVALID_TREE_STATE'
  /** A caller passed an out-of-range index or size, or a hash of the wrong length. */
  | 'INVALID_ARGUMENT'
  /** An entry's bytes do not decode (docs/FORMAT.md §3): truncated, trailing bytes, bad field. */
  | 'MALFORMED_ENTRY'
  /** An authenticated record's plaintext does not match its type's payload (FORMAT.md §3.2.1). */
  | 'MALFORMED_PAYLOAD'
  /** A record was sealed after the segment's FINAL record. */
  | 'SEGMENT_FINALIZED'
  /** The segment holds its 2^20 records (FORMAT.md §3.2): roll over to a new segment. */
  | 'SEGMENT_FULL'
  /** No recipient entry of the segment header names the given private key. */
  | 'NO_RECIPIENT_FOR_KEY'
  /** RSA-OAEP unwrapping of the DEK failed, or yielded something that is not a 32-byte DEK. */
  | 'KEY_UNWRAP_FAILED'
  /** The unwrapped DEK does not yield the header's key commitment (FORMAT.md §4). */
  | 'KEY_COMMITMENT_MISMATCH'
  /** A record names another segment than the one opened. */
  | 'SEGMENT_MISMATCH'
  /** A record's GCM tag does not verify under the segment key, header hash and its metadata. */
  | 'RECORD_AUTHENTICATION_FAILED'
  /** A checkpoint body is not a C2SP tlog-checkpoint (FORMAT.md §5.1): bad size, root or origin line. */
  | 'CHECKPOINT_MALFORMED'
  /** The signer refused a checkpoint inconsistent with the last one it signed (FORMAT.md §5.2). */
  | 'CHECKPOINT_INCONSISTENT'
  /** Signing a checkpoint failed (key or token unusable, or the signed state could not be persisted). */
  | 'CHECKPOINT_SIGN_FAILED'
  /** The signer's persisted `signed.state` cannot be decoded (FORMAT.md §6). */
  | 'CHECKPOINT_STATE_INVALID'
  /** A signed note is not a C2SP signed-note (FORMAT.md §5.2): layout, base64, control characters. */
  | 'NOTE_MALFORMED'
  /** A signature line from a trusted key does not verify. */
  | 'NOTE_SIGNATURE_INVALID'
  /** No signature line of the note is from a trusted key. */
  | 'NOTE_UNKNOWN_SIGNER'
  /** The store directory holds no store (no LOG file), or is not empty where one was to be created. */
  | 'STORE_NOT_FOUND'
  /** The store's files are inconsistent or not in the sealgate-store-v1 format (FORMAT.md §6). */
  | 'STORE_CORRUPT'
  /** The store belongs to another log origin than the one configured. */
  | 'STORE_ORIGIN_MISMATCH'
  /** Another live writer holds the store's writer.lock. */
  | 'STORE_LOCKED'
  /** A write or fsync failed; the store accepts nothing more (fail closed). */
  | 'STORE_FAILED'
  /** A write was attempted on a read-only or closed store. */
  | 'STORE_NOT_WRITABLE'
  /** The log failed (store, sealing or signing) or was closed, and accepts nothing more (fail closed). */
  | 'LOG_FAILED'
  /** A record was offered for a session that has ended. */
  | 'SESSION_ENDED';

export class SealError extends Error {
  override readonly name = 'SealError';
  constructor(
    readonly code: SealErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
