/**
 * ProxyJump through the gate (`ssh -J ops@gate ops@web1`): the gate terminates the inner SSH connection
 * itself, so the inner session is recorded like a direct one, and the outer connection records the jump.
 * The real OpenSSH client reads a generated ssh_config (`-F`): `-J` does not pass `-i` or `-o` options to
 * the jump leg, a config file with `Host gate` and `Host web1` blocks sets both legs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Target, User } from '../../src/config/schema.js';
import { decideDirectTcpip, innerRoute, jumpTarget } from '../../src/ssh/jump.js';
import { dataText, startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { runSsh, type SshResult } from '../helpers/ssh-client.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const forwards = (recs: readonly Rec[]) => recs.filter((r) => r.type === 'FORWARD');
const ofSession = (recs: readonly Rec[], session: string) => recs.filter((r) => r.session === session);

describe('jump decisions (jump.ts)', () => {
  const target = (name: string, port = 22): Target => ({
    name,
    host: '10.0.0.5',
    port,
    known_hosts: '/dev/null',
    on_record_failure: 'fail-closed',
    forward_input: 'when-sealed',
    allow_port_forwarding: false,
  });
  const targets = [target('web1'), target('db1', 2200), { ...target('ro'), user: 'readonly' }];
  const ops: User = { name: 'ops', targets: ['web1', 'db1', 'ro'] };
  const dev: User = { name: 'dev', targets: ['web1'] };

  it("a destination is a jump by target name, on port 22 or the target's port, never by address", () => {
    assert.equal(jumpTarget(targets, 'web1', 22)?.name, 'web1');
    assert.equal(jumpTarget(targets, 'WEB1', 22)?.name, 'web1');
    assert.equal(jumpTarget(targets, 'db1', 2200)?.name, 'db1');
    assert.equal(jumpTarget(targets, 'db1', 22)?.name, 'db1');
    assert.equal(jumpTarget(targets, 'web1', 2200), undefined);
    assert.equal(jumpTarget(targets, '10.0.0.5', 22), undefined);
    assert.equal(jumpTarget(targets, 'web9', 22), undefined);
  });

  it('a target the user may not reach, and a jump from a jump, are refused', () => {
    const config = { targets };
    assert.deepEqual(decideDirectTcpip(config, dev, 'web1', 22, false), { kind: 'jump', target: targets[0] });
    assert.equal(decideDirectTcpip(config, dev, 'db1', 22, false).kind, 'jump-refused');
    assert.deepEqual(decideDirectTcpip(config, ops, 'web1', 22, true), {
      kind: 'jump-refused',
      target: targets[0],
      reason: 'nested-jump',
    });
    assert.deepEqual(decideDirectTcpip(config, ops, 'example.org', 443, false), { kind: 'forward' });
  });

  it('the inner login is the gate user, or user+target of the jump', () => {
    const ro = targets[2]!;
    const plain = innerRoute(ops, ro, 'ops');
    assert.ok(plain.ok);
    assert.equal(plain.route.remoteUser, 'readonly');
    assert.ok(innerRoute(ops, ro, 'ops+ro').ok);
    const other = innerRoute(ops, ro, 'dev');
    assert.equal(other.ok ? undefined : other.refusal.code, 'JUMP_LOGIN_MISMATCH');
    const wrongTarget = innerRoute(ops, ro, 'ops+web1');
    assert.match(wrongTarget.ok ? '' : wrongTarget.refusal.message, /this jump goes to ro/);
    const control = innerRoute(ops, ro, 'x\x1b[2J');
    assert.match(control.ok ? '' : control.refusal.message, /not x\\x1b\[2J$/);
  });
});

describe('ProxyJump (ssh -J) through the gate', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let dir: string;
  let config: string;
  let sessions = 0;

  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({
      sshd,
      configure: (c) => {
        const local = c.targets[0]!;
        c.targets.push({ ...local, name: 'web1' }, { ...local, name: 'secret' });
        c.users[0]!.targets = ['local', 'web1'];
        // A user with one target: a plain login routes to it, yet a jump must not log in there too.
        c.users.push({ ...c.users[0]!, name: 'solo', targets: ['local'] });
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-jump-'));
    // The gate presents its own host key for the inner session: the client pins it under the targets' names.
    config = fx.jumpConfig(['local', 'web1', 'sealgate-gate']);
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const jump = (destination: string, command: string[], input?: string): Promise<SshResult> =>
    runSsh(['-F', config, destination, ...command], { timeoutMs: 30_000, ...(input ? { input } : {}) });

  /** The records of the jump that started after `sessionsBefore` sessions: the outer and the inner one. */
  const jumpSessions = (recs: readonly Rec[], sessionsBefore: number) => {
    const starts = recs.filter((r) => r.type === 'SESSION_START').slice(sessionsBefore);
    return starts.map((s) => ofSession(recs, s.session));
  };

  it('runs a command on the target; output and exit status pass through; both sessions are recorded', async () => {
    const before = sessions;
    const r = await jump('local', ['echo jumped-$((6*7)); echo to-stderr >&2; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'jumped-42\n');
    assert.match(r.stderr, /to-stderr/);
    sessions += 2;
    const recs = await fx.recordsAfterSessions(sessions);
    const [outer, inner] = jumpSessions(recs, before);
    assert.ok(outer && inner, 'two sessions');

    // The outer connection: a plain `ops` login (no target), then the jump, open and close.
    const outerStart = outer.find((x) => x.type === 'SESSION_START');
    assert.equal(outerStart?.payload.gate_user, 'ops');
    assert.equal(outerStart?.payload.target, '');
    const [open, close] = forwards(outer);
    assert.deepEqual(
      { ...open?.payload, origin_host: undefined, origin_port: undefined },
      {
        kind: 'direct-tcpip',
        allowed: true,
        event: 'open',
        channel: 0,
        host: 'local',
        port: 22,
        jump: true,
        target: 'local',
        origin_host: undefined,
        origin_port: undefined,
      },
    );
    assert.equal(close?.payload.event, 'close');
    assert.equal(close?.payload.inner_session, inner[0]?.session);

    // The inner session: recorded exactly like `ssh ops+local@gate`.
    const innerStart = inner.find((x) => x.type === 'SESSION_START');
    assert.equal(innerStart?.payload.gate_user, 'ops');
    assert.equal(innerStart?.payload.target, 'local');
    assert.equal(innerStart?.payload.user, sshd.user);
    assert.equal(innerStart?.payload.client, outerStart?.payload.client);
    assert.equal(
      inner.find((x) => x.type === 'EXEC')?.payload.command,
      'echo jumped-$((6*7)); echo to-stderr >&2; exit 3',
    );
    assert.equal(dataText(inner, 'DATA_OUT'), 'jumped-42\n');
    assert.equal(dataText(inner, 'DATA_ERR'), 'to-stderr\n');
    assert.equal(inner.find((x) => x.type === 'EXIT_STATUS')?.payload.code, 3);
    assert.ok(inner.some((x) => x.type === 'AUTH_RESULT' && x.payload.ok === true));
    assert.ok(fx.opsLog.some((l) => l.message === 'jump opened' && l.jump_target === 'local'));
  });

  it('stdin passes through the inner session', async () => {
    const r = await jump('web1', ['sort'], 'b\na\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'a\nb\n');
    sessions += 2;
    await fx.recordsAfterSessions(sessions);
  });

  it('a jump from a one-target login opens no upstream connection of its own', async () => {
    const reached = sshd.connections();
    const r = await runSsh(['-F', config, '-J', 'solo@gate', 'solo@local', 'echo solo'], {
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'solo\n');
    sessions += 2;
    await fx.recordsAfterSessions(sessions);
    assert.equal(sshd.connections() - reached, 1, 'only the inner session reached the target');
  });

  it('an unknown destination and a target the user may not reach are refused alike, and recorded', async () => {
    const before = sessions;
    const unknown = await jump('nowhere', ['true']);
    const denied = await jump('secret', ['true']);
    assert.equal(unknown.code, 255);
    assert.equal(denied.code, 255);
    // The client cannot tell an unknown host from a target it may not reach.
    assert.equal(denied.stderr.replaceAll('secret', 'HOST'), unknown.stderr.replaceAll('nowhere', 'HOST'));
    assert.match(denied.stderr, /open failed/);
    sessions += 2; // two outer sessions, no inner one
    const recs = await fx.recordsAfterSessions(sessions);
    const [first, second] = jumpSessions(recs, before);
    assert.ok(first && second);
    assert.equal(jumpSessions(recs, before).length, 2, 'no inner session');
    const [u] = forwards(first);
    assert.equal(u?.payload.allowed, false);
    assert.equal(u?.payload.host, 'nowhere');
    assert.equal(u?.payload.port, 22);
    assert.equal(u?.payload.jump, undefined);
    assert.equal(u?.payload.reason, 'policy');
    const [d] = forwards(second);
    assert.equal(d?.payload.allowed, false);
    assert.equal(d?.payload.host, 'secret');
    assert.equal(d?.payload.jump, true);
    assert.equal(d?.payload.target, 'secret');
    assert.equal(d?.payload.reason, 'target-denied');
  });

  it('the inner login must be the gate user: another name is told so', async () => {
    const r = await jump('someone@local', ['true']);
    assert.equal(r.code, 255);
    assert.match(
      r.stderr,
      /sealgate: through the gate, log in to local as ops \(your gate user\), not someone/,
    );
    sessions += 2;
    const recs = await fx.recordsAfterSessions(sessions);
    const inner = jumpSessions(recs, sessions - 2)[1] ?? [];
    assert.equal(inner.find((x) => x.type === 'SESSION_START')?.payload.target, 'local');
    // The request is recorded (as for any refused login); nothing reached a target.
    assert.equal(
      inner.some((x) => x.type === 'DATA_OUT' || x.type === 'EXIT_STATUS'),
      false,
    );
    assert.match(String(inner.find((x) => x.type === 'SESSION_END')?.payload.reason), /^refused: through/);
  });

  it('a session channel on the plain jump login is refused with a clear message', async () => {
    const r = await runSsh(['-F', config, 'gate', 'true'], { timeoutMs: 30_000 });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sealgate: user ops may reach several targets; log in as ops\+TARGET/);
    sessions += 1;
    await fx.recordsAfterSessions(sessions);
  });

  it('HostKeyAlias: one known_hosts line for the gate serves every target', async () => {
    const r = await runSsh(['-F', config, '-o', 'HostKeyAlias=sealgate-gate', 'web1', 'echo aliased'], {
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'aliased\n');
    sessions += 2;
    await fx.recordsAfterSessions(sessions);
  });

  it('the client refuses a gate host key not pinned under the name it checks (HostKeyAlias)', async () => {
    // `-o` reaches the inner connection only; the jump leg (`ssh -W`) reads just the config file.
    const r = await runSsh(['-F', config, '-o', 'HostKeyAlias=nosuchalias', 'local', 'true'], {
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Host key verification failed/);
    sessions += 1; // the outer session; the inner one never authenticated, so nothing is sealed for it
    const recs = await fx.recordsAfterSessions(sessions);
    assert.equal(recs.filter((x) => x.type === 'SESSION_START').length, sessions);
  });

  it('the gate itself speaks SSH on a jump channel; garbage there ends that channel only', async () => {
    const garbage = Buffer.concat([Buffer.from('SSH-2.0-garbage\r\n'), Buffer.alloc(4096, 0xff)]);
    const r = await runSsh(['-F', config, '-W', 'local:22', 'gate'], { input: garbage, timeoutMs: 30_000 });
    assert.match(r.stdout.toString('latin1'), /^SSH-2\.0-sealgate\r\n/);
    sessions += 1; // the outer session; the inner connection never authenticated
    await fx.recordsAfterSessions(sessions);
    const after = await jump('local', ['echo still-serving']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.toString(), 'still-serving\n');
    sessions += 2;
    await fx.recordsAfterSessions(sessions);
  });

  it('scp through the jump copies a file, recorded in the inner session', async () => {
    const src = join(dir, 'payload.txt');
    writeFileSync(src, 'copied through the jump\n');
    const dest = `/tmp/sealgate-jump-${process.pid}.txt`;
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('scp', ['-F', config, src, `local:${dest}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(dest, 'utf8'), 'copied through the jump\n');
    rmSync(dest, { force: true });
    const before = sessions;
    sessions += 2;
    const recs = await fx.recordsAfterSessions(sessions);
    const inner = jumpSessions(recs, before)[1] ?? [];
    assert.equal(inner.find((x) => x.type === 'SUBSYSTEM')?.payload.name, 'sftp');
  });
});

describe('ProxyJump: the per-user cap (limits.per_user_max_jumps)', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let config: string;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({
      sshd,
      configure: (c) => {
        c.targets.push({ ...c.targets[0]!, name: 'web1' });
        c.users[0]!.targets = ['local', 'web1'];
        c.limits = { per_user_max_jumps: 2 };
      },
    });
    config = fx.jumpConfig(['local', 'web1', 'sealgate-gate']);
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
  });

  const jump = (destination: string, command: string): Promise<SshResult> =>
    runSsh(['-F', config, destination, command], { timeoutMs: 30_000 });
  const opened = () => fx.opsLog.filter((l) => l.message === 'jump opened').length;
  const closed = () => fx.opsLog.filter((l) => l.message === 'jump closed').length;

  it('a user holds 2 jumps at once over all its connections; the 3rd is refused, and a freed slot serves again', async () => {
    const held = [jump('local', 'sleep 4; echo held-1'), jump('web1', 'sleep 4; echo held-2')];
    const deadline = Date.now() + 15_000;
    while (opened() < 2) {
      assert.ok(Date.now() < deadline, 'the two jumps to open');
      await new Promise((r) => setTimeout(r, 50));
    }
    const third = await jump('local', 'echo third');
    assert.equal(third.code, 255, third.stderr);
    assert.match(third.stderr, /open failed/);
    assert.doesNotMatch(third.stdout.toString(), /third/);
    const refusal = fx.opsLog.find(
      (l) => l.message === 'forwarding refused' && l.reason === 'per-user-jumps',
    );
    assert.ok(refusal, 'the refusal is logged with its reason');
    assert.equal(refusal.limit, 2);
    assert.equal(refusal.target, 'local');

    const results = await Promise.all(held);
    assert.deepEqual(
      results.map((r) => [r.code, r.stdout.toString()]),
      [
        [0, 'held-1\n'],
        [0, 'held-2\n'],
      ],
    );
    const closedBy = Date.now() + 10_000;
    while (closed() < 2) {
      assert.ok(Date.now() < closedBy, 'the two jumps to close');
      await new Promise((r) => setTimeout(r, 50));
    }
    const again = await jump('web1', 'echo again');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.toString(), 'again\n');
  });
});
