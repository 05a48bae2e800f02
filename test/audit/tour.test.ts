/**
 * The auditor's tour of README, end to end, as an operator and an auditor run it: `sealgate init` and
 * `sealgate serve` (child processes) in front of a real sshd; a user types into a real bash through real
 * `ssh -tt` in tmux; then the auditor asks "who ran `drop-table` here, and show me the moment" with
 * `sealgate commands --grep` and `sealgate replay --at`, and reads the session with `sessions` and `text`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { initDemoGate, startServe, type DemoGate, type ServeProcess } from '../helpers/serve.js';
import { freePort, startSshd, type Sshd } from '../helpers/sshd.js';

const USER = 'sgtour';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the auditor tour: commands --grep, then replay --at the moment', () => {
  let sshd: Sshd;
  let gate: DemoGate;
  let serve: ServeProcess;
  let dir: string;
  const sock = `sgtour-${process.pid}`;
  const tmux = (...args: string[]) =>
    spawnSync('tmux', ['-L', sock, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-S', '-200').stdout;
  async function waitFor(re: RegExp, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!re.test(screen())) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}; screen:\n${screen()}`);
      await sleep(50);
    }
  }
  /** Types a line, presses Enter, and waits for the next prompt (the line's output before it). */
  async function run(line: string, expect: RegExp): Promise<void> {
    tmux('send-keys', '-l', line);
    tmux('send-keys', 'Enter');
    await waitFor(expect, line);
  }
  const read = () => [
    '--keys',
    join(gate.keys, 'signer.pub.pem'),
    '--key',
    `file:${join(gate.keys, 'recipient.key.pem')}`,
  ];

  before(async () => {
    // A login user whose shell is bash, with Debian's default .bashrc (a coloured prompt).
    if (spawnSync('id', ['-u', USER]).status !== 0) {
      const r = spawnSync('useradd', ['-m', '-s', '/bin/bash', USER], { encoding: 'utf8' });
      assert.ok(r.status === 0 || r.status === 9, r.stderr);
    }
    spawnSync('usermod', ['-s', '/bin/bash', USER]);
    writeFileSync(
      `/home/${USER}/.bashrc`,
      'PS1="\\[\\e[01;32m\\]\\u@db1\\[\\e[00m\\]:\\[\\e[01;34m\\]\\w\\[\\e[00m\\]\\$ "\n',
    );
    sshd = await startSshd({ user: USER });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-tour-'));
    gate = initDemoGate(sshd, join(dir, 'gate'), await freePort());
    serve = await startServe(gate.config);
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${gate.port} ${serve.hostKey}\n`);
    const ssh = [
      'ssh',
      '-tt',
      '-F',
      '/dev/null',
      '-p',
      String(gate.port),
      '-i',
      join(gate.keys, 'demo_user_key.pem'),
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      'demo+local@127.0.0.1',
    ].join(' ');
    tmux('new-session', '-d', '-x', '100', '-y', '30', ssh);
    await waitFor(/sgtour@db1:~\$\s*$/m, 'the first prompt');
    await run('echo tour-start', /^tour-start$/m);
    await run('drop-table() { echo "dropped $1"; }', /sgtour@db1:~\$\s*$/m);
    tmux('send-keys', '-l', 'drop-table usrs');
    tmux('send-keys', 'BSpace', 'BSpace');
    tmux('send-keys', '-l', 'ers');
    tmux('send-keys', 'Enter');
    await waitFor(/^dropped users$/m, 'the function output');
    await run('echo tour-end', /^tour-end$/m);
    tmux('send-keys', '-l', 'exit');
    tmux('send-keys', 'Enter');
    const deadline = Date.now() + 10_000;
    while (tmux('has-session').status === 0 && Date.now() < deadline) await sleep(50);
    // The gate writes a checkpoint at every session end: wait for the session's end to be signed.
    await sleep(1500);
  });

  after(async () => {
    tmux('kill-server');
    await serve?.stop();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commands --grep finds the command as typed after the edits, with its session and leaf index', async () => {
    const r = await runCli([
      'commands',
      join(gate.dir, 'store'),
      ...read(),
      '--grep',
      'drop-table',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.text),
      ['drop-table() { echo "dropped $1"; }', 'drop-table users'],
    );
    const hit = lines[1]!;
    assert.equal(hit.gate_user, 'demo');
    assert.equal(hit.target, 'local');
    assert.equal(hit.derivation, 'terminal');
    assert.equal(hit.confident, true);
    assert.equal(typeof hit.index, 'number');

    // replay --at that index: the screen up to that moment at once, then playback (fast) to the end.
    const replay = await runCli([
      'replay',
      join(gate.dir, 'store'),
      String(hit.session),
      ...read(),
      '--at',
      String(hit.index),
      '--speed',
      '1000',
    ]);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /drop-table usrs|drop-table users/);
    assert.match(replay.stdout, /dropped users/);
    assert.match(replay.stdout, /tour-end/);
  });

  it('sessions shows the session, and text shows what its screen showed', async () => {
    const r = await runCli(['sessions', join(gate.dir, 'store'), ...read(), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.gate_user, 'demo');
    assert.equal(row.target, 'local');
    assert.equal(row.commands, 5); // echo, the function, drop-table users, echo, exit
    const text = await runCli(['text', join(gate.dir, 'store'), String(row.session), ...read()]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(
      text.stdout,
      /sgtour@db1:~\$ drop-table users\n dropped users|sgtour@db1:~\$ drop-table users\ndropped users/,
    );
  });

  it('every read was logged as an audit event of the store (spooled, or already sealed by the gate)', async () => {
    const spool = join(gate.dir, 'store', 'audit-spool');
    const spooled = readdirSync(spool)
      .filter((f) => f.endsWith('.json'))
      .map((f) => (JSON.parse(readFileSync(join(spool, f), 'utf8')) as { action: string }).action);
    const d = await runCli(['decrypt', join(gate.dir, 'store'), ...read()]);
    assert.equal(d.status, 0, d.stderr);
    const sealed = d.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.type === 'AUDIT_EVENT')
      .map((e) => String(e.action));
    const actions = new Set([...spooled, ...sealed]);
    for (const a of ['commands', 'replay', 'sessions', 'text'])
      assert.ok(actions.has(a), `no ${a} event: ${[...actions].join(', ')}`);
  });
});
