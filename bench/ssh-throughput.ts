/**
 * SSH bulk throughput through the gate, against the same OpenSSH client talking to the same sshd
 * directly, measured in the same run (the targets: ≥ 0.70 of direct, ≥ 0.60 in FIPS mode).
 *
 *     npx tsc -p tsconfig.json && node dist/bench/ssh-throughput.js [--size 1G] [--runs 3] [--fips]
 *         [--no-upload] [--gate-prof DIR]
 *
 * The test bed (lib/testbed.ts) is a real sshd and `sealgate serve` as a child process with recording and
 * sealing on (default log policy); `--fips` runs the gate in a FIPS-mode Node (`--force-fips`, the
 * provider from .cache/fips). Every connection, direct or through the gate, uses aes256-gcm@openssh.com
 * (on both legs of the gate), no compression, no pty.
 *
 * Measures, per run, interleaved (direct then gate, gate then direct on odd runs, so drift on a shared
 * machine hits both alike):
 *   download: `ssh HOST 'head -c SIZE /dev/zero' | wc -c`
 *   upload:   `head -c SIZE /dev/zero | ssh HOST 'wc -c'`
 * and checks that SIZE bytes arrived. Reports the median MB/s of each path (MB = 10^6 bytes), the median
 * of the per-run ratios, and the gate process's CPU time (user + system, from /proc) per GiB moved.
 * `--gate-prof DIR` runs the gate with `node --cpu-prof --cpu-prof-dir DIR` (a .cpuprofile on exit).
 */
import { cpus } from 'node:os';
import Table from 'cli-table3';
import { BENCH_CIPHER, startTestbed, type Testbed } from './lib/testbed.js';
import { flag, fmt, loadAverages, median, numberOption, stringOption, timedShell } from './lib/run.js';

const TARGET = { normal: 0.7, fips: 0.6 };
const GIB = 1024 ** 3;

type Direction = 'download' | 'upload';

const SCRIPTS: Record<Direction, (size: number) => string> = {
  download: (size) => `ssh "$@" 'head -c ${size} /dev/zero' | wc -c`,
  upload: (size) => `head -c ${size} /dev/zero | ssh "$@" 'wc -c'`,
};

interface Sample {
  readonly direct: number;
  readonly gate: number;
  /** Gate CPU seconds during the gate transfer. */
  readonly gateCpu: number;
}

async function transfer(bed: Testbed, args: string[], dir: Direction, size: number): Promise<number> {
  // Generous: 1 GiB at 10 MB/s on a loaded machine is under two minutes.
  const timeoutMs = Math.max(120_000, (size / 5e6) * 1000);
  const r = await timedShell(SCRIPTS[dir](size), args, timeoutMs);
  const got = Number(r.stdout.trim());
  if (got !== size)
    throw new Error(`${dir} via ${args === bed.gate ? 'gate' : 'direct'}: ${got} bytes, not ${size}`);
  return size / r.seconds;
}

async function round(bed: Testbed, dir: Direction, size: number, gateFirst: boolean): Promise<Sample> {
  let direct = 0;
  let gate = 0;
  let gateCpu = 0;
  for (const which of gateFirst ? ['gate', 'direct'] : ['direct', 'gate']) {
    if (which === 'direct') {
      direct = await transfer(bed, bed.direct, dir, size);
    } else {
      const cpu0 = bed.gateCpuSeconds();
      gate = await transfer(bed, bed.gate, dir, size);
      gateCpu = bed.gateCpuSeconds() - cpu0;
    }
  }
  return { direct, gate, gateCpu };
}

async function main(): Promise<void> {
  const size = numberOption('--size', GIB);
  const runs = numberOption('--runs', 3);
  const fips = flag('--fips');
  const directions: Direction[] = flag('--no-upload') ? ['download'] : ['download', 'upload'];
  const prof = stringOption('--gate-prof');
  const target = fips ? TARGET.fips : TARGET.normal;

  const load0 = await loadAverages();
  const bed = await startTestbed({
    fips,
    ...(prof ? { gateNodeArgs: ['--cpu-prof', '--cpu-prof-dir', prof] } : {}),
  });
  const samples: Record<Direction, Sample[]> = { download: [], upload: [] };
  try {
    process.stdout.write(
      `ssh-throughput: gate in ${fips ? 'FIPS mode' : 'normal mode'}; ${fmt(size / 1e6, 1)} MB per transfer; ` +
        `${BENCH_CIPHER} on every leg; ${runs} run${runs === 1 ? '' : 's'}; Node ${process.version}; ` +
        `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; load average ${load0}\n`,
    );
    for (let i = 0; i < runs; i++) {
      for (const dir of directions) {
        const s = await round(bed, dir, size, i % 2 === 1);
        samples[dir].push(s);
        process.stdout.write(
          `  run ${i + 1} ${dir}: direct ${fmt(s.direct / 1e6, 1)} MB/s, gate ${fmt(s.gate / 1e6, 1)} MB/s ` +
            `(ratio ${fmt(s.gate / s.direct, 2)}), gate CPU ${fmt(s.gateCpu, 1)} s\n`,
        );
      }
    }
  } finally {
    await bed.stop();
  }

  const table = new Table({
    head: ['direction', 'direct sshd', 'through the gate', 'ratio', 'target', '', 'gate CPU\nper GiB'],
    style: { head: [], border: [] },
  });
  for (const dir of directions) {
    const s = samples[dir];
    const ratio = median(s.map((x) => x.gate / x.direct));
    table.push([
      dir,
      `${fmt(median(s.map((x) => x.direct)) / 1e6, 1)} MB/s`,
      `${fmt(median(s.map((x) => x.gate)) / 1e6, 1)} MB/s`,
      fmt(ratio, 2),
      `≥ ${fmt(target, 2)}`,
      ratio >= target ? 'met' : 'MISSED',
      `${fmt(median(s.map((x) => (x.gateCpu * GIB) / size)), 1)} s`,
    ]);
  }
  process.stdout.write(`${table.toString()}\n`);
  process.stdout.write(
    `ratio = median over runs of (gate MB/s / direct MB/s), each run measuring both paths back to back.\n` +
      `gate CPU = the gate process's user + system time during its transfer. Load average at the end: ${await loadAverages()}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ssh-throughput: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
