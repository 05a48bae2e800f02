/**
 * Verify before read: the auditor tools that release plaintext (`decrypt`, `sessions`, `commands`,
 * `text`, `replay`) first run the whole of `verify` (docs/FORMAT.md §8) over the same source, with the
 * same trust root, and refuse when it fails. Only an explicit `noVerify` skips it, and the caller must
 * then say so (a warning, and `verified: false` in its audit event).
 *
 * The source must be read through the same LogSource afterwards: a store source fixes its size when it
 * is opened, so the entries decrypted are those verified (a live gate's later appends are not read).
 */
import type { CryptoProvider, PublicKey } from '../crypto/index.js';
import type { LogSource } from './source.js';
import { verifyLog, type VerifyProgress, type VerifyReport } from './verify/verifier.js';

/** Whom to trust, as `verify` takes it (docs/AUDITOR.md §3.1). */
export interface ReadTrust {
  /** The auditor's pinned checkpoint signers (`--keys`): the trust root. */
  readonly trustedSigners?: readonly PublicKey[];
  /** Bundles only: trust the bundle's own keys/signers.json (integrity only, origin not verified). */
  readonly trustBundleSigners?: boolean;
  /** A retained checkpoint the log must extend (checked against the signers). */
  readonly trustedCheckpoint?: string;
  /** The gate's heartbeat interval (default 60). */
  readonly heartbeatSeconds?: number;
}

export interface VerifyBeforeReadOptions {
  /** Skip verification (`--no-verify`): the result says `verified: false`; the caller warns. */
  readonly noVerify?: boolean;
  readonly onProgress?: (p: VerifyProgress) => void;
}

/** What a read rests on: a passing verification, or none at all by request. */
export type ReadVerification =
  | {
      readonly verified: true;
      /** 'VERIFIED' (pinned signers) or 'INTEGRITY_ONLY' (--trust-bundle-signers). */
      readonly result: 'VERIFIED' | 'INTEGRITY_ONLY';
      readonly report: VerifyReport;
    }
  | { readonly verified: false; readonly report?: undefined };

/** The source failed verification: nothing may be read from it. `report` names every failure. */
export class SourceNotVerifiedError extends Error {
  override readonly name = 'SourceNotVerifiedError';
  readonly code = 'SOURCE_NOT_VERIFIED';
  constructor(readonly report: VerifyReport) {
    const n = Object.values(report.failureCounts).reduce((a, b) => a + b, 0);
    const codes = Object.keys(report.failureCounts).join(', ');
    super(`${report.source.path} failed verification: ${n} failure${n === 1 ? '' : 's'} (${codes})`);
  }
}

/**
 * Verifies `source` as `sealgate verify` would. Returns the passing report, or `{verified: false}` when
 * `opts.noVerify`. Throws SourceNotVerifiedError when any check fails, and AuditError
 * TRUST_ROOT_MISSING / TRUST_INPUT_INVALID (from verifyLog) when `trust` gives no usable root.
 */
export function verifyBeforeRead(
  provider: CryptoProvider,
  source: LogSource,
  trust: ReadTrust,
  opts: VerifyBeforeReadOptions = {},
): ReadVerification {
  if (opts.noVerify === true) return { verified: false };
  const report = verifyLog(provider, source, {
    ...(trust.trustedSigners ? { trustedSigners: trust.trustedSigners } : {}),
    ...(trust.trustBundleSigners ? { trustBundleSigners: true } : {}),
    ...(trust.trustedCheckpoint !== undefined ? { trustedCheckpoint: trust.trustedCheckpoint } : {}),
    ...(trust.heartbeatSeconds !== undefined ? { heartbeatSeconds: trust.heartbeatSeconds } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  if (!report.ok || report.result === 'FAILED') throw new SourceNotVerifiedError(report);
  return { verified: true, result: report.result, report };
}
