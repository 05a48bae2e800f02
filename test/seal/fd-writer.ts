/**
 * The child process of test/seal/store-failure.test.ts: a writer that runs out of file descriptors, as
 * the gate did under a flood of silent connections (issue 10). Run it under a low `ulimit -n`:
 *
 *     node dist/test/seal/fd-writer.js <store> <recipient.pub.pem> <signer.key.pem> <close|exit>
 *
 * It opens the SealedLog, drops one event into the audit spool, records a session, then opens
 * /dev/null until open(2) fails with EMFILE and prints `EXHAUSTED <descriptors taken>`. With every
 * descriptor taken it goes on: more records, sessions that end (each end signs a checkpoint),
 * heartbeats and timed checkpoints, then a last checkpoint. `close` then closes the log (as a SIGTERM
 * does) still without a free descriptor; `exit` exits without closing, as a crash would. Before
 * exiting it prints `CHECKPOINTS <before> <after>` (signed before and after the exhaustion),
 * `STILL_EMFILE <yes|no>` (whether open(2) still failed at the end), then `DONE`. `FAILED <message>`
 * means the log failed.
 */
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { auditEvent, spoolAuditEvent, SPOOL_DIR } from '../../src/seal/audit-spool.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';

export const FD_ORIGIN = 'test.sealgate/fd';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stdout.write(`${line}\n`);

function exhaust(): { taken: number[]; code: string | undefined } {
  const taken: number[] = [];
  for (;;) {
    try {
      taken.push(openSync('/dev/null', 'r'));
    } catch (err) {
      return { taken, code: (err as NodeJS.ErrnoException).code };
    }
  }
}

function stillExhausted(): boolean {
  try {
    openSync('/dev/null', 'r'); // kept: the process exits soon
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EMFILE';
  }
}

async function main(): Promise<void> {
  const [dir, recipientPem, signerPem, mode] = process.argv.slice(2);
  if (!dir || !recipientPem || !signerPem || (mode !== 'close' && mode !== 'exit')) {
    process.stderr.write('usage: fd-writer <store> <recipient.pub.pem> <signer.key.pem> <close|exit>\n');
    process.exit(2);
  }
  let notes = 0;
  const p = new OpenSslProvider();
  const recipient = p.importPublicKey(readFileSync(recipientPem, 'utf8'));
  const signer = await p.importPrivateKey(readFileSync(signerPem, 'utf8'), undefined, 'signer');
  const log = await SealedLog.open({
    provider: p,
    dir,
    origin: FD_ORIGIN,
    recipients: [recipient],
    signingKey: signer,
    create: true,
    policy: { fsyncEveryMs: 2, fsyncEveryEntries: 8, checkpointEveryMs: 50, heartbeatMs: 100 },
    onFailure: (err) => say(`FAILED ${err.message}`),
    onCheckpoint: () => void notes++,
  });
  spoolAuditEvent(join(dir, SPOOL_DIR), auditEvent('export', { test: 'fd-writer' }));
  const first = log.openSession();
  for (let i = 0; i < 20; i++)
    first.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from(`before ${i}`) });
  await first.flush();
  await log.checkpoint();
  const before = notes;

  const { taken, code } = exhaust();
  say(`EXHAUSTED ${taken.length} ${code}`);
  try {
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 20; i++) {
        first.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from(`during ${round} ${i}`) });
      }
      const session = log.openSession();
      session.event(RecordType.DATA_IN, { channel: 0, data: Buffer.from(`short session ${round}`) });
      await session.end('done').durable; // signs a checkpoint
      await sleep(60); // heartbeats, timed checkpoints and spool drains run meanwhile
    }
    await first.end('done').durable;
    await log.checkpoint();
  } catch (err) {
    say(`APPEND_ERROR ${(err as Error).message}`);
  }
  say(`CHECKPOINTS ${before} ${notes}`);
  say(`STILL_EMFILE ${stillExhausted() ? 'yes' : 'no'}`);
  if (mode === 'exit') {
    say('DONE');
    process.exit(0);
  }
  try {
    await log.close('stopped');
  } catch (err) {
    say(`CLOSE_ERROR ${(err as Error).message}`);
  }
  say('DONE');
  process.exit(0);
}

// Run only as the child's entry point: the test imports FD_ORIGIN from this file.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`fd-writer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
