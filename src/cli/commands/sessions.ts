/**
 * `sealgate sessions SOURCE --key …`: one row per session (docs/AUDITOR.md §9.1), as a table or, with
 * `--json`, as JSON lines (one SessionSummary per line). Filters: `--user` (gate user), `--target`,
 * `--since` / `--until` (the session was active in the window), `--session` (an id or a prefix).
 */
import Table from 'cli-table3';
import { jsonLine, printableCell } from '../printable.js';
import type { CryptoProvider } from '../../crypto/index.js';
import { sessionMatches } from '../../audit/query.js';
import type { SessionSummary } from '../../audit/sessions.js';
import { EXIT } from '../errors.js';
import {
  filtersOf,
  formatBytes,
  formatDuration,
  PLAIN_TABLE,
  runQuery,
  shortTime,
  type AuditQueryOptions,
} from './audit-query.js';
import { OutputWriter } from './output.js';

export type SessionsCliOptions = AuditQueryOptions;

function exitText(r: SessionSummary): string {
  if (r.exit_signal) return `sig ${r.exit_signal}`;
  return r.exit_status === null ? '' : String(r.exit_status);
}

function stateText(r: SessionSummary): string {
  if (r.state === 'ended') return r.end_reason ?? 'ended';
  return r.crashed ? 'open (crash)' : 'open';
}

function fipsText(r: SessionSummary): string {
  return r.fips === null ? '?' : r.fips ? 'yes' : 'NO';
}

export function sessionsTable(rows: readonly SessionSummary[]): string {
  const table = new Table({
    head: [
      'session',
      'gate user',
      'target',
      'login',
      'client',
      'start (UTC)',
      'duration',
      'end',
      'exit',
      'in',
      'out',
      'cmds',
      'fips',
    ],
    style: PLAIN_TABLE,
  });
  for (const r of rows) {
    table.push(
      [
        r.session.slice(0, 12),
        r.gate_user,
        r.target,
        r.login,
        r.client,
        shortTime(r.start),
        formatDuration(r.duration_s),
        stateText(r),
        exitText(r),
        formatBytes(r.bytes_in),
        formatBytes(r.bytes_out),
        String(r.commands),
        fipsText(r),
      ].map(printableCell),
    );
  }
  return `${table.toString()}\n`;
}

export async function sessionsCommand(
  provider: CryptoProvider,
  sourcePath: string,
  opts: SessionsCliOptions,
): Promise<number> {
  const filters = filtersOf(opts);
  return runQuery(provider, 'sessions', sourcePath, opts, { filters: describe(opts) }, async ({ log }) => {
    const rows = log.sessions.filter((r) => sessionMatches(r, filters));
    const out = new OutputWriter();
    if (opts.json) {
      for (const r of rows) await out.write(jsonLine(r));
    } else if (rows.length === 0) {
      process.stderr.write('sealgate: no session matches\n');
    } else {
      await out.write(sessionsTable(rows));
    }
    await out.close();
    return EXIT.ok;
  });
}

/** The filters as given, for the audit event. */
export function describe(
  opts: AuditQueryOptions & { grep?: string; ignoreCase?: boolean },
): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  for (const k of ['user', 'target', 'since', 'until', 'session', 'grep', 'ignoreCase'] as const) {
    if (opts[k] !== undefined) f[k === 'ignoreCase' ? 'ignore_case' : k] = opts[k];
  }
  return f;
}
