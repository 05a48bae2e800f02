/**
 * Every auditor read that releases plaintext is itself an audit event (docs/FORMAT.md §6.1), spooled
 * before anything is read:
 *
 * - a **store**: into `<store>/audit-spool`, which the gate seals into the log; if it cannot be
 *   written, the read is refused (fail closed);
 * - a **bundle**: into the spool the auditor names (`--audit-spool DIR`), or into none, in which case
 *   the result says so and the caller tells the user that this read was not logged to a gate.
 *
 * `decrypt`, `sessions`, `commands`, `replay` and `text` all record their reads through logAuditorRead.
 */
import { resolve } from 'node:path';
import { auditEvent, spoolAuditEvent, SPOOL_DIR, type AuditEvent } from '../seal/audit-spool.js';
import { AuditError } from './errors.js';
import type { LogSource } from './source.js';
import type { ReadVerification } from './verified-source.js';

/** The auditor reads that are logged. */
export type ReadAction = 'decrypt' | 'sessions' | 'commands' | 'replay' | 'text';

export interface AuditorRead {
  readonly action: ReadAction;
  readonly source: LogSource;
  /** Hex key id (SHA-256 of the SPKI DER) of the recipient key that opens the segments. */
  readonly keyId: string;
  /** Whether the read was verified first (verifyBeforeRead), or skipped by `--no-verify`. */
  readonly verification: ReadVerification;
  /** The crypto provider ran in FIPS mode. */
  readonly fips: boolean;
  /** Where the plaintext goes: a file path, or undefined for stdout. */
  readonly output?: string;
  /** An extra spool to write the event to (`--audit-spool DIR`; the only one for a bundle). */
  readonly auditSpool?: string;
  /** What else the command wants on record (a session filter, a format). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditorReadLogged {
  readonly event: AuditEvent;
  /** The spool directories written. Empty: a bundle read with no `--audit-spool` (not logged to a gate). */
  readonly spools: readonly string[];
}

/** The event's details: what was read, with which key, verified or not, to where. */
export function auditorReadDetails(read: AuditorRead): Record<string, unknown> {
  const v = read.verification;
  return {
    source: resolve(read.source.path),
    source_kind: read.source.kind,
    origin: read.source.origin,
    key_id: read.keyId,
    ...read.details,
    output: read.output !== undefined ? resolve(read.output) : 'stdout',
    fips: read.fips,
    verified: v.verified,
    ...(v.verified
      ? { verify_result: v.result, trust: v.report.trust, tree_size: v.report.source.treeSize }
      : {}),
  };
}

/**
 * Spools the audit event of `read`. Throws AuditError AUDIT_LOG_FAILED (naming the directory and the
 * errno) when a spool cannot be written: the caller must then release nothing.
 */
export function logAuditorRead(read: AuditorRead): AuditorReadLogged {
  const event = auditEvent(read.action, auditorReadDetails(read));
  const spools = [
    ...(read.source.kind === 'store' ? [resolve(read.source.path, SPOOL_DIR)] : []),
    ...(read.auditSpool !== undefined ? [resolve(read.auditSpool)] : []),
  ];
  for (const dir of spools) {
    try {
      spoolAuditEvent(dir, event);
    } catch (err) {
      throw new AuditError(
        'AUDIT_LOG_FAILED',
        `cannot log this ${read.action} into ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); nothing was read`,
        { cause: err },
      );
    }
  }
  return { event, spools };
}
