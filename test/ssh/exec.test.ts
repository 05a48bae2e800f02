/**
 * exec through the gate with the real OpenSSH client and a real sshd: output, stderr, exit codes and
 * signals pass through as they do directly, the sealed log holds the exact command and the bytes, and
 * a fast sender cannot make the gate buffer without bound in either direction.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { dataText, startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { runSsh } from '../helpers/ssh-client.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

/** The records of the session whose EXEC is `command`. */
function sessionOf(recs: readonly Rec[], command: string): Rec[] {
  const exec = recs.find((r) => r.type === 'EXEC' && r.payload.command === command);
  assert.ok(exec, `no EXEC ${command}`);
  return recs.filter((r) => r.session === exec.session);
}

const bytesOf = (recs: readonly Rec[], type: string) =>
  recs.filter((r) => r.type === type).reduce((n, r) => n + (r.payload.data?.length ?? 0), 0);

describe('exec through the gate', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    // The same user key may also log in directly, to compare the gate with plain OpenSSH.
    sshd.authorize(readFileSync(`${fx.userKey}.pub`, 'utf8'));
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
  });

  const direct = (command: string) =>
    runSsh([
      '-F',
      '/dev/null',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'IdentityAgent=none',
      '-o',
      'LogLevel=ERROR',
      '-i',
      fx.userKey,
      '-p',
      String(sshd.port),
      `${sshd.user}@127.0.0.1`,
      command,
    ]);

  it('passes stdout, stderr and the exit code through, and seals the exact command and bytes', async () => {
    const command = "sh -c 'echo out; echo err >&2; exit 3'";
    const r = await fx.ssh('ops+local', [command]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'out\n');
    assert.match(r.stderr, /^err$/m);
    const recs = sessionOf(await fx.recordsAfterSessions(1), command);
    const types = recs.map((x) => x.type);
    assert.equal(types[0], 'SESSION_START');
    const start = recs[0]!.payload;
    assert.equal(start.gate_user, 'ops');
    assert.equal(start.target, 'local');
    assert.equal(start.user, sshd.user);
    assert.equal(start.target_host, '127.0.0.1');
    assert.equal(start.target_port, sshd.port);
    assert.match(String(start.client), /^127\.0\.0\.1:\d+$/);
    assert.ok(recs.some((x) => x.type === 'AUTH_RESULT' && x.payload.ok === true));
    assert.equal(dataText(recs, 'DATA_OUT'), 'out\n');
    assert.equal(dataText(recs, 'DATA_ERR'), 'err\n');
    assert.equal(recs.find((x) => x.type === 'EXIT_STATUS')?.payload.code, 3);
    assert.equal(types.at(-1), 'SESSION_END');
    assert.equal(recs.at(-1)?.final, true);
    // The exit status reaches the client before the channel closes, as from sshd itself.
    assert.ok(types.indexOf('EXIT_STATUS') < types.indexOf('CHANNEL_CLOSE'));
  });

  it('gives a signal-killed command the same exit status as plain OpenSSH, and records EXIT_SIGNAL', async () => {
    const command = 'kill -TERM $$';
    const plain = await direct(command);
    const gated = await fx.ssh('ops+local', [command]);
    assert.equal(gated.code, plain.code, `direct ${plain.code}, via gate ${gated.code}: ${gated.stderr}`);
    assert.ok(plain.code === 255 || plain.code === 143, `unexpected direct status ${plain.code}`);
    const recs = sessionOf(await fx.recordsAfterSessions(2), command);
    const exit = recs.find((x) => x.type === 'EXIT_SIGNAL');
    assert.equal(exit?.payload.signal, 'TERM');
    assert.equal(exit?.payload.core_dumped, false);
  });

  it('passes stdin and its EOF through (half-close), recorded as DATA_IN and CHANNEL_EOF', async () => {
    const command = 'tr a-z A-Z; echo done';
    const r = await fx.ssh('ops+local', [command], { input: 'hello gate\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'HELLO GATE\ndone\n');
    const recs = sessionOf(await fx.recordsAfterSessions(3), command);
    assert.equal(dataText(recs, 'DATA_IN'), 'hello gate\n');
    assert.ok(recs.some((x) => x.type === 'CHANNEL_EOF' && x.payload.direction === 'in'));
    assert.ok(recs.some((x) => x.type === 'CHANNEL_EOF' && x.payload.direction === 'out'));
  });

  it('forwards env requests the target accepts, and records them', async () => {
    const command = 'echo "v=$SEALGATE_TEST_VAR"';
    const r = await fx.ssh('ops+local', [command], { extra: ['-o', 'SetEnv=SEALGATE_TEST_VAR=from-client'] });
    assert.equal(r.stdout.toString(), 'v=from-client\n', r.stderr);
    const recs = sessionOf(await fx.recordsAfterSessions(4), command);
    const env = recs.find((x) => x.type === 'ENV' && x.payload.name === 'SEALGATE_TEST_VAR');
    assert.equal(env?.payload.value, 'from-client');
  });

  it('holds back a fast target when the client does not read (bounded buffering), then delivers it all', async () => {
    const total = 64 * 1024 * 1024;
    const command = `head -c ${total} /dev/zero`;
    const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', command], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pause();
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const recorded = bytesOf(sessionOf(await fx.records(), command), 'DATA_OUT');
      // ssh holds ~2 MiB, the gate a window per leg plus one sink buffer: far below the 64 MiB sent.
      assert.ok(
        recorded < 16 * 1024 * 1024,
        `the gate took ${recorded} bytes from a target whose client reads nothing`,
      );
      let received = 0;
      child.stdout.on('data', (b: Buffer) => (received += b.length));
      child.stdout.resume();
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      assert.equal(received, total);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('holds back a fast client when the target does not read (bounded buffering), then delivers it all', async () => {
    const total = 64 * 1024 * 1024;
    const command = 'sleep 3; wc -c';
    const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', command], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.alloc(total, 0x61));
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const recorded = bytesOf(sessionOf(await fx.records(), command), 'DATA_IN');
      assert.ok(
        recorded < 16 * 1024 * 1024,
        `the gate took ${recorded} bytes for a target that reads nothing`,
      );
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      assert.equal(out.trim(), String(total));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('upstream login with an RSA key through the provider agent (rsa-sha2-*)', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd, upstreamKey: { type: 'rsa', bits: 3072 } });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
  });

  it('logs in to the target, which accepts an RSA SHA-2 signature', async () => {
    const r = await fx.ssh('ops+local', ['echo rsa-ok']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'rsa-ok\n');
    assert.match(sshd.log(), /Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: RSA SHA256:/);
  });
});
