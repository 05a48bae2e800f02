/**
 * Verify rate: how fast `verifyLog` checks a complete bundle, against `sha256sum` over the same files
 * measured in the same run. Verifying hashes every byte at least once (each leaf for the tree, and each
 * file for the manifest), so plain hashing is its natural limit. Target: ≥ 0.5 of sha256sum's throughput.
 *
 *     npx tsc -p tsconfig.json && node dist/bench/verify-rate.js [--records N] [--bytes N] [--reps N]
 *
 * Builds a log of N records (default 100 000) of 1 KiB plaintext each with SealedLog (default policy:
 * checkpoints every 1000 entries), exports it as a complete bundle, then per repetition:
 *   (a) verify: openLogSource (reads the files) + verifyLog, pinned to the signer key; by default (the
 *       measured figure) the tree's interior nodes are hashed in a worker thread, and the single-thread
 *       time (`parallel: false`) is shown beside it;
 *   (b) the baseline: `sha256sum` over every file of the bundle.
 * The best of the repetitions is reported for both (shared machines).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSslProvider } from '../src/crypto/index.js';
import { exportBundle } from '../src/audit/export.js';
import { openLogSource } from '../src/audit/source.js';
import { verifyLog } from '../src/audit/verify/verifier.js';
import { encodePayload } from '../src/seal/format/payload.js';
import { RecordType } from '../src/seal/format/types.js';
import { SealedLog } from '../src/seal/log.js';

const TARGET_RATIO = 0.5;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
  return n;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? d.path, d.name));
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  const records = arg('--records', 100_000);
  const bytes = arg('--bytes', 1024);
  const reps = arg('--reps', 3);
  const p = new OpenSslProvider();
  const work = mkdtempSync(join(tmpdir(), 'sealgate-verify-rate-'));
  try {
    const recipient = await p.generateKey({ type: 'rsa', bits: 3072 });
    const signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const store = join(work, 'store');
    let t0 = process.hrtime.bigint();
    const log = await SealedLog.open({
      provider: p,
      dir: store,
      origin: 'bench.sealgate/verify-rate',
      recipients: [recipient.publicKey],
      signingKey: signer,
      create: true,
      policy: { fsyncEveryEntries: 4096, fsyncEveryMs: 200 },
    });
    const data = new Uint8Array(bytes - 4).fill(0x41);
    const plaintext = encodePayload(RecordType.DATA_OUT, { channel: 0, data });
    const sessions = 10;
    const perSession = Math.ceil(records / sessions);
    for (let s = 0, left = records; s < sessions && left > 0; s++) {
      const session = log.openSession();
      for (let i = 0; i < perSession - 1 && left > 1; i++, left--)
        session.record(RecordType.DATA_OUT, plaintext);
      session.end('bench');
      left--;
      await log.checkpoint(); // bound the memory of pending entries
    }
    await log.close('bench');
    const out = join(work, 'bundle');
    await exportBundle({ provider: p, storeDir: store, outDir: out, signer });
    const files = listFiles(out);
    const total = files.reduce((n, f) => n + statSync(f).size, 0);
    process.stdout.write(
      `built and exported ${records} records of ${bytes} B in ${(ms(t0) / 1000).toFixed(1)} s: bundle ${(total / 1e6).toFixed(1)} MB in ${files.length} files\n`,
    );

    let bestVerify = Infinity;
    let bestSingle = Infinity;
    let bestSha = Infinity;
    for (let r = 0; r < reps; r++) {
      t0 = process.hrtime.bigint();
      const single = openLogSource(out);
      verifyLog(p, single, { trustedSigners: [signer.publicKey], parallel: false });
      single.close();
      bestSingle = Math.min(bestSingle, ms(t0));

      t0 = process.hrtime.bigint();
      const source = openLogSource(out);
      const report = verifyLog(p, source, { trustedSigners: [signer.publicKey] });
      source.close();
      bestVerify = Math.min(bestVerify, ms(t0));
      if (!report.ok)
        throw new Error(`the bench bundle does not verify: ${JSON.stringify(report.failures.slice(0, 3))}`);
      if (r === 0)
        process.stdout.write(
          `verified: ${report.counts.entries} entries, ${report.counts.checkpoints} checkpoints, ${report.counts.segments} segments\n`,
        );

      t0 = process.hrtime.bigint();
      const sha = spawnSync('sha256sum', files, { encoding: 'utf8' });
      bestSha = Math.min(bestSha, ms(t0));
      if (sha.status !== 0) throw new Error(`sha256sum failed: ${sha.stderr}`);
    }
    const mbps = (t: number): string => `${(total / 1e6 / (t / 1000)).toFixed(0)} MB/s`;
    const ratio = bestSha / bestVerify;
    process.stdout.write(
      `verifyLog:  ${bestVerify.toFixed(0)} ms (${mbps(bestVerify)}), tree nodes hashed in a worker thread (the default)\n` +
        `            ${bestSingle.toFixed(0)} ms (${mbps(bestSingle)}) all in one thread (parallel: false): ${(bestSha / bestSingle).toFixed(2)} of sha256sum\n` +
        `sha256sum:  ${bestSha.toFixed(0)} ms (${mbps(bestSha)})\n` +
        `ratio:      ${ratio.toFixed(2)} of sha256sum throughput (target ≥ ${TARGET_RATIO}) ${ratio >= TARGET_RATIO ? 'OK' : 'BELOW TARGET'}\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
