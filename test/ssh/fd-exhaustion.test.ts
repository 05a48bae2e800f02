/**
 * The file-descriptor exhaustion attack, against `sealgate serve` as an operator runs it, under a low
 * descriptor limit (`prlimit --nofile=256:256`, so Node cannot raise it): a flood of 1,100 silent
 * connections from 220 addresses (5 each, the per-source startup cap) must not fail the store. A
 * session that runs through the flood keeps being recorded, the gate refuses what its fd budget cannot
 * hold, and after SIGTERM, a restart and another SIGTERM, `sealgate verify` of the store says VERIFIED:
 * no RUN_NOT_CLOSED, no failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { openStore } from '../helpers/gate-fixture.js';
import { cliPath } from '../helpers/paths.js';
import { initDemoGate, startServe, type ServeProcess } from '../helpers/serve.js';
import { runSsh } from '../helpers/ssh-client.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

const FD_LIMIT = 256;

describe('fd exhaustion by a connection flood (sealgate serve, nofile 256)', () => {
  let sshd: Sshd;
  let dir: string;
  let serve: ServeProcess | undefined;
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
    const port = await freePort();
    const gate = initDemoGate(sshd, join(dir, 'gate'), port, (c) => {
      c.limits = { login_grace_seconds: 30 };
    });
    const gateDir = gate.dir;
    const configPath = gate.config;

    serve = await startServe(configPath, { nofile: FD_LIMIT });
    const fds = serve.lines().find((l) => l.message === 'file descriptors');
    assert.ok(fds, serve.log());
    assert.equal(fds.soft_limit, FD_LIMIT);
    assert.equal(fds.hard_limit, FD_LIMIT);
    const maxConnections = Number(fds.max_connections);
    assert.ok(maxConnections > 10 && maxConnections < 128, `max_connections ${maxConnections}`);

    const knownHosts = join(dir, 'client_known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${serve.hostKey}\n`);
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

    assert.equal(await serve.stop(), 0, serve.log());
    assert.doesNotMatch(serve.log(), /sealed log failed|EMFILE|did not close cleanly/);
    serve = await startServe(configPath, { nofile: FD_LIMIT });
    assert.doesNotMatch(serve.log(), /crash recovery/i, 'the restart finds a cleanly closed log');
    assert.equal(await serve.stop(), 0, serve.log());
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
