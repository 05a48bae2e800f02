/**
 * Pre-authentication limits against a real gate, as an attacker on loopback would try them, with the
 * default limits except where a test says (a shorter login grace time, so the test does not take two
 * minutes). Loopback has many addresses: the attacker is 127.0.0.1, legitimate users come from
 * 127.0.0.2 and up (`ssh -b`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, type NextAuthHandler } from 'ssh2';
import { startGateFixture, sshKeygen, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

/** Opens `n` TCP connections that never send a byte; each records when it was closed by the gate. */
async function silentFlood(
  port: number,
  n: number,
  localAddress = '127.0.0.1',
): Promise<{ sockets: Socket[]; closedAt: (number | undefined)[]; openedAt: number }> {
  const openedAt = Date.now();
  const closedAt: (number | undefined)[] = new Array<number | undefined>(n).fill(undefined);
  const sockets: Socket[] = [];
  const connected: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = createConnection({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => undefined);
    s.on('data', () => undefined); // the gate may send its version line first; it is read and dropped
    s.on('close', () => (closedAt[i] = Date.now()));
    connected.push(new Promise((resolve) => (s.once('connect', resolve), s.once('close', resolve))));
    sockets.push(s);
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(connected);
  return { sockets, closedAt, openedAt };
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function logged(fx: GateFixture, message: string): Record<string, unknown>[] {
  return fx.opsLog.filter((l) => l.message === message);
}

describe('pre-authentication limits', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.stop();
  });

  describe('a flood of 3,000 silent connections', () => {
    let fx: GateFixture;
    const graceSeconds = 8;
    before(async () => {
      fx = await startGateFixture({
        sshd,
        configure: (c) => {
          c.limits = { login_grace_seconds: graceSeconds };
        },
      });
    });
    after(async () => {
      await fx?.close();
    });

    it('keeps serving a legitimate user (100 logins in a row), drops the flood within the grace time, and the log verifies', async () => {
      const flood = await silentFlood(fx.gate.port, 3000);
      try {
        await floodTest(flood);
      } finally {
        for (const s of flood.sockets) s.destroy();
      }
    });

    async function floodTest(flood: Awaited<ReturnType<typeof silentFlood>>): Promise<void> {
      // A source may hold 100 connections (per_source_max_connections): 5 in their handshake (the
      // startup slots) and 95 waiting for a slot; the other 2,900 are refused at accept. Under load,
      // connections beyond the listen backlog are retried by the kernel (SYN back-off), so allow time.
      const held = () => flood.closedAt.filter((t) => t === undefined).length;
      await waitFor(() => held() <= 100, 15_000, `the refused connections to be closed (${held()} open)`);
      assert.equal(held(), 100, 'connections the gate holds for 127.0.0.1');
      assert.equal(fx.gate.admissionStats().startups, 5);
      assert.equal(fx.gate.admissionStats().waiting, 95);
      const started = Date.now();
      for (let i = 0; i < 100; i++) {
        const r = await fx.ssh('ops+local', [`echo login-${i}`], { extra: ['-b', '127.0.0.2'] });
        assert.equal(r.code, 0, `login ${i}: ${r.stderr}`);
        assert.equal(r.stdout.toString(), `login-${i}\n`);
      }
      const loginsSeconds = (Date.now() - started) / 1000;
      // Every flood connection is gone within the grace time (plus the 1 s cut-loose and slack).
      await waitFor(
        () => flood.closedAt.every((t) => t !== undefined),
        Math.max(0, flood.openedAt + (graceSeconds + 3) * 1000 - Date.now()),
        'the flood to be dropped',
      );
      const latest = Math.max(...flood.closedAt.map((t) => t!)) - flood.openedAt;
      assert.ok(latest <= (graceSeconds + 2) * 1000, `last flood connection dropped after ${latest} ms`);

      const stats = fx.gate.admissionStats();
      assert.equal(stats.refused['per-source-connections'], 2900);
      assert.equal(stats.penalties['grace-exceeded'], 100, JSON.stringify(stats));
      // Refusals are logged with their reason, once per source and reason, then summed up.
      const refusal = logged(fx, 'connection refused before authentication');
      assert.ok(
        refusal.some((l) => l.reason === 'per-source-connections' && l.source_block === '127.0.0.1/32'),
      );
      assert.ok(refusal.length < 10, `refusal lines: ${refusal.length}`);
      assert.ok(logged(fx, 'login grace time over; connection closed').length >= 1);

      const recs = await fx.recordsAfterSessions(100, 20_000);
      assert.equal(recs.filter((r) => r.type === 'SESSION_START').length, 100);
      const report = await fx.verify();
      assert.deepEqual(report.failures, []);
      assert.ok(report.ok);
      process.stdout.write(`# 100 logins during the flood took ${loginsSeconds.toFixed(1)} s\n`);
    }
  });

  describe('1,000 silent connections from 10 addresses', () => {
    let fx: GateFixture;
    before(async () => {
      fx = await startGateFixture({
        sshd,
        configure: (c) => {
          // max_connections 400, so that the flood could fill it; max_startups raised above the 10
          // sources' 50 slots, so that random early drop does not decide the fresh login.
          c.limits = { login_grace_seconds: 20, max_connections: 400, max_startups: '100:30:200' };
        },
      });
    });
    after(async () => {
      await fx?.close();
    });

    it('cannot fill the gate with waiting connections: max_waiting_connections refuses them, a fresh address logs in', async () => {
      const floods: Awaited<ReturnType<typeof silentFlood>>[] = [];
      try {
        for (let i = 0; i < 10; i++) floods.push(await silentFlood(fx.gate.port, 100, `127.0.0.${10 + i}`));
        const held = () => floods.flatMap((f) => f.closedAt).filter((t) => t === undefined).length;
        // 10 × 5 startup slots, and the waiting queue's default: a quarter of max_connections (100).
        await waitFor(() => held() <= 150, 10_000, 'the refused connections to be closed');
        const stats = fx.gate.admissionStats();
        assert.deepEqual(
          { held: held(), startups: stats.startups, waiting: stats.waiting, connections: stats.connections },
          { held: 150, startups: 50, waiting: 100, connections: 150 },
        );
        assert.equal(stats.refused['max-waiting'], 850);
        assert.equal(stats.refused['max-connections'], 0);
        const refusal = logged(fx, 'connection refused before authentication');
        assert.ok(
          refusal.some((l) => l.reason === 'max-waiting' && /the limit is 100/.test(String(l.detail))),
          JSON.stringify(refusal),
        );
        const r = await fx.ssh('ops+local', ['echo fresh'], { extra: ['-b', '127.0.0.30'] });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.toString(), 'fresh\n');
      } finally {
        for (const f of floods) for (const s of f.sockets) s.destroy();
      }
    });
  });

  describe('a client that gives up while it waits for a startup slot', () => {
    let fx: GateFixture;
    before(async () => {
      fx = await startGateFixture({ sshd });
    });
    after(async () => {
      await fx?.close();
    });

    it('is noticed by its FIN at once: its place in the queue frees, and it is charged noauth', async () => {
      const holders = await silentFlood(fx.gate.port, 5, '127.0.0.20'); // the 5 startup slots
      try {
        await waitFor(() => fx.gate.admissionStats().startups === 5, 5_000, 'the startup slots');
        const quitter = createConnection({
          host: '127.0.0.1',
          port: fx.gate.port,
          localAddress: '127.0.0.20',
        });
        quitter.on('error', () => undefined);
        await new Promise((r) => quitter.once('connect', r));
        await waitFor(() => fx.gate.admissionStats().waiting === 1, 5_000, 'the 6th connection to wait');
        const closed = new Promise((r) => quitter.once('close', r));
        quitter.end('SSH-2.0-OpenSSH_9.6 giving up\r\n'); // its version line, then FIN
        await closed;
        // Within a second, not at the login grace time (120 s) or when a slot frees.
        await waitFor(() => fx.gate.admissionStats().waiting === 0, 1_000, 'the waiting connection to go');
        const stats = fx.gate.admissionStats();
        assert.deepEqual(
          {
            connections: stats.connections,
            noauth: stats.penalties.noauth,
            grace: stats.penalties['grace-exceeded'],
          },
          { connections: 5, noauth: 1, grace: 0 },
        );
      } finally {
        for (const s of holders.sockets) s.destroy();
      }
    });
  });

  describe('200 bad authentications from one source', () => {
    let fx: GateFixture;
    before(async () => {
      fx = await startGateFixture({ sshd });
    });
    after(async () => {
      await fx?.close();
    });

    it('later attempts are refused at accept with a penalty, logged; another source is not affected', async () => {
      const outcomes = { denied: 0, refused: 0, other: [] as string[] };
      let next = 0;
      const worker = async () => {
        while (next < 200) {
          next++;
          const r = await fx.ssh('ops+local', ['true'], { key: fx.strangerKey, timeoutMs: 10_000 });
          if (/Permission denied \(publickey\)/.test(r.stderr)) outcomes.denied++;
          else if (/Connection (closed|reset)|kex_exchange_identification/.test(r.stderr)) outcomes.refused++;
          else outcomes.other.push(r.stderr);
        }
      };
      const legit = (async () => {
        // While the attack runs, a user on another address logs in, repeatedly.
        for (let i = 0; i < 10; i++) {
          const r = await fx.ssh('ops+local', ['echo fine'], { extra: ['-b', '127.0.0.2'] });
          assert.equal(r.code, 0, `legitimate login ${i}: ${r.stderr}`);
          await new Promise((res) => setTimeout(res, 100));
        }
      })();
      await Promise.all([worker(), worker(), worker(), worker(), legit]);
      assert.deepEqual(outcomes.other, []);
      // authfail is 5 s a connection and min is 15 s: the 3rd failed connection starts the penalty;
      // connections already past accept (4 workers) may still fail on their own.
      assert.ok(outcomes.denied >= 3 && outcomes.denied <= 3 + 4, JSON.stringify(outcomes));
      assert.equal(outcomes.denied + outcomes.refused, 200);
      const stats = fx.gate.admissionStats();
      assert.equal(stats.refused.penalty, outcomes.refused);
      const refusal = logged(fx, 'connection refused before authentication');
      assert.ok(
        refusal.some(
          (l) => l.reason === 'penalty' && l.client === '127.0.0.1' && /penalised for/.test(String(l.detail)),
        ),
        JSON.stringify(refusal),
      );
      const failures = logged(fx, 'authentication refused');
      assert.equal(failures.length, outcomes.denied);
    });
  });

  describe('MaxAuthTries and what the log keeps of a login', () => {
    let fx: GateFixture;
    let keys: string[];
    before(async () => {
      fx = await startGateFixture({ sshd });
      keys = Array.from({ length: 10 }, (_, i) => {
        const path = join(fx.dir, `spare_key_${i}`);
        sshKeygen(path);
        return path;
      });
    });
    after(async () => {
      await fx?.close();
    });

    it('10 offered keys: 6 refusals, then "Too many authentication failures" as sshd says it', async () => {
      const r = await fx.ssh('ops+local', ['true'], {
        extra: ['-b', '127.0.0.3', ...keys.flatMap((k) => ['-i', k])],
        key: fx.strangerKey,
      });
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /Received disconnect from 127\.0\.0\.1 port \d+:2: Too many authentication failures/,
      );
      const refusals = fx.opsLog.filter(
        (l) =>
          String(l.message).startsWith('authentication refused') &&
          l.client?.toString().startsWith('127.0.0.3:'),
      );
      assert.equal(refusals.length, 6, JSON.stringify(refusals));
      assert.equal(refusals.at(-1)?.message, 'authentication refused; too many failures, disconnecting');
    });

    it('`none` counts after the first request, as sshd counts it: 1 free, then 6 refusals and the disconnect', async () => {
      let sent = 0;
      const client = new Client();
      const ended = new Promise<string>((resolve) => {
        client.on('error', (err: Error) => resolve(err.message));
        client.on('close', () => resolve('closed'));
        client.on('ready', () => resolve('authenticated'));
      });
      client.connect({
        sock: createConnection({ host: '127.0.0.1', port: fx.gate.port, localAddress: '127.0.0.5' }),
        username: 'ops+local',
        hostVerifier: () => true,
        // A client that asks with `none` again and again (20 at most: without the count, it never ends).
        authHandler: (_methods, _partial, next: NextAuthHandler) => {
          if (++sent > 20) return (next as unknown as (stop: false) => void)(false); // ssh2: no more methods
          next({ type: 'none', username: 'ops+local' });
        },
      });
      const outcome = await ended;
      client.end();
      assert.match(outcome, /Too many authentication failures/);
      assert.equal(sent, 7, 'the first `none` and 6 counted ones');
      const refusals = fx.opsLog.filter(
        (l) =>
          String(l.message).startsWith('authentication refused') &&
          l.client?.toString().startsWith('127.0.0.5:'),
      );
      assert.equal(refusals.length, 6, JSON.stringify(refusals));
      assert.ok(refusals.every((l) => l.method === 'none'));
      assert.equal(refusals.at(-1)?.message, 'authentication refused; too many failures, disconnecting');
    });

    it('a 10 KB user name is cut to 64 characters in the log, with its size', async () => {
      const login = `${'x'.repeat(10_000)}+local`;
      const r = await fx.ssh(login, ['true'], { extra: ['-b', '127.0.0.4'], key: fx.strangerKey });
      assert.notEqual(r.code, 0);
      const lines = fx.opsLog.filter((l) => l.client?.toString().startsWith('127.0.0.4:'));
      assert.ok(lines.length > 0, 'the attempt was logged');
      for (const l of lines) {
        assert.equal(l.login, `${'x'.repeat(64)}…(10006 bytes)`);
        assert.ok(JSON.stringify(l).length < 1_000, `log line of ${JSON.stringify(l).length} characters`);
      }
    });
  });
});

// The loopback aliases above are on `lo` already (127.0.0.0/8); fail early and clearly if not.
const probe = spawnSync('ip', ['-o', 'addr', 'show', 'lo'], { encoding: 'utf8' });
if (probe.status === 0 && !/127\.0\.0\.1\/8/.test(probe.stdout))
  throw new Error(`lo does not carry 127.0.0.0/8, which these tests need: ${probe.stdout}`);
