/**
 * One error type for the crypto domain, with a closed set of codes. Tests assert on `code`; the CLI
 * prints `message`. A stack trace is for bugs only.
 */
export type CryptoErrorCode =
  /** A FIPS-mode (or always-on) policy rule refused the operation. `rule` names it. */
  | 'POLICY_REFUSED'
  /** Authentication failed: a GCM tag, an OAEP padding check, or a key commitment. */
  | 'AUTHENTICATION_FAILED'
  /** Input is malformed: wrong length, undecodable key, bad encoding. */
  | 'INVALID_INPUT'
  /** A key reference cannot be parsed or resolved. */
  | 'KEY_REFERENCE'
  /** The key exists but is of the wrong type for the operation. */
  | 'WRONG_KEY_TYPE'
  /** The backend does not offer this operation or mechanism. */
  | 'UNSUPPORTED'
  /** A known-answer self-test failed. */
  | 'SELF_TEST_FAILED'
  /** The backend failed (I/O, token removed, library error). */
  | 'BACKEND'
  /** A token refused the login: wrong PIN, PIN locked or expired, or no PIN source for a token that needs one. */
  | 'LOGIN_FAILED';

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
    readonly rule?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The names of the policy rules, as printed in refusals and listed in docs/FIPS.md. */
export type PolicyRule =
  | 'fips.no-x25519'
  | 'fips.no-ed25519'
  | 'fips.no-ed448'
  | 'fips.no-x448'
  | 'fips.no-chacha20'
  | 'fips.no-md5'
  | 'fips.no-sha1-signatures'
  | 'fips.no-ssh-rsa'
  | 'fips.no-dh-group-exchange'
  | 'fips.approved-ssh-algorithm'
  | 'fips.no-compression'
  | 'fips.ecdsa-approved-curve'
  | 'suite.oaep-sha256-only'
  | 'suite.rsa-min-2048'
  | 'suite.gcm-96-bit-iv'
  | 'suite.gcm-128-bit-tag'
  | 'suite.aes-256-key'
  | 'suite.approved-hash'
  | 'suite.approved-key-type';

export function refuse(rule: PolicyRule, message: string): never {
  throw new CryptoError('POLICY_REFUSED', `${message} [${rule}]`, rule);
}
