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
  | 'INVALID_ARGUMENT';

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
