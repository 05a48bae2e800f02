/**
 * What every auditor command that releases plaintext (`decrypt`, `sessions`, `commands`, `text`,
 * `replay`) does before it reads, in one place:
 *
 * 1. the same trust options as `verify` (addReadTrustOptions), and `--no-verify`;
 * 2. verify the source (src/audit/verified-source.ts): a failure is exit 1 with every failure named as
 *    `verify` names it, and a hint about `--no-verify`; `--no-verify` is a loud warning;
 * 3. log the read as an audit event (src/audit/auditor-read.ts), or say that it was not logged.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CryptoProvider } from '../crypto/index.js';
import { AuditError } from '../audit/errors.js';
import { logAuditorRead, type AuditorRead } from '../audit/auditor-read.js';
import type { LogSource } from '../audit/source.js';
import {
  SourceNotVerifiedError,
  verifyBeforeRead,
  type ReadTrust,
  type ReadVerification,
} from '../audit/verified-source.js';
import { loadTrustedKeys } from '../audit/verify/trust.js';
import type { VerifyReport } from '../audit/verify/verifier.js';
import { EXIT, UsageError } from './errors.js';
import { parseHeartbeatSeconds, progressBar } from './commands/verify.js';

/** The options addReadTrustOptions adds, as commander parses them. */
export interface ReadTrustCliOptions {
  readonly keys?: string;
  readonly trustBundleSigners?: boolean;
  readonly trustedCheckpoint?: string;
  readonly heartbeatSeconds?: string;
  /** false with `--no-verify` (commander's negated option); true or undefined otherwise. */
  readonly verify?: boolean;
}

/** Adds `--keys`, `--trust-bundle-signers`, `--trusted-checkpoint`, `--heartbeat-seconds`, `--no-verify`. */
export function addReadTrustOptions(command: Command): Command {
  return command
    .option(
      '--keys <dir>',
      "the checkpoint signers' public keys (PEM files, or one file): the source is verified against them before anything is read",
    )
    .option(
      '--trust-bundle-signers',
      'a bundle without --keys: verify against its own keys/signers.json (integrity only, origin not verified)',
    )
    .option('--trusted-checkpoint <file>', 'a signed checkpoint you retained: the log must extend it')
    .option('--heartbeat-seconds <n>', "the gate's heartbeat interval, as for verify", '60')
    .option(
      '--no-verify',
      'read without verifying the source first (warned, and recorded in the audit event)',
    );
}

const note = (text: string): void => {
  process.stderr.write(`sealgate: ${text}\n`);
};

/** The ReadTrust of the command line (keys loaded; a bad --keys is exit 2). */
export function readTrust(provider: CryptoProvider, opts: ReadTrustCliOptions): ReadTrust {
  const heartbeatSeconds = parseHeartbeatSeconds(opts.heartbeatSeconds);
  let trustedCheckpoint: string | undefined;
  if (opts.trustedCheckpoint !== undefined) {
    try {
      trustedCheckpoint = readFileSync(opts.trustedCheckpoint, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--trusted-checkpoint ${opts.trustedCheckpoint}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  try {
    return {
      ...(opts.keys !== undefined ? { trustedSigners: loadTrustedKeys(provider, opts.keys) } : {}),
      ...(opts.trustBundleSigners ? { trustBundleSigners: true } : {}),
      ...(trustedCheckpoint !== undefined ? { trustedCheckpoint } : {}),
      ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}),
    };
  } catch (err) {
    if (err instanceof AuditError) throw new UsageError(err.message);
    throw err;
  }
}

/** The failure lines, as `sealgate verify` prints them. */
export function failureLines(report: VerifyReport): string[] {
  const out = report.failures.map((f) => `  FAIL ${f.code} ${f.location}: ${f.message}`);
  const total = Object.values(report.failureCounts).reduce((a, b) => a + b, 0);
  if (total > report.failures.length)
    out.push(`  … ${total - report.failures.length} more (sealgate verify --json lists them)`);
  return out;
}

/**
 * Verifies `source` for `command` (e.g. "decrypt") as the command line asks. Returns the verification to
 * read under, or the exit status to end with (1: the source failed verification; the failures, and the
 * hint about --no-verify, are on stderr). A missing or unusable trust root is a UsageError (exit 2),
 * as for `verify`.
 */
export function verifyForRead(
  provider: CryptoProvider,
  source: LogSource,
  opts: ReadTrustCliOptions,
  command: string,
): ReadVerification | number {
  if (opts.verify === false) {
    if (opts.keys !== undefined || opts.trustBundleSigners || opts.trustedCheckpoint !== undefined)
      throw new UsageError('--no-verify contradicts --keys, --trust-bundle-signers and --trusted-checkpoint');
    note(
      `WARNING: --no-verify: ${source.path} was NOT verified; what ${command} prints may come from a ` +
        'log that was altered, truncated or forged (each record is still checked by its tag)',
    );
    return verifyBeforeRead(provider, source, {}, { noVerify: true });
  }
  const trust = readTrust(provider, opts);
  const bar = progressBar(`${command}: verify`);
  try {
    const v = verifyBeforeRead(provider, source, trust, {
      onProgress: (p) => bar.update(p.done, p.total, p.phase),
    });
    bar.stop();
    if (v.verified && v.result === 'INTEGRITY_ONLY')
      note(
        "notice: verified against the bundle's own signer keys (--trust-bundle-signers): integrity only, origin not verified",
      );
    const unsigned = v.report?.warnings.find((w) => w.code === 'ENTRIES_AFTER_LAST_CHECKPOINT');
    if (unsigned) note(`notice: ${unsigned.message}; they are read as their tags authenticate them`);
    return v;
  } catch (err) {
    bar.stop();
    if (err instanceof SourceNotVerifiedError) {
      const lines = [
        `${command} refused: ${err.message}; nothing was read`,
        ...failureLines(err.report),
        `(run "sealgate verify" for the full report; --no-verify reads it anyway, unverified, and the audit event says so)`,
      ];
      process.stderr.write(`sealgate: ${lines.join('\n')}\n`);
      return EXIT.checkFailed;
    }
    if (err instanceof AuditError) {
      const hint =
        err.code === 'TRUST_ROOT_MISSING' ? ` (or --no-verify to ${command} without verifying)` : '';
      throw new UsageError(`${err.message}${hint}`);
    }
    throw err;
  }
}

/**
 * Logs the read (see src/audit/auditor-read.ts); a bundle read with no spool gets a notice. A spool that
 * cannot be written is a UsageError (exit 2), and the caller has read nothing yet.
 */
export function logRead(read: AuditorRead): void {
  let spools: readonly string[];
  try {
    spools = logAuditorRead(read).spools;
  } catch (err) {
    if (err instanceof AuditError) throw new UsageError(err.message);
    throw err;
  }
  if (spools.length === 0)
    note(
      `notice: this ${read.action} of a bundle was not logged to a gate (give --audit-spool DIR to spool its audit event)`,
    );
}
