/**
 * The audit spool (docs/FORMAT.md §6.1): how an `export` or an auditor read (`decrypt`, …) gets into the log it read. The
 * command drops one JSON file per event; the writer seals each as an AUDIT_EVENT system entry and deletes
 * the file only once that entry is durable. Files are written atomically and never overwritten, so an
 * event is either fully in the spool or not there at all.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';

export const SPOOL_DIR = 'audit-spool';

/**
 * What was done to the log (FORMAT.md §6.1): an export, or an auditor read that released plaintext
 * (decrypt, sessions, commands, replay, text). `verify` reads no plaintext and is not logged today.
 */
export type AuditAction = 'export' | 'decrypt' | 'sessions' | 'commands' | 'replay' | 'text' | 'verify';

export interface AuditEvent {
  readonly action: AuditAction;
  readonly actor: string;
  readonly host: string;
  readonly at_us: string;
  readonly details: Record<string, unknown>;
}

export function auditEvent(action: AuditEvent['action'], details: Record<string, unknown>): AuditEvent {
  let actor = 'unknown';
  try {
    actor = userInfo().username;
  } catch {
    // No passwd entry (containers): keep "unknown" rather than fail the command.
  }
  return { action, actor, host: hostname(), at_us: String(BigInt(Date.now()) * 1000n), details };
}

/** Writes one event into `spoolDir` (created 0700 if needed); returns the file name. */
export function spoolAuditEvent(spoolDir: string, event: AuditEvent): string {
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  const name = `${event.at_us}-${process.pid}-${Math.random().toString(36).slice(2, 10)}.json`;
  const tmp = join(spoolDir, `.${name}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(event));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(spoolDir, name));
  const dirFd = openSync(spoolDir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return name;
}

/**
 * Spooled events in order, with a function that removes each once it is sealed (it throws if it
 * cannot). A file that does not parse is reported as such (and removed once that report is sealed); a
 * file that cannot be read now (out of file descriptors, say) is left for the next drain: reporting it
 * as unreadable would delete an event that is fine.
 */
export function readSpool(
  spoolDir: string,
): { name: string; event: Record<string, unknown>; remove: () => void }[] {
  let names: string[];
  try {
    names = readdirSync(spoolDir).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: { name: string; event: Record<string, unknown>; remove: () => void }[] = [];
  for (const name of names.sort()) {
    const file = join(spoolDir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // read again at the next drain
    }
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch {
      event = { action: 'unreadable-spool-file', file: name };
    }
    const obj =
      typeof event === 'object' && event !== null && !Array.isArray(event)
        ? (event as Record<string, unknown>)
        : { action: 'invalid-spool-file', file: name };
    out.push({ name, event: obj, remove: () => unlinkSync(file) });
  }
  return out;
}
