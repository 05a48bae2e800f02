/**
 * Protocol garbage never takes the gate down: raw bytes, bad version strings, absurd packet lengths,
 * and clients that drop mid-handshake each end only their own connection, and the gate keeps serving.
 *
 * The garbage comes from 127.0.0.1, whose connections then earn per-source penalties (noauth, as sshd's
 * PerSourcePenalties): the gate refusing that source for a while is the defence working, so the check
 * that it still serves logs in from another source, 127.0.0.2. The per-source startup cap is raised so
 * that the "many at once" clients really reach the key exchange instead of being refused at accept.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

/** Connects, sends `chunks` (with a pause between them), and resolves with what the gate said once it closes. */
function poke(port: number, chunks: (string | Buffer)[], opts: { holdMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    const s = createConnection({ host: '127.0.0.1', port }, async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!opts.holdMs) s.end();
      else setTimeout(() => s.destroy(), opts.holdMs);
    });
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
    setTimeout(() => s.destroy(), 5_000).unref();
  });
}

const provider = new OpenSslProvider();
const noise = (n: number) => Buffer.from(provider.randomBytes(n));

describe('protocol garbage', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({
      sshd,
      configure: (c) => {
        c.limits = { per_source_max_startups: 100 };
      },
    });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
  });

  const stillServes = async () => {
    const r = await fx.ssh('ops+local', ['echo alive'], { extra: ['-b', '127.0.0.2'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'alive\n');
  };

  it('raw bytes instead of a version string', async () => {
    const said = await poke(fx.gate.port, [noise(4096), noise(4096)]);
    assert.match(said, /^SSH-2\.0-sealgate/);
    await stillServes();
  });

  it('bad version strings: SSH-1.5, an endless line, an empty line flood', async () => {
    await poke(fx.gate.port, ['SSH-1.5-ancient\r\n']);
    await poke(fx.gate.port, [`SSH-2.0-${'x'.repeat(70_000)}`]);
    await poke(fx.gate.port, ['\r\n'.repeat(10_000)]);
    await stillServes();
  });

  it('a good version string, then garbage packets and an absurd packet length', async () => {
    await poke(fx.gate.port, ['SSH-2.0-OpenSSH_9.2\r\n', noise(64 * 1024)]);
    await poke(fx.gate.port, [
      'SSH-2.0-OpenSSH_9.2\r\n',
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x04, 0x14]),
      noise(100),
    ]);
    await poke(fx.gate.port, [
      'SSH-2.0-OpenSSH_9.2\r\n',
      Buffer.from([0, 0, 0, 12, 4, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]);
    await stillServes();
  });

  it('clients that drop mid key exchange, many at once', async () => {
    const kills = Array.from(
      { length: 20 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', 'true'], {
            stdio: 'ignore',
          });
          setTimeout(() => child.kill('SIGKILL'), 5 + i * 7);
          child.on('close', () => resolve());
        }),
    );
    const holds = Array.from({ length: 10 }, () =>
      poke(fx.gate.port, ['SSH-2.0-OpenSSH_9.2\r\n'], { holdMs: 200 }),
    );
    await Promise.all([...kills, ...holds]);
    await stillServes();
  });

  it('a client killed mid-session ends only its own session, which is recorded to its end', async () => {
    const child = spawn('ssh', ['-b', '127.0.0.2', ...fx.sshOptions(), 'ops+local@127.0.0.1', 'sleep 5'], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    await stillServes();
    const deadline = Date.now() + 5_000;
    for (;;) {
      const recs = await fx.records();
      const exec = recs.find((r) => r.type === 'EXEC' && r.payload.command === 'sleep 5');
      const end = recs.find((r) => r.type === 'SESSION_END' && r.session === exec?.session);
      if (end) {
        assert.equal(end.payload.reason, 'client disconnected');
        break;
      }
      assert.ok(Date.now() < deadline, 'the killed session was not ended');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
