/**
 * The child process of test/seal/crash.test.ts: a gate-like writer that the test kills with SIGKILL.
 *
 *     node dist/test/seal/crash-writer.js <store> <recipient.pub.pem> <signer.key.pem> <seed> [stopAfter]
 *
 * It opens the SealedLog (creating the store if missing; an existing writer.lock means the last run was
 * killed, and opening performs crash recovery), prints `READY <run id>`, then runs a few concurrent
 * sessions that write DATA_OUT records whose plaintext is `<session hex> <counter>`. Once a record's
 * `durable` promise resolves (the fsync covering it has returned) it prints `ACK <session hex> <counter>`:
 * an ACK line is a promise that the record survives any crash from then on.
 *
 * With `stopAfter`, it writes that many records, ends its sessions, closes the log cleanly and prints
 * `DONE`. Without, it writes until it is killed.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';

export const CRASH_ORIGIN = 'test.sealgate/crash';
const WORKERS = 3;

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [dir, recipientPem, signerPem, seedText, stopAfterText] = process.argv.slice(2);
  if (!dir || !recipientPem || !signerPem || !seedText) {
    process.stderr.write(
      'usage: crash-writer <store> <recipient.pub.pem> <signer.key.pem> <seed> [stopAfter]\n',
    );
    process.exit(2);
  }
  const random = prng(Number(seedText));
  const stopAfter = stopAfterText === undefined ? Infinity : Number(stopAfterText);
  const p = new OpenSslProvider();
  const recipient = p.importPublicKey(readFileSync(recipientPem, 'utf8'));
  const signer = await p.importPrivateKey(readFileSync(signerPem, 'utf8'), undefined, 'signer');
  const log = await SealedLog.open({
    provider: p,
    dir,
    origin: CRASH_ORIGIN,
    recipients: [recipient],
    signingKey: signer,
    create: true,
    policy: {
      fsyncEveryMs: 2,
      fsyncEveryEntries: 16,
      checkpointEveryEntries: 100,
      checkpointEveryMs: 40,
      heartbeatMs: 100,
    },
    onFailure: (err) => {
      process.stderr.write(`log failed: ${err.message}\n`);
      process.exit(1);
    },
  });
  process.stdout.write(`READY ${log.runId}\n`);

  let written = 0;
  const worker = async (): Promise<void> => {
    while (written < stopAfter) {
      const session = log.openSession();
      const id = hex(session.sessionId);
      const length = 20 + Math.floor(random() * 150);
      for (let counter = 0; counter < length && written < stopAfter; counter++) {
        written++;
        const data = new TextEncoder().encode(`${id} ${counter}`);
        const { durable } = session.event(RecordType.DATA_OUT, { channel: 0, data });
        // stdout to a pipe is synchronous on Linux: once the write returns, the line is the parent's.
        durable.then(
          () => process.stdout.write(`ACK ${id} ${counter}\n`),
          () => undefined, // onFailure exits
        );
        await sleep(Math.floor(random() * 4)); // about 1k records/s in all: a busy gate, not a flood
      }
      await session.end('done').durable;
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  await log.close('stop after');
  process.stdout.write('DONE\n');
}

// Run only as the child's entry point: the test imports `prng` and CRASH_ORIGIN from this file.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `crash-writer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
