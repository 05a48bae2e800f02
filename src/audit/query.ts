/**
 * The filters of `sealgate sessions` and `sealgate commands` (docs/AUDITOR.md §9): pure functions over
 * session rows (sessions.ts) and command lines (index/format.ts). Times compare as ISO 8601 strings of
 * one fixed shape (`2026-01-05T10:00:00.123456Z`, isoMicros), which sort as the instants they name.
 */
import { isoMicros } from './decrypt-event.js';
import { AuditError } from './errors.js';
import type { SessionSummary } from './sessions.js';
import type { CommandLine } from './index/format.js';

const RELATIVE = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };
/** A date, or a date and time with an optional zone: what Date.parse reads reliably. */
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * `--since` / `--until`: ISO 8601 (`2026-01-05`, `2026-01-05T10:00`, `…Z`, `…+01:00`; a date or time
 * without a zone is UTC) or a span before `now` (`90s`, `30m`, `24h`, `7d`, `2w`). Returns the instant
 * as the same ISO shape the rows use.
 */
export function parseTime(text: string, name: string, now: Date = new Date()): string {
  const t = text.trim();
  const rel = RELATIVE.exec(t);
  if (rel) {
    const ms = now.getTime() - Number(rel[1]) * UNIT_MS[rel[2]!]!;
    return isoMicros(BigInt(Math.round(ms)) * 1000n);
  }
  if (ISO.test(t)) {
    const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/.test(t) || !t.includes(':') ? t : `${t}Z`;
    const ms = Date.parse(zoned.includes('T') || !zoned.includes(' ') ? zoned : zoned.replace(' ', 'T'));
    if (!Number.isNaN(ms)) return isoMicros(BigInt(ms) * 1000n);
  }
  throw new AuditError(
    'QUERY_INVALID',
    `${name} "${text}": not an ISO 8601 date or time (2026-01-05, 2026-01-05T10:00Z) nor a span (24h, 7d)`,
  );
}

export interface Filters {
  /** The gate user, exactly. */
  readonly user?: string;
  /** The target name, exactly. */
  readonly target?: string;
  /** ISO instants (parseTime). */
  readonly since?: string;
  readonly until?: string;
  /** A session id or a prefix of one (hex). */
  readonly session?: string;
  /** Commands only: a JavaScript regular expression on the command text. */
  readonly grep?: RegExp;
}

/** A session matches the time window if it was active in it: started before `until`, not ended before `since`. */
export function sessionMatches(row: SessionSummary, f: Filters): boolean {
  if (f.user !== undefined && row.gate_user !== f.user) return false;
  if (f.target !== undefined && row.target !== f.target) return false;
  if (f.session !== undefined && !row.session.startsWith(f.session)) return false;
  if (f.until !== undefined && row.start > f.until) return false;
  if (f.since !== undefined && row.end !== null && row.end < f.since) return false;
  return true;
}

/** A command matches by its own time (not its session's). */
export function commandMatches(c: CommandLine, f: Filters): boolean {
  if (f.user !== undefined && c.gate_user !== f.user) return false;
  if (f.target !== undefined && c.target !== f.target) return false;
  if (f.session !== undefined && !c.session.startsWith(f.session)) return false;
  if (f.since !== undefined && c.time < f.since) return false;
  if (f.until !== undefined && c.time > f.until) return false;
  if (f.grep !== undefined) {
    f.grep.lastIndex = 0;
    if (!f.grep.test(c.text)) return false;
  }
  return true;
}

/** `--grep` and `-i`: a JavaScript RegExp (unicode mode), or a QUERY_INVALID error naming the problem. */
export function grepPattern(source: string, ignoreCase: boolean): RegExp {
  try {
    return new RegExp(source, ignoreCase ? 'iu' : 'u');
  } catch (err) {
    throw new AuditError('QUERY_INVALID', `--grep "${source}": ${(err as Error).message}`);
  }
}

/** `--session`: 1 to 32 hex digits (a prefix, as the tables print 12). */
export function sessionPrefix(text: string): string {
  const t = text.toLowerCase();
  if (!/^[0-9a-f]{1,32}$/.test(t)) {
    throw new AuditError('QUERY_INVALID', `--session "${text}": not a session id (hex, or a prefix of one)`);
  }
  return t;
}
