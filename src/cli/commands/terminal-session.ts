/**
 * What `text`, `replay` and `decrypt --format <cast>` share: the key and the source (as decrypt loads
 * them), verify-before-read and the audit event (FORMAT.md §6.1: every read is logged before anything is
 * read), the choice of the session's terminal channel, and its events.
 *
 * The channel is chosen in a first pass over the session's records (decrypted, nothing kept), because a
 * session can hold several channels and the choice must be made before the first line is written.
 * The second pass yields the channel's events. Both check every tag; a failure stops either.
 *
 * Verification and the audit event are the shared ones of src/cli/auditor-read.ts: the source is
 * verified before anything is decrypted, and the read is logged as `decrypt` (with its `format`),
 * `text` or `replay`.
 */
import type { CryptoProvider, PrivateKey } from '../../crypto/index.js';
import { decryptLog, DecryptError } from '../../audit/decrypt.js';
import { pickChannel, TerminalChannels, type TerminalChannel } from '../../audit/cast/channel.js';
import { CastError } from '../../audit/cast/errors.js';
import { terminalEvent, type TermEvent } from '../../audit/cast/terminal-events.js';
import type { LogSource } from '../../audit/source.js';
import { decodeSegmentHeader } from '../../seal/format/segment-header.js';
import { EntryKind } from '../../seal/format/types.js';
import type { ReadAction } from '../../audit/auditor-read.js';
import { logRead, verifyForRead, type ReadTrustCliOptions } from '../auditor-read.js';
import { EXIT, UsageError } from '../errors.js';
import { loadKey, openSource } from './decrypt.js';

export interface TerminalSessionOptions extends ReadTrustCliOptions {
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

/** A session id (32 hex digits) or, for `text` and `replay`, a prefix of one (at least 8 digits). */
export function sessionId(text: string | undefined, what = 'the session', prefix = false): string {
  const session = text?.toLowerCase();
  const form = prefix ? /^[0-9a-f]{8,32}$/ : /^[0-9a-f]{32}$/;
  if (session === undefined || !form.test(session)) {
    throw new UsageError(
      `${what} must be a session id: 32 hex digits${prefix ? ' (or its first 8 or more, as tables show it)' : ''}, not "${text ?? ''}"`,
    );
  }
  return session;
}

/**
 * The full id of the one session whose id starts with `prefix`, from the segment headers (session ids
 * are in the clear there: FORMAT.md §3.1). UsageError when none or several match.
 */
export function resolveSessionPrefix(source: LogSource, prefix: string): string {
  if (prefix.length === 32) return prefix;
  const found = new Set<string>();
  for (const { bytes } of source.entries()) {
    if (bytes[0] !== EntryKind.SEGMENT_HEADER) continue;
    let id: string;
    try {
      id = Buffer.from(decodeSegmentHeader(bytes).sessionId).toString('hex');
    } catch {
      continue; // an undecodable header: verify (and decrypt) name it
    }
    if (id.startsWith(prefix)) found.add(id);
  }
  if (found.size === 1) return [...found][0]!;
  if (found.size === 0) throw new UsageError(`no session id starts with ${prefix} in ${source.path}`);
  throw new UsageError(
    `${found.size} sessions start with ${prefix}: ${[...found].join(', ')}; give more digits`,
  );
}

function channelNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--channel must be a channel number, not "${text}"`);
  return Number(text);
}

/** What the read is logged as (src/audit/auditor-read.ts). */
export interface TerminalRead {
  readonly action: Extract<ReadAction, 'decrypt' | 'text' | 'replay'>;
  /** A file path, or undefined for stdout (or the terminal). */
  readonly output?: string;
  readonly details: Record<string, unknown>;
}

/**
 * Opens the source, verifies it (as `verify` does, unless `--no-verify`), logs the read, and chooses the
 * terminal channel. Returns the exit status instead when verification failed (its failures are on
 * stderr). Throws UsageError for bad input, DecryptError for a log that fails to decrypt (castFailure).
 */
export async function openTerminalSession(
  provider: CryptoProvider,
  sourcePath: string,
  session: string,
  opts: TerminalSessionOptions,
  read: TerminalRead,
): Promise<TerminalSession | number> {
  const requested = channelNumber(opts.channel);
  const key: PrivateKey = await loadKey(provider, opts);
  const source = openSource(sourcePath);
  try {
    session = resolveSessionPrefix(source, session);
    const verification = verifyForRead(provider, source, opts, read.action);
    if (typeof verification === 'number') {
      source.close();
      return verification;
    }
    const range = source.bundle?.manifest?.range;
    const options = {
      session,
      // A range bundle carries the headers of segments it starts inside (FORMAT.md §7).
      ...(range && source.bundle?.manifest?.complete === false && !source.bundle.manifest.sessions
        ? { rangeFrom: range.from }
        : {}),
    };
    const first = decryptLog(provider, source.entries(), key, options);
    logRead({
      action: read.action,
      source,
      keyId: first.keyId,
      verification,
      fips: provider.info().fipsMode,
      ...(read.output !== undefined ? { output: read.output } : {}),
      ...(opts.auditSpool !== undefined ? { auditSpool: opts.auditSpool } : {}),
      details: { session, ...(requested !== undefined ? { channel: requested } : {}), ...read.details },
    });
    const channels = new TerminalChannels();
    for await (const entry of first.opened()) if (entry.kind === 'record') channels.add(entry);
    const channel = pickChannel(session, channels.list(), requested);
    return {
      channel,
      source,
      async *events() {
        const run = decryptLog(provider, source.entries(), key, options);
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
