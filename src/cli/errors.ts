/**
 * How the CLI turns errors into one-line messages and exit statuses. A stack trace is printed only for
 * errors we did not anticipate (bugs).
 */
import { CryptoError, FipsSetupError } from '../crypto/index.js';
import { ConfigError } from '../config/errors.js';
import { AuditError } from '../audit/errors.js';
import { SealError } from '../seal/errors.js';

export const EXIT = {
  ok: 0,
  /** A check ran and failed (self-test, verification). */
  checkFailed: 1,
  /** The user's input is wrong: config, arguments, key files. */
  badInput: 2,
  /** FIPS mode was asked for and cannot be provided. */
  fipsUnavailable: 3,
  /** A bug. */
  internal: 70,
} as const;

/** The command line or the files it names are wrong; the message says how. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function exitStatusFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.badInput;
  if (err instanceof FipsSetupError) return EXIT.fipsUnavailable;
  if (err instanceof ConfigError) return EXIT.badInput;
  // Commands map the seal and audit errors they expect; any other reaching here is still the user's
  // input (a store, a bundle, a key) that could not be used: one line, never a stack trace.
  if (err instanceof SealError || err instanceof AuditError) return EXIT.badInput;
  if (err instanceof CryptoError) {
    return err.code === 'SELF_TEST_FAILED' || err.code === 'AUTHENTICATION_FAILED'
      ? EXIT.checkFailed
      : EXIT.badInput;
  }
  return EXIT.internal;
}

export function describeError(err: unknown): string {
  if (
    err instanceof UsageError ||
    err instanceof FipsSetupError ||
    err instanceof ConfigError ||
    err instanceof CryptoError ||
    err instanceof SealError ||
    err instanceof AuditError
  ) {
    return `sealgate: ${err.message}`;
  }
  const e = err as Error;
  return `sealgate: internal error (a bug; please report it): ${e?.stack ?? String(err)}`;
}

/** Wraps a command action: known errors become a message and an exit status, never a stack trace. */
export function action<A extends unknown[]>(run: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const status = await run(...args);
      process.exitCode = status ?? EXIT.ok;
    } catch (err) {
      process.stderr.write(`${describeError(err)}\n`);
      process.exitCode = exitStatusFor(err);
    }
  };
}
