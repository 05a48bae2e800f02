/**
 * One error type for the audit tools' *inputs* (a path that is not a store or a bundle, a bundle whose
 * files cannot be read, a bad argument). Verification findings are not errors: they are reported as
 * `VerifyFailure`s (verify/error.ts), so that one run names every failure. The CLI maps an AuditError
 * to exit status 2 and prints its one-line message.
 */
export type AuditErrorCode =
  /** The path does not exist or cannot be read. */
  | 'SOURCE_NOT_FOUND'
  /** The path is neither a store (a `LOG` file) nor a bundle (a `manifest.json`), or its files are unreadable. */
  | 'SOURCE_UNRECOGNISED'
  /** A bundle directory's layout is broken beyond verification (docs/FORMAT.md §7): a file missing, not JSON. */
  | 'BUNDLE_UNREADABLE'
  /** An export selection or option is impossible: empty range, unknown session, no checkpoint yet. */
  | 'EXPORT_INVALID'
  /** The output directory of an export exists and is not empty. */
  | 'OUTPUT_EXISTS'
  /** A trusted key or checkpoint given by the auditor cannot be used (wrong key type, not a note). */
  | 'TRUST_INPUT_INVALID'
  /**
   * Nothing to verify the origin against: no pinned signer keys (`--keys`), and no explicit request to
   * trust the bundle's own keys/signers.json (`--trust-bundle-signers`). Refused before any check runs,
   * so that no report can read as verified.
   */
  | 'TRUST_ROOT_MISSING'
  /** An auditor read could not be logged (its audit event could not be spooled): refused, nothing read. */
  | 'AUDIT_LOG_FAILED';

export class AuditError extends Error {
  override readonly name = 'AuditError';
  constructor(
    readonly code: AuditErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
