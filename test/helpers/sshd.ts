/**
 * A real OpenSSH sshd for integration tests (design brief §8): Debian's /usr/sbin/sshd as root, on a free
 * loopback port, with a temporary config, an ECDSA host key, and one authorized_keys file for every user.
 *
 * - `/run/sshd` (the privilege separation directory) must exist.
 * - The test user is made with `useradd -m`, which leaves it locked (`!` in shadow); with `UsePAM no` sshd
 *   then refuses even key logins, so `usermod -p '*'` unlocks it without giving it a password.
 * - sshd reads authorized_keys as the target user, so the temporary directory is made world-readable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';
export const TEST_USER = 'sgtest';

export interface Sshd {
  readonly port: number;
  /** The listening sshd; each connection is served by a child of it. */
  readonly pid: number;
  readonly dir: string;
  readonly user: string;
  /** `[127.0.0.1]:PORT ecdsa-sha2-nistp256 AAAA…`: a known_hosts line pinning this sshd. */
  readonly knownHostsLine: string;
  /** Adds a public key line to the authorized keys of every user. */
  authorize(line: string): void;
  /** "Connection from" lines in sshd's log so far: TCP connections that reached it. */
  connections(): number;
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  readonly user?: string;
  /** Extra sshd_config lines, e.g. `Ciphers chacha20-poly1305@openssh.com`. */
  readonly extraConfig?: readonly string[];
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const address = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

/** Creates the user if needed (useradd -m) and unlocks it for key logins (usermod -p '*'). */
export function ensureUser(name: string): void {
  if (spawnSync('id', ['-u', name]).status !== 0) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/sh', name], { encoding: 'utf8' });
    // 9: the user exists (another test file made it meanwhile).
    if (r.status !== 0 && r.status !== 9) throw new Error(`useradd ${name}: ${r.stderr}`);
  }
  const r = spawnSync('usermod', ['-p', '*', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`usermod ${name}: ${r.stderr}`);
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function waitForPort(
  port: number,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${safeRead(logFile)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${safeRead(logFile)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Stops a child process: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const user = opts.user ?? TEST_USER;
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  ensureUser(user);
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = join(dir, 'host_ecdsa');
  run('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-C', 'test-sshd', '-f', hostKey]);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, '', { mode: 0o644 });
  chmodSync(authorizedKeys, 0o644);
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  const logFile = join(dir, 'sshd.log');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      `AuthorizedKeysFile ${authorizedKeys}`,
      'Subsystem sftp internal-sftp',
      'AcceptEnv LANG LC_* SEALGATE_*',
      'LogLevel VERBOSE',
      'X11Forwarding yes',
      'AllowTcpForwarding yes',
      'AllowAgentForwarding yes',
      'PrintMotd no',
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-f', config, '-E', logFile], { stdio: 'ignore' });
  try {
    await waitForPort(port, child, logFile);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  return {
    port,
    pid: child.pid ?? 0,
    dir,
    user,
    knownHostsLine: `[127.0.0.1]:${port} ${pub}`,
    authorize(line: string) {
      appendFileSync(authorizedKeys, `${line.trim()}\n`);
    },
    connections() {
      return (safeRead(logFile).match(/Connection from /g) ?? []).length;
    },
    log() {
      return safeRead(logFile);
    },
    async stop() {
      await stopChild(child, 3_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
