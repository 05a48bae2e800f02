/**
 * Forwarding is denied by default: `ssh -L`, `-R`, `-A` and `-X` each get a refusal, a FORWARD record
 * (allowed: false) and an operational log line, and the session itself goes on.
 *
 * A target with `allow_port_forwarding: true` lets `ssh -L` and `ssh -W` through: the target connects to
 * the destination (here a TCP echo server the test runs on the loopback, which is the target's too), and
 * FORWARD records the open and the close with byte counts; `-R` stays refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

/** A TCP echo server on the loopback; resolves with it and its port. */
async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('no address');
  return { server, port: address.port };
}

/** Connects to the `-L` listener at `port` (retrying until the client listens), sends `data`, reads it back. */
async function echoThrough(port: number, data: Buffer, timeoutMs = 15_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await new Promise<Buffer | undefined>((resolve) => {
      const chunks: Buffer[] = [];
      const s = createConnection({ host: '127.0.0.1', port }, () => s.end(data));
      s.on('data', (b: Buffer) => chunks.push(b));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', () => resolve(undefined));
    });
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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

describe("port forwarding allowed by a target's policy", () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let echo: { server: Server; port: number };
  let sessions = 0;
  before(async () => {
    sshd = await startSshd();
    echo = await startEcho();
    fx = await startGateFixture({
      sshd,
      configure: (c) => {
        c.targets.push({ ...c.targets[0]!, name: 'fwd', allow_port_forwarding: true });
      },
    });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    echo?.server.close();
  });

  it('ssh -L: bytes round-trip through the target, FORWARD records open and close with byte counts', async () => {
    const port = await freePort();
    const sent = Buffer.from('hello through the tunnel\n'.repeat(1000));
    let echoed: Buffer | undefined;
    const r = await fx.ssh('ops+fwd', ['sleep 3; echo session-done'], {
      extra: ['-L', `127.0.0.1:${port}:127.0.0.1:${echo.port}`],
      during: async () => {
        echoed = await echoThrough(port, sent);
      },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'session-done\n');
    assert.ok(echoed?.equals(sent), 'the echo came back whole');
    sessions += 1;
    const recs = await fx.recordsAfterSessions(sessions);
    const [open, close] = forwards(recs, 'direct-tcpip');
    assert.equal(open?.payload.allowed, true);
    assert.equal(open?.payload.event, 'open');
    assert.equal(open?.payload.host, '127.0.0.1');
    assert.equal(open?.payload.port, echo.port);
    assert.equal(open?.payload.jump, undefined);
    assert.equal(close?.payload.event, 'close');
    assert.equal(close?.payload.channel, open?.payload.channel);
    assert.equal(close?.payload.bytes_in, sent.length);
    assert.equal(close?.payload.bytes_out, sent.length);
    // Metadata only: the tunnel's bytes are not in the log.
    const logged = Buffer.concat(
      recs.filter((x) => x.type.startsWith('DATA_')).map((x) => x.payload.data ?? new Uint8Array(0)),
    );
    assert.equal(logged.includes('hello through the tunnel'), false);
    assert.ok(fx.opsLog.some((l) => l.message === 'port forward closed' && l.bytes_in === sent.length));
  });

  it('ssh -W: 4 MiB each way with flow control, the session ends when the destination does', async () => {
    const sent = Buffer.alloc(4 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789\n');
    const r = await fx.ssh('ops+fwd', [], {
      extra: ['-W', `127.0.0.1:${echo.port}`],
      input: sent,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(sent), `echoed ${r.stdout.length} of ${sent.length} bytes`);
    sessions += 1;
    const recs = await fx.recordsAfterSessions(sessions);
    const close = forwards(recs, 'direct-tcpip')
      .filter((x) => x.payload.event === 'close')
      .at(-1);
    assert.equal(close?.payload.bytes_in, sent.length);
    assert.equal(close?.payload.bytes_out, sent.length);
  });

  it('a destination nothing listens on: the open fails, and the close records the error', async () => {
    const port = await freePort();
    const r = await fx.ssh('ops+fwd', [], { extra: ['-W', `127.0.0.1:${port}`], timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /open failed/);
    sessions += 1;
    const recs = await fx.recordsAfterSessions(sessions);
    const close = forwards(recs, 'direct-tcpip').at(-1);
    assert.equal(close?.payload.event, 'close');
    assert.equal(close?.payload.port, port);
    assert.match(String(close?.payload.error), /the target could not connect/);
  });

  it('ssh -R stays refused on a target that allows port forwarding', async () => {
    const r = await fx.ssh('ops+fwd', ['echo still-here'], { extra: ['-R', '127.0.0.1:40124:127.0.0.1:22'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /remote port forwarding failed for listen port 40124/);
    sessions += 1;
    const recs = await fx.recordsAfterSessions(sessions);
    assert.equal(forwards(recs, 'tcpip-forward').at(-1)?.payload.allowed, false);
  });

  it('a target without the policy still refuses ssh -W', async () => {
    const r = await fx.ssh('ops+local', [], { extra: ['-W', `127.0.0.1:${echo.port}`], timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    sessions += 1;
    const recs = await fx.recordsAfterSessions(sessions);
    const last = forwards(recs, 'direct-tcpip').at(-1);
    assert.equal(last?.payload.allowed, false);
    assert.equal(last?.payload.reason, 'policy');
  });
});
