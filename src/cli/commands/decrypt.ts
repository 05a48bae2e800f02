/**
 * `sealgate decrypt <bundle|store> --key file:…`: the authenticated events of every segment addressed to
 * one recipient key, as JSON lines (src/audit/decrypt-event.ts gives their shape).
 *
 * - The private key is loaded through the provider (PBES2-encrypted PEM; the passphrase from a file or an
 *   environment variable). A wrong passphrase or an EC key is bad input: one line, exit 2.
 * - The source is verified first, exactly as `sealgate verify` does (src/cli/auditor-read.ts), against
 *   `--keys DIR` (or, for a bundle, `--trust-bundle-signers`): a failure is exit 1, with every failure
 *   named, and nothing is decrypted. `--no-verify` skips it, with a warning, and the audit event says so.
 * - Every decrypt is logged (docs/FORMAT.md §6.1) before anything is read: into `<store>/audit-spool`
 *   for a store (and if that cannot be written, nothing is decrypted), into `--audit-spool DIR` for a
 *   bundle, or a notice on stderr says that this decrypt was not logged to a gate.
 * - It stops at the first failure (a tag, a commitment, an entry out of order): what was written before
 *   it stays (all of it authenticated), nothing from the failing entry on is released, and the exit
 *   status is 1. `--keep-going` abandons only the failing segment and goes on; the exit status is still 1.
 * - Segments addressed to other keys are counted on stderr; none addressed to this key is exit 1.
 */
import cliProgress from 'cli-progress';
import type { CryptoProvider, PrivateKey } from '../../crypto/index.js';
import { decryptLog, DecryptError, type DecryptSummary, type LogDecryption } from '../../audit/decrypt.js';
import { AuditError } from '../../audit/errors.js';
import { openLogSource, type LogSource } from '../../audit/source.js';
import type { ReadVerification } from '../../audit/verified-source.js';
import { logRead, verifyForRead, type ReadTrustCliOptions } from '../auditor-read.js';
import { EXIT, UsageError } from '../errors.js';
import { OutputClosed, OutputSink } from './output-sink.js';
import { readSecret } from '../secrets.js';
import { castCommand, type CastFormat } from './cast.js';

export interface DecryptCommandOptions extends ReadTrustCliOptions {
  readonly key: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly out?: string;
  readonly force?: boolean;
  readonly session?: string;
  readonly recordsOnly?: boolean;
  readonly auditSpool?: string;
  readonly keepGoing?: boolean;
  /** jsonl (default), or a cast format: cast.ts. */
  readonly format?: 'jsonl' | CastFormat;
  readonly channel?: string;
  readonly input?: boolean;
  readonly timing?: string;
}

/** System lines held back until a segment opens, so that a wrong key prints nothing but its error. */
const HOLD_MAX = 1000;
/** Output is written in chunks of about this many characters. */
function note(text: string): void {
  process.stderr.write(`sealgate: ${text}\n`);
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

export function openSource(path: string): LogSource {
  try {
    return openLogSource(path);
  } catch (err) {
    if (err instanceof AuditError) throw new UsageError(err.message);
    throw err;
  }
}

/** The recipient private key of an auditor's read (decrypt, sessions, commands, text, replay). */
export async function loadKey(
  provider: CryptoProvider,
  opts: Pick<DecryptCommandOptions, 'key' | 'passphraseFile' | 'passphraseEnv'>,
): Promise<PrivateKey> {
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  try {
    const key = await provider.loadPrivateKey(opts.key, passphrase);
    if (key.algorithm.type !== 'rsa') {
      throw new UsageError(
        `${opts.key} is an ${key.algorithm.type.toUpperCase()} key; reading the log needs an RSA recipient key`,
      );
    }
    return key;
  } finally {
    passphrase?.fill(0);
  }
}

/** FORMAT.md §6.1: one audit event per decrypt, spooled before anything is decrypted (fail closed). */
function logDecrypt(
  source: LogSource,
  keyId: string,
  opts: DecryptCommandOptions,
  fips: boolean,
  verification: ReadVerification,
): void {
  logRead({
    action: 'decrypt',
    source,
    keyId,
    verification,
    fips,
    ...(opts.out !== undefined ? { output: opts.out } : {}),
    ...(opts.auditSpool !== undefined ? { auditSpool: opts.auditSpool } : {}),
    details: {
      ...(opts.session ? { session: opts.session } : {}),
      records_only: Boolean(opts.recordsOnly),
    },
  });
}

function progressBar(total: number): { update(n: number): void; stop(): void } {
  if (!process.stderr.isTTY || total === 0) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'decrypting [{bar}] {percentage}% | {value}/{total} entries | {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (n) => bar.update(n), stop: () => bar.stop() };
}

function report(summary: DecryptSummary, source: LogSource): void {
  if (summary.segmentsNotAddressed > 0) {
    note(
      `${plural(summary.segmentsNotAddressed, 'segment is', 'segments are')} not addressed to this key ` +
        `(${plural(summary.recordsNotAddressed, 'record', 'records')} not decrypted)`,
    );
  }
  if (summary.recordsWithoutHeader > 0) {
    note(
      `${plural(summary.recordsWithoutHeader, 'record belongs', 'records belong')} to segments whose header ` +
        `is not in this ${source.kind}; not decrypted`,
    );
  }
}

export async function decryptCommand(
  provider: CryptoProvider,
  sourcePath: string,
  opts: DecryptCommandOptions,
): Promise<number> {
  if (opts.format !== undefined && opts.format !== 'jsonl') {
    return castCommand(provider, sourcePath, { ...opts, format: opts.format });
  }
  for (const [name, given] of [
    ['--channel', opts.channel],
    ['--input', opts.input],
    ['--timing', opts.timing],
  ]) {
    if (given !== undefined)
      throw new UsageError(`${String(name)} is for the cast formats (--format), not jsonl`);
  }
  const session = opts.session?.toLowerCase();
  if (session !== undefined && !/^[0-9a-f]{32}$/.test(session)) {
    throw new UsageError(`--session must be a session id: 32 hex digits, not "${opts.session}"`);
  }
  const key = await loadKey(provider, opts);
  const source = openSource(sourcePath);
  try {
    const verification = verifyForRead(provider, source, opts, 'decrypt');
    if (typeof verification === 'number') return verification;
    const bar = progressBar(source.entryCount);
    const range = source.bundle?.manifest?.range;
    const run = decryptLog(provider, source.entries(), key, {
      ...(session ? { session } : {}),
      // A range bundle carries the headers of segments it starts inside (FORMAT.md §7).
      ...(range && source.bundle?.manifest?.complete === false && !source.bundle.manifest.sessions
        ? { rangeFrom: range.from }
        : {}),
      recordsOnly: Boolean(opts.recordsOnly),
      keepGoing: Boolean(opts.keepGoing),
      onProgress: (n) => bar.update(n),
    });
    const sink = new OutputSink(opts.out, Boolean(opts.force));
    let failure: DecryptError | undefined;
    let complete = true;
    try {
      logDecrypt(source, run.keyId, { ...opts, session }, provider.info().fipsMode, verification);
      failure = await release(run, sink);
    } catch (err) {
      if (!(err instanceof OutputClosed)) throw err;
    } finally {
      bar.stop();
      complete = await sink.close();
    }
    if (!complete && !failure) return EXIT.ok; // the reader stopped reading; nothing to report
    if (failure) {
      const stop =
        failure.index === undefined ? '' : '; decryption stopped, nothing from this entry on was released';
      note(`${failure.message} [${failure.code}]${stop}`);
      return EXIT.checkFailed;
    }
    report(run.summary, source);
    const failures = run.summary.failures;
    if (failures.length > 0) {
      for (const f of failures) note(`${f.message} [${f.code}]`);
      note(
        `${plural(failures.length, 'failure', 'failures')}; nothing of a failing segment was released from ` +
          `its failure on (${plural(run.summary.recordsAbandoned, 'later record', 'later records')} withheld)`,
      );
      return EXIT.checkFailed;
    }
    return EXIT.ok;
  } finally {
    source.close();
  }
}

/**
 * Writes the events as JSON lines; returns the DecryptError that ended the run, if any. System lines are
 * held back until a segment opens (up to HOLD_MAX of them), so that a key with no segment prints nothing
 * but its error.
 */
async function release(run: LogDecryption, sink: OutputSink): Promise<DecryptError | undefined> {
  const held: string[] = [];
  let holding = true;
  try {
    for await (const event of run) {
      const line = JSON.stringify(event);
      if (holding && run.summary.segmentsOpened === 0 && held.length < HOLD_MAX) {
        held.push(line);
        continue;
      }
      holding = false;
      for (const h of held.splice(0)) await sink.line(h);
      await sink.line(line);
    }
  } catch (err) {
    if (!(err instanceof DecryptError)) throw err;
    // Before the failure everything was authenticated (or is a system entry): release it, unless the
    // run found nothing for this key at all.
    if (err.code !== 'NO_SEGMENT_FOR_KEY' && err.code !== 'SESSION_NOT_FOUND') {
      for (const h of held.splice(0)) await sink.line(h);
    }
    return err;
  }
  for (const h of held.splice(0)) await sink.line(h);
  return undefined;
}
