/**
 * A connection's life: several session channels on one connection (OpenSSH connection sharing), and a gate
 * that stops while a session is running (SESSION_END "gate stopping", the client let go at once).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

describe('connection lifecycle', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let dir: string;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-life-'));
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('bridges several session channels of one connection, numbered in one recording', async () => {
    const control = join(dir, 'ctl');
    const master = spawn(
      'ssh',
      [
        '-o',
        'ControlMaster=yes',
        '-o',
        `ControlPath=${control}`,
        '-N',
        ...fx.sshOptions(),
        'ops+local@127.0.0.1',
      ],
      {
        stdio: 'ignore',
      },
    );
    try {
      const deadline = Date.now() + 10_000;
      while (!existsSync(control)) {
        assert.ok(Date.now() < deadline, 'no control socket');
        await new Promise((r) => setTimeout(r, 50));
      }
      const shared = ['-o', `ControlPath=${control}`, '-o', 'ControlMaster=no'];
      const [a, b] = await Promise.all([
        fx.ssh('ops+local', ['echo one'], { extra: shared }),
        fx.ssh('ops+local', ['echo two'], { extra: shared }),
      ]);
      assert.equal(a.stdout.toString(), 'one\n', a.stderr);
      assert.equal(b.stdout.toString(), 'two\n', b.stderr);
    } finally {
      // `-O exit` is how a master is stopped; one given SIGTERM here sometimes sat until the next packet
      // from the gate (its 15 s keepalive) before exiting.
      spawnSync('ssh', ['-O', 'exit', '-o', `ControlPath=${control}`, 'gate'], { stdio: 'ignore' });
      master.kill('SIGKILL');
    }
    const recs = await fx.recordsAfterSessions(1);
    const execs = recs.filter((r) => r.type === 'EXEC');
    assert.equal(execs.length, 2);
    assert.equal(execs[0]?.session, execs[1]?.session);
    assert.deepEqual(execs.map((r) => r.payload.channel).sort(), [0, 1]);
    const session = recs.filter((r) => r.session === execs[0]?.session);
    assert.equal(session.filter((r) => r.type === 'SESSION_START').length, 1);
    assert.equal(session.filter((r) => r.type === 'CHANNEL_CLOSE').length, 2);
  });

  it('ends the client connection when the target goes away mid-session', async () => {
    const started = () => (sshd.log().match(/Starting session: command/g) ?? []).length;
    const before = started();
    const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', 'sleep 20'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const deadline = Date.now() + 10_000;
      while (started() === before) {
        assert.ok(Date.now() < deadline, 'the session did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      // The children of our sshd serve its connections: end them, as a target reboot would.
      const kids = spawnSync('pgrep', ['-P', String(sshd.pid)], { encoding: 'utf8' })
        .stdout.split(/\s+/)
        .filter(Boolean);
      assert.ok(kids.length > 0);
      for (const pid of kids) process.kill(Number(pid), 'SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('hung'), 8_000).unref()),
      ]);
      assert.notEqual(code, 'hung');
    } finally {
      child.kill('SIGKILL');
    }
    const recs = await fx.recordsAfterSessions(2);
    const exec = recs.find((r) => r.type === 'EXEC' && r.payload.command === 'sleep 20');
    const end = recs.find((r) => r.type === 'SESSION_END' && r.session === exec?.session);
    assert.equal(end?.payload.reason, 'target closed the connection');
  });

  it('ends running sessions when the gate stops: SESSION_END "gate stopping", the client let go', async () => {
    const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', 'sleep 30'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const deadline = Date.now() + 10_000;
      while (!(await fx.records()).some((r) => r.type === 'EXEC' && r.payload.command === 'sleep 30')) {
        assert.ok(Date.now() < deadline, 'the session did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const t0 = Date.now();
      await fx.gate.close('gate stopping');
      const code = await exited;
      assert.ok(Date.now() - t0 < 3_000, `the client was let go after ${Date.now() - t0} ms`);
      assert.equal(code, 255);
      assert.equal(fx.gate.connections, 0);
    } finally {
      child.kill('SIGKILL');
    }
    const recs = await fx.records();
    const exec = recs.find((r) => r.type === 'EXEC' && r.payload.command === 'sleep 30');
    const end = recs.find((r) => r.type === 'SESSION_END' && r.session === exec?.session);
    assert.equal(end?.payload.reason, 'gate stopping');
    assert.equal(end?.final, true);
    // The channel's close is recorded before the session's end, not lost with the stop.
    const types = recs.filter((r) => r.session === exec?.session).map((r) => r.type);
    assert.deepEqual(types.slice(-2), ['CHANNEL_CLOSE', 'SESSION_END']);
  });
});
