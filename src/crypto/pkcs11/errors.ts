/**
 * PKCS#11 return values, sorted by what the session pool does about them. pkcs11js throws a
 * Pkcs11Error whose message is the CKR_ name; anything else (a TypeError, a dlopen failure) has none.
 */

/** The CKR_ name of a pkcs11js error, or undefined if the error did not come from the token. */
export function ckrName(err: unknown): string | undefined {
  const message = (err as Error | undefined)?.message;
  if (typeof message !== 'string') return undefined;
  return /^(CKR_[A-Z0-9_]+)/.exec(message)?.[1];
}

/** The session is gone (closed by another caller, or by the token): open another and try again. */
export const SESSION_LOST = new Set(['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED']);

/** The login is gone (logged out elsewhere in this process, or the token's timeout): log in again. */
export const LOGIN_LOST = new Set(['CKR_USER_NOT_LOGGED_IN']);

/**
 * The token or its connection is gone (removed, network HSM restarted): find the token again by its
 * URI attributes, since its slot id may have changed, and log in again.
 */
export const TOKEN_LOST = new Set([
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SLOT_ID_INVALID',
]);

/** A cached object handle no longer names the object: find it again by its URI attributes. */
export const HANDLE_LOST = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);

/** The token does not offer the mechanism, or not with these parameters. */
export const MECHANISM_REFUSED = new Set([
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  // SoftHSM2 2.6.1 answers this at C_DecryptInit for OAEP with anything but SHA-1 (BRIEF section 5).
  'CKR_ARGUMENTS_BAD',
  'CKR_FUNCTION_NOT_SUPPORTED',
]);

/** The key may not do this (CKA_SIGN/CKA_DECRYPT false) or is of the wrong type for the mechanism. */
export const KEY_REFUSED = new Set([
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_KEY_SIZE_RANGE',
]);

/** The ciphertext does not decrypt: to the caller, the same as a bad OAEP padding in software. */
export const CIPHERTEXT_REFUSED = new Set([
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
]);

/** The token refused the PIN; never retried, so that a loop cannot lock the token. */
export const PIN_REFUSED = new Set([
  'CKR_PIN_INCORRECT',
  'CKR_PIN_INVALID',
  'CKR_PIN_LEN_RANGE',
  'CKR_PIN_LOCKED',
  'CKR_PIN_EXPIRED',
]);
