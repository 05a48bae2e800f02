/**
 * Refusals, each with a clear message at the user's `ssh` and nothing else: no upstream connection for a
 * wrong key or a target the user may not reach, no login on a target whose host key is not the pinned one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

describe('refusals', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let files: string;
  let downPort: number;
  before(async () => {
    sshd = await startSshd();
    files = mkdtempSync(join(tmpdir(), 'sealgate-refusals-'));
    downPort = await freePort(); // nothing listens there
    const wrongKey = await new OpenSslProvider().generateKey({ type: 'ec', curve: 'P-256' });
    const pinnedWrong = join(files, 'kh_wrong');
    writeFileSync(pinnedWrong, `[127.0.0.1]:${sshd.port} ${wrongKey.publicKey.openssh()}\n`);
    const empty = join(files, 'kh_empty');
    writeFileSync(empty, '# nothing pinned\n');
    const downKh = join(files, 'kh_down');
    writeFileSync(downKh, `[127.0.0.1]:${downPort} ${wrongKey.publicKey.openssh()}\n`);
    fx = await startGateFixture({
      sshd,
      configure: (c) => {
        const local = c.targets[0]!;
        c.targets.push(
          { ...local, name: 'db1' },
          { name: 'down', host: '127.0.0.1', port: downPort, known_hosts: downKh },
          { ...local, name: 'evil', known_hosts: pinnedWrong },
          { ...local, name: 'nopin', known_hosts: empty },
        );
        const ops = c.users[0]!;
        c.users.push({ name: 'dev', authorized_keys: ops.authorized_keys, targets: ['local'] });
      },
      limits: { upstreamTimeoutMs: 5_000 },
    });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    rmSync(files, { recursive: true, force: true });
  });

  const startsOf = async () => (await fx.records()).filter((r) => r.type === 'SESSION_START').length;

  it('unknown target: a message after authentication, and no upstream connection', async () => {
    const before = sshd.connections();
    const r = await fx.ssh('ops+web9', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: unknown target web9/);
    assert.equal(sshd.connections(), before);
    const recs = await fx.recordsAfterSessions(1);
    assert.ok(
      recs.some((x) => x.type === 'SESSION_END' && x.payload.reason === 'refused: unknown target web9'),
    );
  });

  it('access denied: the user may not reach the target; recorded as an ALERT; no upstream connection', async () => {
    const before = sshd.connections();
    const r = await fx.ssh('dev+db1', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: user dev may not reach db1/);
    assert.equal(sshd.connections(), before);
    const recs = await fx.recordsAfterSessions(2);
    assert.ok(recs.some((x) => x.type === 'ALERT' && x.payload.rule === 'routing.denied'));
  });

  it('a plain user with several targets is told how to pick one', async () => {
    const r = await fx.ssh('ops', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: user ops may reach several targets; log in as ops\+TARGET/);
  });

  it('wrong key: permission denied, nothing sealed, no upstream connection, logged for operators', async () => {
    const before = sshd.connections();
    const sessions = await startsOf();
    const r = await fx.ssh('ops+local', ['true'], { key: fx.strangerKey });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    assert.equal(sshd.connections(), before);
    assert.equal(await startsOf(), sessions);
    assert.ok(
      fx.opsLog.some(
        (l) => l.message === 'authentication refused' && l.reason === 'key not on the allow-list',
      ),
    );
  });

  it('target down: "is not reachable"', async () => {
    const r = await fx.ssh('ops+down', ['true']);
    assert.equal(r.code, 255);
    assert.match(
      r.stderr,
      new RegExp(`sealgate: target down \\(127\\.0\\.0\\.1:${downPort}\\) is not reachable`),
    );
  });

  it('pinned host key mismatch: refused before any login, with an ALERT', async () => {
    const accepted = (sshd.log().match(/Accepted publickey/g) ?? []).length;
    const r = await fx.ssh('ops+evil', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: host key for evil does not match the pinned key; refusing/);
    assert.equal((sshd.log().match(/Accepted publickey/g) ?? []).length, accepted);
    const recs = await fx.records();
    assert.ok(
      recs.some(
        (x) =>
          x.type === 'ALERT' &&
          x.payload.rule === 'upstream.host_key_mismatch' &&
          x.payload.severity === 'critical',
      ),
    );
    assert.ok(fx.opsLog.some((l) => l.alert === 'upstream.host_key_mismatch'));
  });

  it('no pinned host key: refused without connecting', async () => {
    const before = sshd.connections();
    const r = await fx.ssh('ops+nopin', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: no pinned host key for nopin/);
    assert.equal(sshd.connections(), before);
  });

  it('the refused user can still reach an allowed target', async () => {
    const r = await fx.ssh('dev+local', ['echo fine']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'fine\n');
    assert.ok(readFileSync(fx.clientKnownHosts, 'utf8').length > 0);
  });
});
