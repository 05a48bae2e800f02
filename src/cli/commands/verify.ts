/**
 * `sealgate verify <bundle|store>`: docs/FORMAT.md §8, offline, public keys only. Prints every failure
 * with its location, the warnings, and a summary with each segment's provenance (was it sealed in FIPS
 * mode?). Exit 0: verified, or with --trust-bundle-signers intact but of unverified origin (the result
 * line says which); 1: any failure; 2: the input could not be read (not a store or a bundle, an
 * unreadable file, an unusable --keys) or there is no trust root (neither --keys nor
 * --trust-bundle-signers: the auditor's command line lacks what verification needs, which is not a
 * finding about the bundle, so it is not 1).
 */
import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { CryptoProvider } from '../../crypto/index.js';
import { AuditError } from '../../audit/errors.js';
import { openLogSource } from '../../audit/source.js';
import type { SegmentProvenance } from '../../audit/verify/segments.js';
import { loadTrustedKeys } from '../../audit/verify/trust.js';
import { verifyLog, type VerifyProgress, type VerifyReport } from '../../audit/verify/verifier.js';
import { SealError } from '../../seal/errors.js';
import { EXIT, UsageError } from '../errors.js';

export interface VerifyCliOptions {
  readonly path: string;
  readonly keys?: string;
  readonly trustBundleSigners?: boolean;
  readonly trustedCheckpoint?: string;
  readonly heartbeatSeconds?: string;
  readonly json?: boolean;
}

/** Per-segment provenance lines are printed up to this many segments; --json always has them all. */
const MAX_SEGMENT_LINES = 100;

/** Known input errors become one-line usage errors (exit 2); anything else is a bug. */
export function asUsageError(err: unknown): never {
  if (err instanceof AuditError || err instanceof SealError) throw new UsageError(err.message);
  throw err;
}

function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${what} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

export function parseHeartbeatSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--heartbeat-seconds must be a positive number, not ${JSON.stringify(text)}`);
  return n;
}

/** A progress bar on stderr, only when stderr is a terminal (never in pipes, logs or tests). */
export function progressBar(label: string): {
  update(done: number, total: number, phase: string): void;
  stop(): void;
} {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {phase} [{bar}] {percentage}% {value}/{total}`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, phase) {
      if (!started) {
        bar.start(total, done, { phase });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, { phase });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export async function verifyCommand(provider: CryptoProvider, opts: VerifyCliOptions): Promise<number> {
  const heartbeatSeconds = parseHeartbeatSeconds(opts.heartbeatSeconds);
  const trustedCheckpoint = opts.trustedCheckpoint
    ? readTextFile(opts.trustedCheckpoint, '--trusted-checkpoint')
    : undefined;
  let report: VerifyReport;
  const bar = progressBar('verify');
  try {
    const trustedSigners = opts.keys ? loadTrustedKeys(provider, opts.keys) : undefined;
    const source = openLogSource(opts.path);
    try {
      report = verifyLog(provider, source, {
        ...(trustedSigners ? { trustedSigners } : {}),
        ...(opts.trustBundleSigners ? { trustBundleSigners: true } : {}),
        ...(trustedCheckpoint !== undefined ? { trustedCheckpoint } : {}),
        ...(heartbeatSeconds !== undefined ? { heartbeatSeconds } : {}),
        onProgress: (p: VerifyProgress) => bar.update(p.done, p.total, p.phase),
      });
    } finally {
      source.close();
    }
  } catch (err) {
    asUsageError(err);
  } finally {
    bar.stop();
  }
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  return report.ok ? EXIT.ok : EXIT.checkFailed;
}

function provenanceKey(p: SegmentProvenance): string {
  if (p.fips === undefined && p.backend === undefined)
    return 'no provenance in this bundle (header before its range)';
  const parts = [
    `fips=${p.fips === true ? 'yes' : 'NO'}`,
    `backend=${p.backend ?? '?'}`,
    `library=${p.library ?? '?'}`,
  ];
  if (p.fipsProvider) parts.push(`fipsProvider=${p.fipsProvider} ${p.fipsProviderVersion ?? ''}`.trim());
  if (p.fipsModuleSha256) parts.push(`module=${p.fipsModuleSha256.slice(0, 16)}…`);
  for (const [k, v] of Object.entries(p.other)) parts.push(`${k}=${String(v)}`);
  return parts.join(' ');
}

export function render(r: VerifyReport): string {
  const out: string[] = [];
  const s = r.source;
  const what =
    s.kind === 'store'
      ? 'store'
      : s.mode === 'complete'
        ? 'complete bundle'
        : s.mode === 'sessions'
          ? `partial bundle (sessions ${s.sessions?.join(', ')})`
          : `partial bundle (leaves ${s.range?.from}..${(s.range?.to ?? 1) - 1})`;
  const c = r.counts;
  out.push(`sealgate verify: ${what} ${s.path}`);
  out.push(`  origin ${s.origin}, tree size ${s.treeSize}`);
  out.push(
    `  ${c.entries} entries, ${c.checkpoints} checkpoints, ${c.segments} segments, ${c.records} records, ${c.sessions} sessions, ${c.runs} runs, ${c.heartbeats} heartbeats`,
  );
  const keys = r.signers.map(
    (k) =>
      `${k.keyId} (${k.via}${k.validAfter >= 0 ? ` after leaf ${k.validAfter}` : ''}${k.retiredAfter !== undefined ? `, retired after leaf ${k.retiredAfter}` : ''})`,
  );
  out.push(
    r.trust === 'pinned'
      ? `  signers: pinned by --keys: ${keys.join(', ')}`
      : `  signers: NOT PINNED (--trust-bundle-signers): trusting the bundle's own keys/signers.json: ${keys.join(', ') || 'none'}`,
  );
  if (r.failures.length > 0) {
    const total = Object.values(r.failureCounts).reduce((a, b) => a + b, 0);
    out.push('', `failures (${total}):`);
    for (const f of r.failures) out.push(`  FAIL ${f.code} ${f.location}: ${f.message}`);
    const cut = total - r.failures.length;
    if (cut > 0)
      out.push(
        `  … ${cut} more of the same codes (counts: ${Object.entries(r.failureCounts)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}); --json lists 100 per code`,
      );
  }
  if (r.warnings.length > 0) {
    out.push('', 'warnings:');
    for (const w of r.warnings) out.push(`  WARN ${w.code} ${w.location}: ${w.message}`);
  }
  out.push('', 'provenance:');
  const groups = new Map<string, number>();
  for (const p of r.provenance) groups.set(provenanceKey(p), (groups.get(provenanceKey(p)) ?? 0) + 1);
  for (const [key, n] of groups) out.push(`  ${n} segment${n === 1 ? '' : 's'}: ${key}`);
  if (r.provenance.length <= MAX_SEGMENT_LINES) {
    for (const p of r.provenance) {
      out.push(
        `    segment ${p.segment} session ${p.session ?? '?'} ${p.fips === true ? 'FIPS' : p.fips === false ? 'NOT FIPS' : 'unknown'} ${p.records} records, ${p.state}${p.created ? `, created ${p.created}` : ''}`,
      );
    }
  } else {
    out.push(`    (${r.provenance.length} segments: --json lists each)`);
  }
  out.push(`  ${r.summary}`);
  const failed = Object.values(r.failureCounts).reduce((a, b) => a + b, 0);
  out.push('', resultLine(r, failed));
  return `${out.join('\n')}\n`;
}

/** The last line; scripts that read text can match `^result: VERIFIED$` and nothing else means verified. */
function resultLine(r: VerifyReport, failed: number): string {
  if (r.result === 'VERIFIED') return 'result: VERIFIED';
  if (r.result === 'INTEGRITY_ONLY')
    return "result: INTEGRITY ONLY, origin not verified: unchanged since signed by the bundle's own keys; pass --keys with the gate's signer keys to verify where it came from";
  const unpinned = r.trust === 'pinned' ? '' : '; origin not verified either';
  return `result: FAILED (${failed} failure${failed === 1 ? '' : 's'}${unpinned})`;
}
