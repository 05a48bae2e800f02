/**
 * The file-descriptor exhaustion attack, against `sealgate serve` as an operator runs it, under a low
 * descriptor limit (`prlimit --nofile=256:256`, so Node cannot raise it): a flood of 1,100 silent
 * connections from 220 addresses (5 each, the per-source startup cap) must not fail the store. A
 * session that runs through the flood keeps being recorded, the gate refuses what its fd budget cannot
 * hold, and after SIGTERM, a restart and another SIGTERM, `sealgate verify` of the store says VERIFIED:
 * no RUN_NOT_CLOSED, no failure.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { openStore } from '../helpers/gate-fixture.js';
import { cliPath } from '../helpers/paths.js';
import { runSsh } from '../helpers/ssh-client.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

const FD_LIMIT = 256;

interface Serve {
  readonly child: ChildProcess;
  log(): string;
  lines(): Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

async function startServe(config: string): Promise<Serve> {
  const child = spawn(
    'prlimit',
    [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, cliPath(), 'serve', '--config', config],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 15_000;
  while (!log.includes('"listening"')) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    exited,
    log: () => log,
    lines: () =>
      log
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function stop(serve: Serve): Promise<number | null> {
  serve.child.kill('SIGTERM');
  const code = await Promise.race([
    serve.exited,
    new Promise<string>((res) => setTimeout(() => res('hung'), 15_000).unref()),
  ]);
  return code as number | null;
}

describe('fd exhaustion by a connection flood (sealgate serve, nofile 256)', () => {
  let sshd: Sshd;
  let dir: string;
  let serve: Serve | undefined;
  const flood: Socket[] = [];
  before(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), 'sealgate-fd-'));
  });
  after(async () => {
    for (const s of flood) s.destroy();
    serve?.child.kill('SIGKILL');
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the store never fails, an open session stays recorded, and the log verifies after a restart', async () => {
    const gateDir = join(dir, 'gate');
    const port = await freePort();
    const init = spawnSync(
      process.execPath,
      [
        cliPath(),
        'init',
        gateDir,
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
    writeFileSync(join(gateDir, 'known_hosts', 'local'), `${sshd.knownHostsLine}\n`);
    sshd.authorize(readFileSync(join(gateDir, 'keys', 'upstream_key.pub'), 'utf8'));
    const configPath = join(gateDir, 'sealgate.yaml');
    const config = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    config.limits = { login_grace_seconds: 30 };
    writeFileSync(configPath, stringify(config));

    serve = await startServe(configPath);
    const fds = serve.lines().find((l) => l.message === 'file descriptors');
    assert.ok(fds, serve.log());
    assert.equal(fds.soft_limit, FD_LIMIT);
    assert.equal(fds.hard_limit, FD_LIMIT);
    const maxConnections = Number(fds.max_connections);
    assert.ok(maxConnections > 10 && maxConnections < 128, `max_connections ${maxConnections}`);

    const listening = serve.lines().find((l) => l.message === 'listening')!;
    const knownHosts = join(dir, 'client_known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${String(listening.host_key)}\n`);
    const ssh = (command: string) =>
      runSsh(
        [
          '-F',
          '/dev/null',
          '-o',
          `UserKnownHostsFile=${knownHosts}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          'IdentityAgent=none',
          '-i',
          join(gateDir, 'keys', 'demo_user_key.pem'),
          '-b',
          '127.0.0.2',
          '-p',
          String(port),
          'demo+local@127.0.0.1',
          command,
        ],
        { timeoutMs: 60_000 },
      );

    // A session that is running when the flood comes, and goes on through it.
    const ticks = 40;
    const running = ssh(`for i in $(seq 1 ${ticks}); do echo tick $i; sleep 0.1; done`);
    await new Promise((r) => setTimeout(r, 800));

    for (let a = 0; a < 220; a++) {
      for (let k = 0; k < 5; k++) {
        const s = createConnection({
          host: '127.0.0.1',
          port,
          localAddress: `127.0.${1 + (a >> 7)}.${1 + (a & 127)}`,
        });
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        flood.push(s);
      }
      if (a % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim().split('\n').length, ticks);

    // The gate held what its budget allows and refused the rest, with reasons.
    const refusals = serve
      .lines()
      .filter(
        (l) =>
          String(l.message).startsWith('connections refused') ||
          l.message === 'connection refused before authentication',
      );
    assert.ok(refusals.length > 0, 'refusals are logged');
    const reasons = new Set(refusals.map((l) => String(l.reason ?? 'summary')));
    assert.ok(reasons.has('max-connections') || reasons.has('max-startups'), [...reasons].join(', '));
    process.stdout.write(
      `# nofile ${FD_LIMIT}: ${String(fds.open)} open at start, ${String(fds.socket_budget)} sockets, max ${maxConnections} connections; refusal reasons: ${[...reasons].join(', ')}\n`,
    );
    assert.doesNotMatch(serve.log(), /sealed log failed|EMFILE/);

    for (const s of flood) s.destroy();
    flood.length = 0;
    await new Promise((r) => setTimeout(r, 500));
    const after = await ssh('echo after-the-flood');
    assert.equal(after.code, 0, after.stderr);

    assert.equal(await stop(serve), 0, serve.log());
    assert.doesNotMatch(serve.log(), /sealed log failed|EMFILE|did not close cleanly/);
    serve = await startServe(configPath);
    assert.doesNotMatch(serve.log(), /crash recovery/i, 'the restart finds a cleanly closed log');
    assert.equal(await stop(serve), 0, serve.log());
    serve = undefined;

    const verify = spawnSync(
      process.execPath,
      [cliPath(), 'verify', join(gateDir, 'store'), '--keys', join(gateDir, 'keys', 'signer.pub.pem')],
      { encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /result: VERIFIED/);
    assert.doesNotMatch(verify.stdout, /RUN_NOT_CLOSED/);

    const provider = new OpenSslProvider();
    const recipient = await provider.loadPrivateKey(`file:${join(gateDir, 'keys', 'recipient.key.pem')}`);
    const recs = await openStore(provider, join(gateDir, 'store'), recipient);
    const out = recs
      .filter((x) => x.type === 'DATA_OUT')
      .map((x) => Buffer.from(x.payload.data ?? []).toString())
      .join('');
    assert.equal((out.match(/tick \d+/g) ?? []).length, ticks, 'every tick of the session is in the log');
    assert.ok(recs.some((x) => x.type === 'EXEC' && x.payload.command === 'echo after-the-flood'));
  });
});
