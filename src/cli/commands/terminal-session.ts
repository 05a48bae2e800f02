/**
 * What `text`, `replay` and `decrypt --format <cast>` share: the key and the source (as decrypt loads
 * them), the audit event (FORMAT.md §6.1: every decrypt is logged before anything is read, here with the
 * output format), the choice of the session's terminal channel, and its events.
 *
 * The channel is chosen in a first pass over the session's records (decrypted, nothing kept), because a
 * session can hold several channels and the choice must be made before the first line is written.
 * The second pass yields the channel's events. Both check every tag; a failure stops either.
 *
 * The audit event repeats decrypt.ts's `logDecrypt` (not exported there; a shared one is being made).
 */
import { resolve } from 'node:path';
import type { CryptoProvider, PrivateKey } from '../../crypto/index.js';
import { decryptLog, DecryptError } from '../../audit/decrypt.js';
import { pickChannel, TerminalChannels, type TerminalChannel } from '../../audit/cast/channel.js';
import { CastError } from '../../audit/cast/errors.js';
import { terminalEvent, type TermEvent } from '../../audit/cast/terminal-events.js';
import type { LogSource } from '../../audit/source.js';
import { auditEvent, spoolAuditEvent, SPOOL_DIR } from '../../seal/audit-spool.js';
import { EXIT, UsageError } from '../errors.js';
import { loadKey, openSource } from './decrypt.js';

export interface TerminalSessionOptions {
  readonly key: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly channel?: string;
  readonly auditSpool?: string;
}

export interface TerminalSession {
  readonly channel: TerminalChannel;
  readonly source: LogSource;
  /** The channel's events, decrypted again (second pass). */
  events(): AsyncGenerator<TermEvent>;
  close(): void;
}

export function note(text: string): void {
  process.stderr.write(`sealgate: ${text}\n`);
}

export function sessionId(text: string | undefined, what = 'the session'): string {
  const session = text?.toLowerCase();
  if (session === undefined || !/^[0-9a-f]{32}$/.test(session)) {
    throw new UsageError(`${what} must be a session id: 32 hex digits, not "${text ?? ''}"`);
  }
  return session;
}

function channelNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--channel must be a channel number, not "${text}"`);
  return Number(text);
}

function logAccess(
  source: LogSource,
  keyId: string,
  details: Record<string, unknown>,
  auditSpool: string | undefined,
  fips: boolean,
): void {
  const event = auditEvent('decrypt', {
    source: resolve(source.path),
    source_kind: source.kind,
    origin: source.origin,
    key_id: keyId,
    ...details,
    fips,
  });
  const spools = [
    ...(source.kind === 'store' ? [resolve(source.path, SPOOL_DIR)] : []),
    ...(auditSpool ? [resolve(auditSpool)] : []),
  ];
  for (const dir of spools) {
    try {
      spoolAuditEvent(dir, event);
    } catch (err) {
      throw new UsageError(
        `cannot log this decrypt into ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}); ` +
          'nothing was decrypted',
      );
    }
  }
  if (spools.length === 0) {
    note(
      'notice: this decrypt of a bundle was not logged to a gate (give --audit-spool DIR to spool its audit event)',
    );
  }
}

/**
 * Opens the source, logs the access (`details`: format, output, …), and chooses the terminal channel.
 * Throws UsageError for bad input, DecryptError for a log that fails to decrypt (see `castFailure`).
 */
export async function openTerminalSession(
  provider: CryptoProvider,
  sourcePath: string,
  session: string,
  opts: TerminalSessionOptions,
  details: Record<string, unknown>,
): Promise<TerminalSession> {
  const requested = channelNumber(opts.channel);
  const key: PrivateKey = await loadKey(provider, opts);
  const source = openSource(sourcePath);
  try {
    const first = decryptLog(provider, source.entries(), key, { session });
    logAccess(
      source,
      first.keyId,
      { session, ...(requested !== undefined ? { channel: requested } : {}), ...details },
      opts.auditSpool,
      provider.info().fipsMode,
    );
    const channels = new TerminalChannels();
    for await (const entry of first.opened()) if (entry.kind === 'record') channels.add(entry);
    const channel = pickChannel(session, channels.list(), requested);
    return {
      channel,
      source,
      async *events() {
        const run = decryptLog(provider, source.entries(), key, { session });
        for await (const entry of run.opened()) {
          if (entry.kind !== 'record') continue;
          const event = terminalEvent(entry, channel.channel);
          if (event) yield event;
        }
      },
      close: () => source.close(),
    };
  } catch (err) {
    source.close();
    throw err;
  }
}

/**
 * The exit status for an error of a cast command: a DecryptError (the log failed a check, or holds
 * nothing for this key or session) is printed and is 1, as for decrypt; a CastError is bad input (2).
 */
export function castFailure(err: unknown): number {
  if (err instanceof DecryptError) {
    const stop = err.index === undefined ? '' : '; nothing from this entry on was released';
    note(`${err.message} [${err.code}]${stop}`);
    return EXIT.checkFailed;
  }
  if (err instanceof CastError) throw new UsageError(err.message);
  throw err;
}
