/**
 * New SSH connections per second through the gate, against the same OpenSSH client connecting to the
 * same sshd directly, measured in the same run (the target: ≥ 0.5 of direct).
 *
 *     npx tsc -p tsconfig.json && node dist/bench/ssh-connect-rate.js [--connections 40] [--runs 3]
 *         [--concurrency 4] [--fips]
 *
 * Each connection is a fresh `ssh HOST true` (BatchMode, no ControlMaster, no multiplexing: key
 * exchange, public key login, one session, exit status), so it measures everything a new login costs.
 * Through the gate that includes its own key exchange and login on the client leg, routing, the upstream
 * connection (key exchange, login with the gate's key), and the sealed records of the session
 * (SESSION_START … SESSION_END; every session end signs a checkpoint).
 *
 * Per run, for each path (direct, then the gate; reversed on odd runs): `--connections` connections one
 * after another (sequential), then the same number with `--concurrency` running at once. Reports the
 * median connections per second of each path and the median of the per-run ratios.
 */
import { cpus } from 'node:os';
import Table from 'cli-table3';
import { BENCH_CIPHER, BENCH_KEX, startTestbed, type Testbed } from './lib/testbed.js';
import { flag, fmt, loadAverages, median, numberOption, timedShell } from './lib/run.js';

const TARGET = 0.5;

type Path = 'direct' | 'gate';

/** Connections per second for `count` connections, `parallel` at a time. */
async function connectRate(bed: Testbed, path: Path, count: number, parallel: number): Promise<number> {
  const start = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await timedShell('ssh "$@" true', bed[path], 60_000);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

interface Sample {
  readonly direct: number;
  readonly gate: number;
}

async function main(): Promise<void> {
  const count = numberOption('--connections', 40);
  const runs = numberOption('--runs', 3);
  const concurrency = numberOption('--concurrency', 4);
  const fips = flag('--fips');
  const load0 = await loadAverages();
  const bed = await startTestbed({ fips });
  const modes = [
    { name: 'sequential', parallel: 1 },
    { name: `${concurrency} at a time`, parallel: concurrency },
  ];
  const samples = modes.map(() => [] as Sample[]);
  try {
    process.stdout.write(
      `ssh-connect-rate: gate in ${fips ? 'FIPS mode' : 'normal mode'}; ${count} connections per measure; ` +
        `${BENCH_KEX}, ${BENCH_CIPHER}; ${runs} run${runs === 1 ? '' : 's'}; Node ${process.version}; ` +
        `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; load average ${load0}\n`,
    );
    // Warm-up: the first connections pay for page cache and JIT, on both paths.
    for (const path of ['direct', 'gate'] as const) await connectRate(bed, path, 3, 1);
    for (let i = 0; i < runs; i++) {
      for (const [m, mode] of modes.entries()) {
        const rate: Partial<Record<Path, number>> = {};
        for (const path of i % 2 ? (['gate', 'direct'] as const) : (['direct', 'gate'] as const)) {
          rate[path] = await connectRate(bed, path, count, mode.parallel);
        }
        const s = { direct: rate.direct!, gate: rate.gate! };
        samples[m]!.push(s);
        process.stdout.write(
          `  run ${i + 1} ${mode.name}: direct ${fmt(s.direct, 1)}/s, gate ${fmt(s.gate, 1)}/s ` +
            `(ratio ${fmt(s.gate / s.direct, 2)})\n`,
        );
      }
    }
  } finally {
    await bed.stop();
  }
  const table = new Table({
    head: ['connections', 'direct sshd', 'through the gate', 'ratio', 'target', ''],
    style: { head: [], border: [] },
  });
  for (const [m, mode] of modes.entries()) {
    const s = samples[m]!;
    const ratio = median(s.map((x) => x.gate / x.direct));
    table.push([
      mode.name,
      `${fmt(median(s.map((x) => x.direct)), 1)} /s`,
      `${fmt(median(s.map((x) => x.gate)), 1)} /s`,
      fmt(ratio, 2),
      `≥ ${fmt(TARGET, 2)}`,
      ratio >= TARGET ? 'met' : 'MISSED',
    ]);
  }
  process.stdout.write(`${table.toString()}\n`);
  process.stdout.write(
    'ratio = median over runs of (gate connections/s / direct connections/s), both measured back to back.\n' +
      `Load average at the end: ${await loadAverages()}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ssh-connect-rate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
