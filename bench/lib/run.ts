/**
 * Small pieces the SSH benchmarks share: command-line options, medians, number formatting, and running
 * one shell pipeline around `ssh` while timing it.
 */
import { spawn } from 'node:child_process';

/** `--name N` as a positive number (`k`, `M`, `G` suffixes are powers of 1024), or the fallback. */
export function numberOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const text = process.argv[i + 1] ?? '';
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m?.[2] ?? '').toLowerCase()] ?? 1;
  const n = m ? Math.round(Number(m[1]) * scale) : NaN;
  if (!Number.isFinite(n) || n < 1) throw new Error(`${name} needs a positive number, not "${text}"`);
  return n;
}

export const flag = (name: string): boolean => process.argv.includes(name);

export function stringOption(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Every value of a repeatable `--name VALUE` option. */
export function listOption(name: string): string[] {
  return process.argv.flatMap((a, i) =>
    a === name && i + 1 < process.argv.length ? [process.argv[i + 1]!] : [],
  );
}

/** The median of an odd count, the mean of the two middle values of an even one. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export interface Timed {
  readonly seconds: number;
  readonly stdout: string;
}

/**
 * Runs `sh -c script` with `args` as "$@" and returns the wall time; throws with stderr when it fails.
 * The script must be self-contained (stdin is /dev/null).
 */
export function timedShell(script: string, args: readonly string[], timeoutMs: number): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code === 0) resolve({ seconds, stdout });
      else reject(new Error(`sh -c '${script}' failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}

/** `uptime`'s load averages, for the report. */
export async function loadAverages(): Promise<string> {
  const { loadavg } = await import('node:os');
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}
