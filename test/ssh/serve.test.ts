/**
 * `sealgate init` and `sealgate serve` as an operator runs them: init writes a config and keys that work
 * as they are (once the target is pinned and authorizes the gate), serve logs "listening", records a
 * session, and on SIGTERM ends cleanly with LOG_STOP and a final checkpoint; a start after a crash warns
 * that crash recovery ran.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { LocalStore } from '../../src/seal/store.js';
import { openStore } from '../helpers/gate-fixture.js';
import { cliPath } from '../helpers/paths.js';
import { runSsh } from '../helpers/ssh-client.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

describe('sealgate init and serve', () => {
  let sshd: Sshd;
  let dir: string;
  before(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), 'sealgate-serve-'));
  });
  after(async () => {
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('init writes a valid demo config and keys; serve records a session and stops cleanly on SIGTERM', async () => {
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
    assert.match(init.stdout, /UNENCRYPTED/);
    assert.match(init.stdout, /sealgate commands .*--keys .*signer.pub.pem --key file:/);
    assert.match(init.stdout, /sealgate replay .* SESSION .* --at INDEX/);
    const config = parse(readFileSync(join(gateDir, 'sealgate.yaml'), 'utf8')) as {
      listen: { port: number };
    };
    assert.equal(config.listen.port, port);
    for (const key of [
      'host_key.pem',
      'upstream_key.pem',
      'signer.key.pem',
      'recipient.key.pem',
      'demo_user_key.pem',
    ]) {
      assert.equal(statSync(join(gateDir, 'keys', key)).mode & 0o777, 0o600, key);
    }
    const again = spawnSync(process.execPath, [cliPath(), 'init', gateDir], { encoding: 'utf8' });
    assert.equal(again.status, 2);
    assert.match(again.stderr, /exists; refusing to overwrite it/);

    // What demo.sh does: pin the target, authorize the gate's upstream key.
    writeFileSync(join(gateDir, 'known_hosts', 'local'), `${sshd.knownHostsLine}\n`);
    sshd.authorize(readFileSync(join(gateDir, 'keys', 'upstream_key.pub'), 'utf8'));

    const serve = spawn(process.execPath, [cliPath(), 'serve', '--config', join(gateDir, 'sealgate.yaml')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    serve.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const exited = new Promise<number | null>((resolve) => serve.on('close', resolve));
    try {
      const deadline = Date.now() + 15_000;
      while (!log.includes('"listening"')) {
        assert.ok(Date.now() < deadline && serve.exitCode === null, `serve did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const listening = JSON.parse(log.split('\n').find((l) => l.includes('"listening"'))!) as Record<
        string,
        unknown
      >;
      assert.equal(listening.port, port);
      assert.equal(listening.fips, false);

      const knownHosts = join(dir, 'client_known_hosts');
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ${String(listening.host_key)}\n`);
      const r = await runSsh([
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
        '-p',
        String(port),
        'demo+local@127.0.0.1',
        'echo via-serve',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'via-serve\n');

      serve.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((res) => setTimeout(() => res('hung'), 10_000).unref()),
      ]);
      assert.equal(code, 0, log);
      assert.match(log, /"stopped"/);
    } finally {
      serve.kill('SIGKILL');
    }

    const provider = new OpenSslProvider();
    const recipient = await provider.loadPrivateKey(`file:${join(gateDir, 'keys', 'recipient.key.pem')}`);
    const recs = await openStore(provider, join(gateDir, 'store'), recipient);
    assert.ok(recs.some((x) => x.type === 'EXEC' && x.payload.command === 'echo via-serve'));
    assert.ok(recs.some((x) => x.type === 'SESSION_END'));
    assert.equal(recs.at(-1)?.type, 'LOG_STOP');
    const store = LocalStore.openReadOnly(join(gateDir, 'store'));
    try {
      const last = store.lastCheckpoint();
      assert.ok(last);
      assert.match(last, new RegExp(`^sealgate-demo/\\S+\\n${store.size}\\n`));
    } finally {
      await store.close();
    }
  });

  it('a start after a crash says so in the operational log: one warning naming the previous run', async () => {
    const gateDir = join(dir, 'gate-crash');
    const port = await freePort();
    const init = spawnSync(
      process.execPath,
      [cliPath(), 'init', gateDir, '--target-port', String(sshd.port), '--listen-port', String(port)],
      { encoding: 'utf8' },
    );
    assert.equal(init.status, 0, init.stderr);
    const config = join(gateDir, 'sealgate.yaml');
    /** Starts serve and resolves once it listens, with its log so far and a way to stop it. */
    const start = async () => {
      const serve = spawn(process.execPath, [cliPath(), 'serve', '--config', config], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const run = { log: '', serve, exited: new Promise<number | null>((r) => serve.on('close', r)) };
      serve.stderr.on('data', (b: Buffer) => (run.log += b.toString()));
      const deadline = Date.now() + 15_000;
      while (!run.log.includes('"listening"')) {
        assert.ok(Date.now() < deadline && serve.exitCode === null, `serve did not start: ${run.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return run;
    };
    const first = await start();
    assert.doesNotMatch(first.log, /crash recovery ran/, 'a new store has nothing to recover');
    first.serve.kill('SIGKILL');
    await first.exited;
    const second = await start();
    try {
      const warnings = second.log
        .split('\n')
        .filter((l) => l.includes('crash recovery ran'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(warnings.length, 1, second.log);
      assert.equal(warnings[0]!.level, 'warn');
      assert.equal(typeof warnings[0]!.previous_run_id, 'string');
      assert.equal(warnings[0]!.open_segments, 0);
      second.serve.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.log);
    } finally {
      second.serve.kill('SIGKILL');
    }
  });
});
