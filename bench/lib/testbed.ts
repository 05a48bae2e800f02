/**
 * The SSH benchmarks' test bed: one real sshd (test/helpers/sshd.ts) and one `sealgate serve` in front
 * of it, run as a child process the way an operator runs it, so FIPS mode is a real `node --force-fips`
 * gate with the FIPS provider's environment and recording and sealing are on (the default log policy).
 *
 * The same OpenSSH client and the same key reach sshd two ways: directly, and through the gate
 * (`demo+local@`). Both legs of the gate and the direct connection are pinned to one cipher and one key
 * exchange (sshd accepts only those), so the comparison is like for like. The gate's CPU time is read from /proc (utime + stime).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { fipsDir, fipsEnvironment } from '../../src/crypto/index.js';
import { freePort, startSshd, stopChild, type Sshd } from '../../test/helpers/sshd.js';

/** Both legs and the direct connection use this cipher, and this key exchange (approved in FIPS mode). */
export const BENCH_CIPHER = 'aes256-gcm@openssh.com';
export const BENCH_KEX = 'ecdh-sha2-nistp256';

const REPO = resolve(import.meta.dirname, '..', '..', '..');
const SEALGATE = join(REPO, 'bin', 'sealgate.js');

export interface TestbedOptions {
  readonly fips: boolean;
  /** Extra Node flags for the gate process (e.g. `--cpu-prof`). */
  readonly gateNodeArgs?: readonly string[];
  /** `recording.max_unlogged_bytes` for the gate (its default when omitted). */
  readonly maxUnloggedBytes?: number;
}

export interface Testbed {
  readonly fips: boolean;
  /** The gate's own process (the FIPS-mode Node in FIPS mode, not a launcher). */
  readonly gatePid: number;
  /** `ssh` arguments up to and including the destination, for each path. */
  readonly direct: string[];
  readonly gate: string[];
  /** The gate's CPU time so far (user + system), seconds. */
  gateCpuSeconds(): number;
  /**
   * Starts adding up the CPU time of sshd's connection processes (its descendants, polled every 50 ms:
   * sshd does not wait for all of them, so its children's times in /proc miss some). `stop` returns
   * the seconds used since the start, missing at most the last 50 ms of each process.
   */
  trackSshd(): { stop(): number };
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/**
 * CPU time of a process from /proc/PID/stat (clock ticks: 100 per second on Linux), seconds: its own
 * (utime + stime), or that of its children it has waited for (cutime + cstime).
 */
export function processCpuSeconds(pid: number | 'self', which: 'own' | 'children' = 'own'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17 of stat(5); the slice starts at field 3.
  const at = which === 'own' ? 11 : 13;
  return (Number(fields[at]) + Number(fields[at + 1])) / 100;
}

/** The pids of a process's descendants (Linux /proc/PID/task/TID/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    let text = '';
    try {
      text = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8');
    } catch {
      return; // gone
    }
    for (const c of text.split(' ').filter(Boolean).map(Number)) {
      out.push(c);
      visit(c);
    }
  };
  visit(pid);
  return out;
}

function trackDescendants(root: number): { stop(): number } {
  const start = new Map<number, number>();
  const last = new Map<number, number>();
  const poll = (first: boolean) => {
    for (const pid of descendants(root)) {
      let cpu: number;
      try {
        cpu = processCpuSeconds(pid);
      } catch {
        continue;
      }
      if (first) start.set(pid, cpu);
      else if (!start.has(pid)) start.set(pid, 0);
      last.set(pid, cpu);
    }
  };
  poll(true);
  const timer = setInterval(() => poll(false), 50);
  return {
    stop() {
      clearInterval(timer);
      poll(false);
      let sum = 0;
      for (const [pid, cpu] of last) sum += cpu - (start.get(pid) ?? 0);
      return sum;
    },
  };
}

function sshArgs(knownHosts: string, key: string, port: number, login: string): string[] {
  const o = (s: string) => ['-o', s];
  return [
    '-F',
    '/dev/null',
    ...o('BatchMode=yes'),
    ...o('StrictHostKeyChecking=yes'),
    ...o(`UserKnownHostsFile=${knownHosts}`),
    ...o('IdentitiesOnly=yes'),
    ...o('IdentityAgent=none'),
    ...o('ControlMaster=no'),
    ...o('ControlPath=none'),
    ...o('Compression=no'),
    ...o('LogLevel=ERROR'),
    ...o('ConnectTimeout=30'),
    ...o(`KexAlgorithms=${BENCH_KEX}`),
    '-c',
    BENCH_CIPHER,
    '-T',
    '-i',
    key,
    '-p',
    String(port),
    login,
  ];
}

async function waitForListening(child: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(logFile, 'utf8');
    if (text.includes('"listening"')) return;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`sealgate serve did not start (exit ${child.exitCode}):\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startTestbed(opts: TestbedOptions): Promise<Testbed> {
  const sshd: Sshd = await startSshd({
    extraConfig: [`Ciphers ${BENCH_CIPHER}`, `KexAlgorithms ${BENCH_KEX}`, 'LogLevel ERROR'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-bench-'));
  try {
    const gateDir = join(dir, 'gate');
    const port = await freePort();
    run(process.execPath, [
      SEALGATE,
      'init',
      gateDir,
      '--target-port',
      String(sshd.port),
      '--target-user',
      sshd.user,
      '--listen-port',
      String(port),
    ]);
    const keys = join(gateDir, 'keys');
    writeFileSync(join(gateDir, 'known_hosts', 'local'), `${sshd.knownHostsLine}\n`);
    sshd.authorize(readFileSync(join(keys, 'upstream_key.pub'), 'utf8'));
    const userKey = join(keys, 'demo_user_key.pem');
    sshd.authorize(run('ssh-keygen', ['-y', '-f', userKey]));

    const configFile = join(gateDir, 'sealgate.yaml');
    const config = parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    config.ssh = { client_leg: { cipher: [BENCH_CIPHER] }, upstream_leg: { cipher: [BENCH_CIPHER] } };
    config.fips = opts.fips;
    if (opts.maxUnloggedBytes !== undefined) {
      const recording = config.recording as Record<string, unknown>;
      recording.max_unlogged_bytes = opts.maxUnloggedBytes;
    }
    writeFileSync(configFile, stringify(config), { mode: 0o600 });

    const directKnownHosts = join(dir, 'direct_known_hosts');
    writeFileSync(directKnownHosts, `${sshd.knownHostsLine}\n`);
    const gateKnownHosts = join(dir, 'gate_known_hosts');
    const gateHostKey = run('ssh-keygen', ['-y', '-f', join(keys, 'host_key.pem')]).trim();
    writeFileSync(gateKnownHosts, `[127.0.0.1]:${port} ${gateHostKey}\n`);

    // FIPS mode: start the FIPS-mode Node ourselves (what `serve` would relaunch), so gatePid is the gate.
    const env = opts.fips
      ? { ...process.env, ...fipsEnvironment(fipsDir()), SEALGATE_FIPS_CHILD: '1' }
      : process.env;
    const nodeArgs = [...(opts.fips ? ['--force-fips'] : []), ...(opts.gateNodeArgs ?? [])];
    const logFile = join(dir, 'gate.out');
    writeFileSync(logFile, '');
    const out = openSync(logFile, 'a');
    const child = spawn(process.execPath, [...nodeArgs, SEALGATE, 'serve', '--config', configFile], {
      env,
      stdio: ['ignore', out, out],
    });
    await waitForListening(child, logFile).catch((err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    });
    const gatePid = child.pid ?? 0;
    return {
      fips: opts.fips,
      gatePid,
      direct: sshArgs(directKnownHosts, userKey, sshd.port, `${sshd.user}@127.0.0.1`),
      gate: sshArgs(gateKnownHosts, userKey, port, 'demo+local@127.0.0.1'),
      gateCpuSeconds: () => processCpuSeconds(gatePid),
      trackSshd: () => trackDescendants(sshd.pid),
      async stop() {
        await stopChild(child, 30_000);
        await sshd.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
