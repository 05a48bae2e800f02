/**
 * `sealgate init` and `sealgate serve` as child processes, as an operator runs them: a demo gate in
 * front of a test sshd (the target pinned, the gate's upstream key authorized), its config edited by the
 * test, and `serve` started (optionally under `prlimit`) and waited for until it logs "listening".
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { cliPath } from './paths.js';
import type { Sshd } from './sshd.js';

export interface DemoGate {
  readonly dir: string;
  readonly config: string;
  readonly port: number;
  readonly keys: string;
}

/** `sealgate init DIR` for `sshd` on `port`; `edit` changes the parsed config before it is written back. */
export function initDemoGate(
  sshd: Sshd,
  dir: string,
  port: number,
  edit?: (config: Record<string, Record<string, unknown>>) => void,
): DemoGate {
  const init = spawnSync(
    process.execPath,
    [
      cliPath(),
      'init',
      dir,
      '--target-port',
      String(sshd.port),
      '--target-user',
      sshd.user,
      '--listen-port',
      String(port),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(init.status, 0, init.stderr);
  writeFileSync(join(dir, 'known_hosts', 'local'), `${sshd.knownHostsLine}\n`);
  sshd.authorize(readFileSync(join(dir, 'keys', 'upstream_key.pub'), 'utf8'));
  const config = join(dir, 'sealgate.yaml');
  if (edit) {
    const parsed = parse(readFileSync(config, 'utf8')) as Record<string, Record<string, unknown>>;
    edit(parsed);
    writeFileSync(config, stringify(parsed), { mode: 0o600 });
  }
  return { dir, config, port, keys: join(dir, 'keys') };
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Its JSON log lines so far. */
  lines(): Record<string, unknown>[];
  /** The "listening" line's host key, for a client's known_hosts. */
  readonly hostKey: string;
  /** SIGTERM, and its exit code (or "hung" after 15 s). */
  stop(): Promise<number | null | 'hung'>;
}

/** Starts `sealgate serve --config CONFIG`, under `prlimit --nofile=N:N` when `nofile` is set. */
export async function startServe(config: string, opts: { nofile?: number } = {}): Promise<ServeProcess> {
  const argv = [cliPath(), 'serve', '--config', config];
  const child =
    opts.nofile === undefined
      ? spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('prlimit', [`--nofile=${opts.nofile}:${opts.nofile}`, process.execPath, ...argv], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 15_000;
  while (!log.includes('"listening"')) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = () =>
    log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const listening = lines().find((l) => l.message === 'listening');
  return {
    child,
    exited,
    log: () => log,
    lines,
    hostKey: String(listening?.host_key),
    stop: async () => {
      child.kill('SIGTERM');
      return Promise.race([
        exited,
        new Promise<'hung'>((res) => setTimeout(() => res('hung'), 15_000).unref()),
      ]);
    },
  };
}
