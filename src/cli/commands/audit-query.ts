/**
 * What `sealgate sessions` and `sealgate commands` share (docs/AUDITOR.md §9): the source and key
 * (as `decrypt` takes them), the filters, the audit event of every run (FORMAT.md §6.1), the index
 * (src/audit/index), progress on a TTY, and the notes on stderr.
 */
import { loadKey, openSource } from './decrypt.js';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { CryptoProvider } from '../../crypto/index.js';
import { DecryptError } from '../../audit/decrypt.js';
import { AuditError } from '../../audit/errors.js';
import { openIndexedLog, type IndexedLog } from '../../audit/index/indexed-log.js';
import { grepPattern, parseTime, sessionPrefix, type Filters } from '../../audit/query.js';
import type { LogSource } from '../../audit/source.js';
import { recipientKeyId } from '../../seal/segment-keys.js';
import { UsageError } from '../errors.js';
import { logRead, verifyForRead, type ReadTrustCliOptions } from '../auditor-read.js';
import type { ReadVerification } from '../../audit/verified-source.js';

export interface AuditQueryOptions extends ReadTrustCliOptions {
  readonly key: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly user?: string;
  readonly target?: string;
  readonly since?: string;
  readonly until?: string;
  readonly session?: string;
  readonly json?: boolean;
  /** commander's `--no-index` sets `index` to false; `--index DIR` to the directory. */
  readonly index?: string | boolean;
  readonly rebuild?: boolean;
  readonly auditSpool?: string;
}

export function note(text: string): void {
  process.stderr.write(`sealgate: ${text}\n`);
}

/** The filters from the options; a bad time, pattern or session id is a usage error. */
export function filtersOf(
  opts: AuditQueryOptions,
  grep?: { pattern?: string; ignoreCase?: boolean },
): Filters {
  try {
    const now = new Date();
    return {
      ...(opts.user !== undefined ? { user: opts.user } : {}),
      ...(opts.target !== undefined ? { target: opts.target } : {}),
      ...(opts.since !== undefined ? { since: parseTime(opts.since, '--since', now) } : {}),
      ...(opts.until !== undefined ? { until: parseTime(opts.until, '--until', now) } : {}),
      ...(opts.session !== undefined ? { session: sessionPrefix(opts.session) } : {}),
      ...(grep?.pattern !== undefined ? { grep: grepPattern(grep.pattern, Boolean(grep.ignoreCase)) } : {}),
    };
  } catch (err) {
    if (err instanceof AuditError) throw new UsageError(err.message);
    throw err;
  }
}

/** verifyForRead's refusal (exit 1, already reported on stderr), carried out of the index's callback. */
class ReadRefused extends Error {
  constructor(readonly status: number) {
    super('read refused');
  }
}

function progressBar(): { update(n: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(n, total) {
      if (total === 0) return;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'indexing [{bar}] {percentage}% | {value}/{total} entries | {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(Math.min(n, total));
    },
    stop: () => bar?.stop(),
  };
}

export interface QueryRun {
  readonly log: IndexedLog;
  readonly source: LogSource;
}

/**
 * Opens the source and the key, logs the run, and derives (or reads from the index) the sessions and
 * commands. A decryption failure is reported and exits 1, as decrypt's does.
 */
export async function runQuery(
  provider: CryptoProvider,
  action: 'sessions' | 'commands',
  sourcePath: string,
  opts: AuditQueryOptions,
  details: Record<string, unknown>,
  use: (run: QueryRun) => Promise<number> | number,
): Promise<number> {
  const key = await loadKey(provider, opts);
  const source = openSource(sourcePath);
  const bar = progressBar();
  try {
    const keyId = Buffer.from(recipientKeyId(provider, key.publicKey)).toString('hex');
    const indexDir = typeof opts.index === 'string' ? opts.index : undefined;
    const fips = provider.info().fipsMode;
    const logRun = (verification: ReadVerification, extra: Record<string, unknown> = {}): void =>
      logRead({
        action,
        source,
        keyId,
        verification,
        fips,
        ...(opts.auditSpool !== undefined ? { auditSpool: opts.auditSpool } : {}),
        details: {
          ...details,
          index: opts.index === false ? 'none' : indexDir ? resolve(indexDir) : 'default',
          ...extra,
        },
      });
    let logged = false;
    let log: IndexedLog;
    try {
      log = await openIndexedLog({
        provider,
        source,
        key,
        useIndex: opts.index !== false,
        ...(indexDir ? { dir: resolve(indexDir) } : {}),
        rebuild: Boolean(opts.rebuild),
        onProgress: (n, total) => bar.update(n, total),
        // Verify before read, then log the read (FORMAT.md §6.1), before any entry is decrypted.
        beforeRead: () => {
          const v = verifyForRead(provider, source, opts, action);
          if (typeof v === 'number') throw new ReadRefused(v);
          logRun(v);
          logged = true;
          return v.verified;
        },
        requireVerified: opts.verify !== false,
      });
    } catch (err) {
      bar.stop();
      if (err instanceof ReadRefused) return err.status;
      if (err instanceof DecryptError) {
        const stop = err.index === undefined ? '' : '; nothing was indexed';
        note(`${err.message} [${err.code}]${stop}`);
        return 1;
      }
      if (err instanceof AuditError) throw new UsageError(err.message);
      throw err;
    }
    // Answered from the index alone: no entry was read, and the index was built from a verified read
    // (or verification was waived with --no-verify). The read of the index is logged all the same.
    if (!logged)
      logRun({ verified: false }, { index_current: true, index_verified: Boolean(log.indexVerified) });
    bar.stop();
    if (log.use === 'rebuilt')
      note(`index ${log.dir ?? ''}: rebuilt (${log.reason ?? 'it no longer matched the log'})`);
    if (log.use === 'none' && log.reason !== '--no-index') note(`no index: ${log.reason ?? ''}`);
    const s = log.summary;
    if (s && s.segmentsNotAddressed > 0) {
      note(`${s.segmentsNotAddressed} segment(s) are not addressed to this key and were not read`);
    }
    return await use({ log, source });
  } finally {
    bar.stop();
    source.close();
  }
}

/** `1h 02m`, `3m 07s`, `12s`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** `2026-01-05 10:00:00` (UTC) from the ISO shape. */
export function shortTime(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '';
}

/** Bytes with a binary unit. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]!}`;
}

/** No colour codes: people and scripts both read the tables. */
export const PLAIN_TABLE = { head: [], border: [], compact: true };
