/**
 * SSH bulk throughput through the gate, against the same OpenSSH client talking to the same sshd
 * directly, measured in the same run (the issue's targets: ≥ 0.70 of direct, ≥ 0.60 in FIPS mode).
 *
 *     npx tsc -p tsconfig.json && node dist/bench/ssh-throughput.js [--size 1G] [--runs 3] [--fips]
 *         [--no-upload] [--max-unlogged SIZE] [--gate-prof DIR] [--gate-node-arg FLAG]...
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
 * `--gate-prof DIR` runs the gate with `node --cpu-prof --cpu-prof-dir DIR` (a .cpuprofile on exit);
 * `--gate-node-arg FLAG` passes any other Node flag to the gate (e.g. `--max-semi-space-size=32`).
 * `--max-unlogged SIZE` sets the gate's `recording.max_unlogged_bytes` (e.g. 256k, 4M; 1T is no cap in
 * effect), to measure what the cap on bytes forwarded before they are durable costs (SECURITY.md).
 */
import { cpus } from 'node:os';
import Table from 'cli-table3';
import { BENCH_CIPHER, processCpuSeconds, startTestbed, type Testbed } from './lib/testbed.js';
import {
  flag,
  fmt,
  listOption,
  loadAverages,
  median,
  numberOption,
  stringOption,
  timedShell,
} from './lib/run.js';

const TARGET = { normal: 0.7, fips: 0.6 };
const GIB = 1024 ** 3;

type Direction = 'download' | 'upload';

const SCRIPTS: Record<Direction, (size: number) => string> = {
  download: (size) => `ssh "$@" 'head -c ${size} /dev/zero' | wc -c`,
  upload: (size) => `head -c ${size} /dev/zero | ssh "$@" 'wc -c'`,
};

/** CPU seconds spent during one transfer, by side. */
interface Cpu {
  /** The local end: ssh, head or wc, and the shell (children this process waited for). */
  readonly client: number;
  /** sshd's processes for the connection. */
  readonly sshd: number;
  /** The gate process (0 for a direct transfer). */
  readonly gate: number;
}

interface Sample {
  /** Bytes per second. */
  readonly direct: number;
  readonly gate: number;
  readonly directCpu: Cpu;
  readonly gateCpu: Cpu;
}

async function transfer(
  bed: Testbed,
  path: 'direct' | 'gate',
  dir: Direction,
  size: number,
): Promise<{ rate: number; cpu: Cpu }> {
  // Generous: 1 GiB at 5 MB/s on a loaded machine.
  const timeoutMs = Math.max(120_000, (size / 5e6) * 1000);
  const clientCpu = () => processCpuSeconds('self', 'children');
  const before = { client: clientCpu(), gate: bed.gateCpuSeconds() };
  const sshd = bed.trackSshd();
  const r = await timedShell(SCRIPTS[dir](size), bed[path], timeoutMs);
  const cpu = {
    client: clientCpu() - before.client,
    sshd: sshd.stop(),
    gate: bed.gateCpuSeconds() - before.gate,
  };
  const got = Number(r.stdout.trim());
  if (got !== size) throw new Error(`${dir} via ${path}: ${got} bytes arrived, not ${size}`);
  return { rate: size / r.seconds, cpu };
}

async function round(bed: Testbed, dir: Direction, size: number, gateFirst: boolean): Promise<Sample> {
  const out: Partial<Record<'direct' | 'gate', { rate: number; cpu: Cpu }>> = {};
  for (const path of gateFirst ? (['gate', 'direct'] as const) : (['direct', 'gate'] as const)) {
    out[path] = await transfer(bed, path, dir, size);
  }
  const { direct, gate } = out as Required<typeof out>;
  return { direct: direct.rate, gate: gate.rate, directCpu: direct.cpu, gateCpu: gate.cpu };
}

const cpuText = (c: Cpu, withGate: boolean): string =>
  `client ${fmt(c.client, 1)}, sshd ${fmt(c.sshd, 1)}${withGate ? `, gate ${fmt(c.gate, 1)}` : ''}`;

async function main(): Promise<void> {
  const size = numberOption('--size', GIB);
  const runs = numberOption('--runs', 3);
  const fips = flag('--fips');
  const directions: Direction[] = flag('--no-upload') ? ['download'] : ['download', 'upload'];
  const prof = stringOption('--gate-prof');
  const nodeArgs = [
    ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
    ...listOption('--gate-node-arg'),
  ];
  const target = fips ? TARGET.fips : TARGET.normal;
  const maxUnlogged = process.argv.includes('--max-unlogged') ? numberOption('--max-unlogged', 0) : undefined;

  const load0 = await loadAverages();
  const bed = await startTestbed({
    fips,
    gateNodeArgs: nodeArgs,
    ...(maxUnlogged !== undefined ? { maxUnloggedBytes: maxUnlogged } : {}),
  });
  const samples: Record<Direction, Sample[]> = { download: [], upload: [] };
  try {
    process.stdout.write(
      `ssh-throughput: gate in ${fips ? 'FIPS mode' : 'normal mode'}; ${fmt(size / 1e6, 1)} MB per transfer; ` +
        `${BENCH_CIPHER} on every leg; max_unlogged_bytes ${maxUnlogged ?? 'default'}; ` +
        `${runs} run${runs === 1 ? '' : 's'}; Node ${process.version}; ` +
        `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; load average ${load0}\n`,
    );
    for (let i = 0; i < runs; i++) {
      for (const dir of directions) {
        const s = await round(bed, dir, size, i % 2 === 1);
        samples[dir].push(s);
        process.stdout.write(
          `  run ${i + 1} ${dir}: direct ${fmt(s.direct / 1e6, 1)} MB/s, gate ${fmt(s.gate / 1e6, 1)} MB/s ` +
            `(ratio ${fmt(s.gate / s.direct, 2)}); CPU s direct: ${cpuText(s.directCpu, false)}; via gate: ${cpuText(s.gateCpu, true)}\n`,
        );
      }
    }
  } finally {
    await bed.stop();
  }

  const table = new Table({
    head: [
      'direction',
      'direct sshd',
      'through the gate',
      'ratio',
      'target',
      '',
      'CPU s per GiB,\ndirect\n(client + sshd)',
      'CPU s per GiB,\nvia gate\n(client + sshd\n+ gate)',
    ],
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
      cpuPerGib(
        s.map((x) => x.directCpu),
        size,
        false,
      ),
      cpuPerGib(
        s.map((x) => x.gateCpu),
        size,
        true,
      ),
    ]);
  }
  process.stdout.write(`${table.toString()}\n`);
  process.stdout.write(
    `ratio = median over runs of (gate MB/s / direct MB/s), each run measuring both paths back to back.\n` +
      `CPU = user + system time during the transfer (medians): the local ssh with head/wc, sshd's processes,\n` +
      `the gate process. Load average at the end: ${await loadAverages()}\n`,
  );
}

function cpuPerGib(cpu: readonly Cpu[], size: number, withGate: boolean): string {
  const per = (f: (c: Cpu) => number) => fmt((median(cpu.map(f)) * GIB) / size, 1);
  const gate = withGate ? ` + ${per((c) => c.gate)}` : '';
  return `${per((c) => c.client)} + ${per((c) => c.sshd)}${gate}`;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ssh-throughput: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
