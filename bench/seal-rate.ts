/**
 * Seal rate (design brief §7): how fast records are sealed, against the AES-256-GCM limit of the same
 * OpenSSL measured in the same run (`openssl speed -evp aes-256-gcm`).
 *
 *     npx tsc -p tsconfig.json && node dist/bench/seal-rate.js [--seconds N] [--reps N]
 *
 * FIPS mode: run the same file in a FIPS-mode Node; `openssl speed` inherits the environment, so the
 * baseline is the FIPS provider's AES-GCM too:
 *
 *     OPENSSL_CONF=.cache/fips/openssl.cnf OPENSSL_MODULES=.cache/fips node --force-fips dist/bench/seal-rate.js
 *
 * Measures:
 *   (a) SegmentSealer.seal alone: records/s at 1 KiB, MB/s at 16 KiB (plaintext bytes; MB = 10^6 bytes,
 *       like openssl's "1000s of bytes");
 *   (b) the full path: SessionRecorder.record → SealedLog → LocalStore on disk, default log policy (group
 *       commit, checkpoints every 1000 entries), records/s at 1 KiB counted until the last one is durable;
 *   (c) the baseline: `openssl speed -evp aes-256-gcm -bytes 1024|16384 -seconds S`.
 * Targets: ≥ 100k records/s at 1 KiB; ≥ 40% of the openssl limit at 16 KiB.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { OpenSslProvider, type CryptoProvider, type PublicKey } from '../src/crypto/index.js';
import { encodePayload } from '../src/seal/format/payload.js';
import { MAX_RECORDS } from '../src/seal/format/record.js';
import { RecordType } from '../src/seal/format/types.js';
import { SealedLog } from '../src/seal/log.js';
import { SegmentSealer } from '../src/seal/sealer.js';

const KIB = 1024;
const TARGET_RECORDS_PER_S = 100_000;
const TARGET_RATIO_16K = 0.4;

interface Args {
  /** Length of one measurement, seconds (also `openssl speed -seconds`). */
  readonly seconds: number;
  /**
   * Rounds. Each round measures sealgate and then openssl right after it, so each ratio compares
   * neighbours in time; the median round is reported (a shared machine's speed drifts).
   */
  readonly reps: number;
}

function parseArgs(): Args {
  const value = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(name);
    const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
    return n;
  };
  return { seconds: value('--seconds', 3), reps: value('--reps', 1) };
}

/** A DATA_OUT plaintext (u32 channel || bytes) of exactly `size` bytes. */
function plaintextOf(size: number): Uint8Array {
  const data = new Uint8Array(size - 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  return encodePayload(RecordType.DATA_OUT, { channel: 0, data });
}

const nowUs = (): bigint => BigInt(Date.now()) * 1000n;

function newSealer(p: CryptoProvider, recipient: PublicKey): SegmentSealer {
  const info = p.info();
  return SegmentSealer.create(p, {
    origin: 'bench.sealgate/seal-rate',
    sessionId: p.randomBytes(16),
    provenance: { fips: info.fipsMode, backend: info.backend },
    recipients: [recipient],
    createdUs: nowUs(),
  });
}

interface Rate {
  /** Records per second of CPU time (user + system), the divisor `openssl speed` uses (user time). */
  readonly cpu: number;
  /** Records per second of wall-clock time. */
  readonly wall: number;
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** The median of an odd count, the upper median of an even one. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** (a) SegmentSealer.seal for `seconds`; a new segment (one RSA wrap) when one fills up, as a gate would. */
function sealRate(p: CryptoProvider, recipient: PublicKey, size: number, seconds: number): Rate {
  const plaintext = plaintextOf(size);
  let sealer = newSealer(p, recipient);
  const timeUs = nowUs();
  // Warm-up: JIT and OpenSSL's first-use costs are not the steady state.
  for (let i = 0; i < 2000; i++) sealer.seal(RecordType.DATA_OUT, plaintext, { timeUs });
  sealer = newSealer(p, recipient);
  let records = 0;
  const cpu0 = cpuSeconds();
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 256; i++) {
      if (sealer.nextSeq >= BigInt(MAX_RECORDS - 2)) sealer = newSealer(p, recipient);
      sealer.seal(RecordType.DATA_OUT, plaintext, { timeUs });
    }
    records += 256;
    now = process.hrtime.bigint();
  }
  return { cpu: records / (cpuSeconds() - cpu0), wall: records / (Number(now - start) / 1e9) };
}

/** (b) SessionRecorder.record through SealedLog into a LocalStore on disk, until everything is durable. */
async function fullPathRate(
  p: CryptoProvider,
  recipient: PublicKey,
  size: number,
  seconds: number,
): Promise<Rate> {
  const work = mkdtempSync(join(tmpdir(), 'sealgate-bench-'));
  try {
    const signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const log = await SealedLog.open({
      provider: p,
      dir: join(work, 'store'),
      origin: 'bench.sealgate/seal-rate',
      recipients: [recipient],
      signingKey: signer,
      create: true,
    });
    const plaintext = plaintextOf(size);
    const sessions = Array.from({ length: 4 }, () => log.openSession());
    let records = 0;
    let last: Promise<void> = Promise.resolve();
    const cpu0 = cpuSeconds();
    const start = process.hrtime.bigint();
    const end = start + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < end) {
      // A batch of records, then a turn of the event loop so the store writes and fsyncs meanwhile.
      for (let i = 0; i < 1000; i++) {
        last = sessions[i & 3]!.record(RecordType.DATA_OUT, plaintext).durable;
      }
      records += 1000;
      await new Promise((r) => setImmediate(r));
    }
    await last;
    const rate = {
      cpu: records / (cpuSeconds() - cpu0),
      wall: records / (Number(process.hrtime.bigint() - start) / 1e9),
    };
    for (const s of sessions) s.end('bench done');
    await log.close('bench done');
    return rate;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** (c) `openssl speed -evp aes-256-gcm -bytes N`: bytes per second. */
function opensslSpeed(size: number, seconds: number): number {
  const args = [
    'speed',
    '-evp',
    'aes-256-gcm',
    '-bytes',
    String(size),
    '-seconds',
    String(Math.ceil(seconds)),
  ];
  const r = spawnSync('openssl', args, { encoding: 'utf8', env: process.env });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  // "The 'numbers' are in 1000s of bytes per second processed." then "type  1024 bytes" and one row.
  const lines = r.stdout.split('\n');
  const header = lines.findIndex((l) => l.includes("The 'numbers' are in 1000s of bytes per second"));
  const row = lines.slice(header + 1).find((l) => /^aes-256-gcm\s/i.test(l.trim()));
  const value = row?.trim().split(/\s+/).at(-1);
  if (header < 0 || !value?.endsWith('k')) throw new Error(`cannot parse openssl speed output:\n${r.stdout}`);
  return Number(value.slice(0, -1)) * 1000;
}

function opensslVersion(): string {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8', env: process.env });
  return r.stdout.trim();
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (bytesPerS: number): string => `${fmt(bytesPerS / 1e6, 1)} MB/s`;
const pct = (r: number): string => `${fmt(r * 100, 1)}%`;
const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISS');

async function main(): Promise<void> {
  const { seconds, reps } = parseArgs();
  const p = new OpenSslProvider();
  const info = p.info();
  const recipient = (await p.generateKey({ type: 'rsa', bits: 3072 })).publicKey;
  process.stdout.write(
    `seal-rate: ${info.fipsMode ? 'FIPS mode' : 'normal mode'}; Node ${process.version}; ${opensslVersion()}; ` +
      `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; ${seconds} s per measure; median of ${reps} round${reps === 1 ? '' : 's'}\n`,
  );
  type Pair = { rate: Rate; baseline: number; ratio: number };
  const rounds: { seal1k: Pair; seal16k: Pair; full1k: Pair }[] = [];
  const pair = (rate: Rate, size: number, baseline: number): Pair => ({
    rate,
    baseline,
    ratio: (rate.cpu * size) / baseline,
  });
  for (let i = 0; i < reps; i++) {
    const s1 = sealRate(p, recipient, KIB, seconds);
    const o1 = opensslSpeed(KIB, seconds);
    const s16 = sealRate(p, recipient, 16 * KIB, seconds);
    const o16 = opensslSpeed(16 * KIB, seconds);
    const f1 = await fullPathRate(p, recipient, KIB, seconds);
    rounds.push({ seal1k: pair(s1, KIB, o1), seal16k: pair(s16, 16 * KIB, o16), full1k: pair(f1, KIB, o1) });
  }
  const pick = (which: 'seal1k' | 'seal16k' | 'full1k'): Pair => {
    const all = rounds.map((r) => r[which]);
    return {
      rate: { cpu: median(all.map((x) => x.rate.cpu)), wall: median(all.map((x) => x.rate.wall)) },
      baseline: median(all.map((x) => x.baseline)),
      ratio: median(all.map((x) => x.ratio)),
    };
  };
  const seal1k = pick('seal1k');
  const seal16k = pick('seal16k');
  const full1k = pick('full1k');

  const row = (name: string, m: Pair, size: number, target: string, ok: boolean) => [
    name,
    `${fmt(m.rate.cpu)} rec/s\n${mb(m.rate.cpu * size)}`,
    `${fmt(m.rate.wall)} rec/s\n${mb(m.rate.wall * size)}`,
    `${fmt(m.baseline / size)} ops/s\n${mb(m.baseline)}`,
    pct(m.ratio),
    target,
    verdict(ok),
  ];
  const table = new Table({
    head: [
      'measure',
      'sealgate\n(CPU time)',
      'sealgate\n(wall clock)',
      'openssl speed\n(same run)',
      'ratio',
      'target',
      '',
    ],
    style: { head: [], border: [] },
  });
  table.push(
    row(
      '(a) seal, 1 KiB',
      seal1k,
      KIB,
      `≥ ${fmt(TARGET_RECORDS_PER_S)} rec/s`,
      seal1k.rate.cpu >= TARGET_RECORDS_PER_S,
    ),
    row(
      '(a) seal, 16 KiB',
      seal16k,
      16 * KIB,
      `≥ ${pct(TARGET_RATIO_16K)} of openssl`,
      seal16k.ratio >= TARGET_RATIO_16K,
    ),
    row(
      '(b) record → log →\n    disk, 1 KiB,\n    durable',
      full1k,
      KIB,
      `≥ ${fmt(TARGET_RECORDS_PER_S)} rec/s`,
      full1k.rate.wall >= TARGET_RECORDS_PER_S,
    ),
  );
  process.stdout.write(`${table.toString()}\n`);
  process.stdout.write(
    'ratio = sealgate plaintext bytes per CPU second / openssl bytes per second, measured back to back in\n' +
      'each round (median of the rounds). openssl speed divides by\n' +
      "CPU user time (unless -elapsed), so CPU time is the like-for-like figure on a shared machine; (b)'s\n" +
      'verdict uses wall-clock time, because durability waits for fsync.\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`seal-rate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
