/**
 * Forwarding is denied by default: `ssh -L`, `-R`, `-A` and `-X` each get a refusal, a FORWARD record
 * (allowed: false) and an operational log line, and the session itself goes on.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

const forwards = (recs: readonly Rec[], kind: string) =>
  recs.filter((r) => r.type === 'FORWARD' && r.payload.kind === kind);

/** Connects to `port` until something accepts (the ssh client's -L listener), then closes. */
async function knock(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.on('close', () => resolve(true));
        s.on('error', () => resolve(true));
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('forwarding is denied by default', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let dir: string;
  let agent: ChildProcess | undefined;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-fwd-'));
  });
  after(async () => {
    agent?.kill('SIGTERM');
    await fx?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ssh -L: the direct-tcpip channel is refused, the session goes on', async () => {
    const port = await freePort();
    const r = await fx.ssh('ops+local', ['sleep 2; echo still-here'], {
      extra: ['-L', `127.0.0.1:${port}:127.0.0.1:22`],
      during: () => knock(port),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'still-here\n');
    // ssh2 refuses a channel it was asked about with "connect failed" (it has no way to say "prohibited").
    assert.match(r.stderr, /channel \d+: open failed/);
    const recs = await fx.recordsAfterSessions(1);
    const [fwd] = forwards(recs, 'direct-tcpip');
    assert.equal(fwd?.payload.allowed, false);
    assert.equal(fwd?.payload.host, '127.0.0.1');
    assert.equal(fwd?.payload.port, 22);
    assert.ok(fx.opsLog.some((l) => l.message === 'forwarding refused' && l.kind === 'direct-tcpip'));
  });

  it('ssh -R: the tcpip-forward request is refused, the session goes on', async () => {
    const r = await fx.ssh('ops+local', ['echo still-here'], {
      extra: ['-R', '127.0.0.1:40123:127.0.0.1:22'],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'still-here\n');
    assert.match(r.stderr, /remote port forwarding failed for listen port 40123/);
    const recs = await fx.recordsAfterSessions(2);
    const [fwd] = forwards(recs, 'tcpip-forward');
    assert.equal(fwd?.payload.allowed, false);
    assert.equal(fwd?.payload.port, 40123);
  });

  it('ssh -A: agent forwarding is refused, the session goes on without an agent', async () => {
    const sock = join(dir, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const r = await fx.ssh('ops+local', ['echo "agent=${SSH_AUTH_SOCK:-none}"'], {
      extra: ['-A', '-o', `IdentityAgent=${sock}`],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SSH_AUTH_SOCK: sock },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'agent=none\n');
    const recs = await fx.recordsAfterSessions(3);
    assert.equal(forwards(recs, 'auth-agent')[0]?.payload.allowed, false);
  });

  it('ssh -X: X11 forwarding is refused (the cookie is not recorded), the session goes on', async () => {
    const r = await fx.ssh('ops+local', ['echo "display=${DISPLAY:-none}"'], {
      extra: ['-X'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DISPLAY: ':0', XAUTHORITY: join(dir, 'xauth') },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'display=none\n');
    assert.match(r.stderr, /X11 forwarding request failed/);
    const recs = await fx.recordsAfterSessions(4);
    const [fwd] = forwards(recs, 'x11');
    assert.equal(fwd?.payload.allowed, false);
    assert.equal(fwd?.payload.cookie, undefined);
  });
});
