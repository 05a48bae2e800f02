/**
 * One error type for the SSH gate, with a closed set of codes. The message of a refusal is written for
 * the person at the `ssh` prompt ("unknown target web9"); it never holds a secret, so the operational log
 * may carry it too. Tests assert on `code`.
 */
export type GateErrorCode =
  /** The login names no configured user. */
  | 'UNKNOWN_USER'
  /** The login names a target that is not configured. */
  | 'UNKNOWN_TARGET'
  /** The user may not reach the target. */
  | 'TARGET_DENIED'
  /** A plain `user` login, but the user may reach several targets (or none). */
  | 'TARGET_REQUIRED'
  /** A ProxyJump's inner login names another gate user, or another target, than the jump (jump.ts). */
  | 'JUMP_LOGIN_MISMATCH'
  /** The target's TCP port does not answer, or the handshake times out. */
  | 'TARGET_UNREACHABLE'
  /** The target presented a host key that is not pinned for it (or one pinned as revoked). */
  | 'HOST_KEY_MISMATCH'
  /** No usable pinned host key for the target: missing, empty or unreadable known_hosts. */
  | 'HOST_KEY_UNPINNED'
  /** The target offers no algorithm that the policy allows on the upstream leg. */
  | 'NO_COMMON_ALGORITHM'
  /** The target refused the gate's upstream key. */
  | 'UPSTREAM_AUTH_FAILED'
  /** Any other failure of the upstream connection. */
  | 'UPSTREAM_FAILED'
  /** The sealed log cannot record, and the target is fail-closed. */
  | 'RECORDING_FAILED'
  /** The gate cannot start: a key, a file or an algorithm list is unusable. */
  | 'GATE_CONFIG';

export class GateError extends Error {
  override readonly name = 'GateError';
  constructor(
    readonly code: GateErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Control characters would let a login name drive the user's terminal; show them escaped. */
export function printable(text: string): string {
  const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, hex);
}

/** Login names in the operational log are cut to this many characters (a client may send 64 KiB). */
export const MAX_LOGGED_LOGIN = 64;

/** A client-chosen login name for the log: printable, and at most MAX_LOGGED_LOGIN characters. */
export function printableLogin(login: string): string {
  if (login.length <= MAX_LOGGED_LOGIN) return printable(login);
  return `${printable(login.slice(0, MAX_LOGGED_LOGIN))}…(${Buffer.byteLength(login)} bytes)`;
}
