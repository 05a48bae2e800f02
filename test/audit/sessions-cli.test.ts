/**
 * `sealgate sessions` and `sealgate commands` on a real store: a gate in front of a real sshd, two gate
 * users and two targets, sessions made with the real OpenSSH client (exec, and a shell with a PTY typed
 * into through tmux). Checks the table and JSON outputs, each filter, the audit event of each run, and
 * the auditor-side index: its place and permissions, an incremental update after more sessions, and a
 * truncated, rewritten or different log making it be rebuilt, never trusted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecryptError } from '../../src/audit/decrypt.js';
import { openIndexedLog, type IndexedLog } from '../../src/audit/index/indexed-log.js';
import type { CommandLine } from '../../src/audit/index/format.js';
import type { SessionSummary } from '../../src/audit/sessions.js';
import { openLogSource } from '../../src/audit/source.js';
import { LocalStore } from '../../src/seal/store.js';
import { runCli, showRun, STACK_LINE } from '../helpers/cli.js';
import { sshKeygen, startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const SOCKET = `sealgate-sessions-${process.pid}`;
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

async function waitForPane(re: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let pane = '';
    try {
      pane = tmux('capture-pane', '-p', '-t', 'gate');
    } catch {
      // the pane may be gone
    }
    if (re.test(pane)) return;
    if (Date.now() > deadline) throw new Error(`pane never matched ${re}:\n${pane}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const jsonLines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

describe('sealgate sessions and commands (real gate, sshd and ssh)', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let store: string;
  let keyArg: string;
  let devKey: string;
  let env: NodeJS.ProcessEnv;
  let keyDir: string;
  /** The signers' public keys: every read is verified first, as decrypt's. */
  let trust: string[];

  before(async () => {
    sshd = await startSshd();
    keyDir = mkdtempSync(join(tmpdir(), 'sealgate-sessions-'));
    const devKeyPath = join(keyDir, 'dev_key');
    const devPub = sshKeygen(devKeyPath);
    devKey = devKeyPath;
    fx = await startGateFixture({
      sshd,
      configure: (raw) => {
        const local = raw.targets[0]!;
        raw.targets.push({ ...local, name: 'web' });
        raw.users.push({ name: 'dev', authorized_keys: [devPub], targets: ['web'] });
      },
    });
    store = fx.config.recording.store;
    const keyFile = join(fx.dir, 'recipient.key.pem');
    writeFileSync(keyFile, fx.provider.exportPrivateKey(fx.recipient), { mode: 0o600 });
    keyArg = `file:${keyFile}`;
    const trusted = join(fx.dir, 'trusted-signers');
    mkdirSync(trusted);
    writeFileSync(join(trusted, 'signer.pub.pem'), fx.signer.publicKey.spkiPem());
    trust = ['--keys', trusted];
    env = { XDG_CACHE_HOME: join(fx.dir, 'cache') };

    const a = await fx.ssh('ops+local', ['echo alpha; exit 3']);
    assert.equal(a.code, 3, a.stderr);
    const b = await fx.ssh('dev+web', ['echo kubectl delete pod api-1'], { key: devKey });
    assert.equal(b.code, 0, b.stderr);
    // An interactive shell, typed into as a person would.
    const ssh = ['ssh', '-tt', ...fx.sshOptions(), 'ops+web@127.0.0.1'].map(quote).join(' ');
    tmux('new-session', '-d', '-s', 'gate', '-x', '100', '-y', '30', ssh);
    await waitForPane(/\$ ?$/m);
    tmux('send-keys', '-t', 'gate', 'echo typed-$((6*7))', 'Enter');
    await waitForPane(/^typed-42$/m);
    tmux('send-keys', '-t', 'gate', 'exit', 'Enter');
    await fx.recordsAfterSessions(3);
    await fx.log.checkpoint();
    await fx.log.flush();
  });
  after(async () => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    await fx?.close();
    await sshd?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const sealgate = (args: string[]) => runCli(args, env);

  async function sessionsJson(extra: string[] = []): Promise<SessionSummary[]> {
    const r = await sealgate(['sessions', store, '--key', keyArg, ...trust, '--json', ...extra]);
    assert.equal(r.status, 0, showRun(r));
    return jsonLines<SessionSummary>(r.stdout);
  }

  async function commandsJson(extra: string[] = []): Promise<CommandLine[]> {
    const r = await sealgate(['commands', store, '--key', keyArg, ...trust, '--json', ...extra]);
    assert.equal(r.status, 0, showRun(r));
    return jsonLines<CommandLine>(r.stdout);
  }

  it('sessions --json: one row per session, with who, where, how it ended, bytes, commands, provenance', async () => {
    const rows = await sessionsJson();
    assert.equal(rows.length, 3);
    const exec = rows.find((r) => r.gate_user === 'ops' && r.target === 'local');
    assert.ok(exec);
    assert.equal(exec.state, 'ended');
    assert.equal(exec.exit_status, 3);
    assert.equal(exec.login, sshd.user);
    assert.match(exec.client, /^127\.0\.0\.1:\d+$/);
    assert.ok(exec.bytes_out >= 'alpha\n'.length);
    assert.equal(exec.commands, 1);
    assert.equal(exec.fips, false); // this gate runs in normal mode
    assert.deepEqual(
      exec.provenance.map((p) => p.backend),
      ['openssl'],
    );
    assert.ok(exec.end !== null && exec.end >= exec.start);
    const shell = rows.find((r) => r.gate_user === 'ops' && r.target === 'web');
    assert.ok(shell);
    assert.equal(shell.channels[0]?.pty, true);
    assert.equal(shell.channels[0]?.request, 'shell');
    assert.equal(shell.exit_status, 0);
    assert.ok(shell.bytes_in >= 'echo typed-$((6*7))\rexit\r'.length, String(shell.bytes_in));
    assert.ok(shell.commands >= 2, String(shell.commands));
    const dev = rows.find((r) => r.gate_user === 'dev');
    assert.equal(dev?.target, 'web');
  });

  it('sessions prints a table by default', async () => {
    const r = await sealgate(['sessions', store, '--key', keyArg, ...trust]);
    assert.equal(r.status, 0, showRun(r));
    const lines = r.stdout.split('\n').filter((l) => /[0-9a-f]{12}/.test(l));
    assert.equal(lines.length, 3, r.stdout);
    assert.match(r.stdout, /gate user/);
    assert.ok(lines.some((l) => /\bdev\b/.test(l) && /\bweb\b/.test(l)));
  });

  it('sessions filters by gate user, target, time and session', async () => {
    assert.deepEqual(
      (await sessionsJson(['--user', 'dev'])).map((r) => r.gate_user),
      ['dev'],
    );
    assert.equal((await sessionsJson(['--target', 'web'])).length, 2);
    assert.equal((await sessionsJson(['--since', '1h'])).length, 3);
    assert.equal((await sessionsJson(['--until', '2020-01-01'])).length, 0);
    const all = await sessionsJson();
    const one = all[1]!.session;
    assert.deepEqual(
      (await sessionsJson(['--session', one.slice(0, 12)])).map((r) => r.session),
      [one],
    );
    const bad = await sealgate(['sessions', store, '--key', keyArg, ...trust, '--since', 'last tuesday']);
    assert.equal(bad.status, 2, showRun(bad));
    assert.match(bad.stderr, /--since "last tuesday"/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
  });

  it('commands: exec and terminal commands, with --grep, -i, --user, --target, --session', async () => {
    const all = await commandsJson();
    const texts = all.map((c) => c.text);
    assert.ok(texts.includes('echo alpha; exit 3'), texts.join('\n'));
    const typed = all.find((c) => c.text === 'echo typed-$((6*7))');
    assert.ok(typed, texts.join('\n'));
    assert.equal(typed.derivation, 'terminal');
    assert.equal(typed.gate_user, 'ops');
    assert.equal(typed.target, 'web');

    const kubectl = await commandsJson(['--grep', 'kubectl delete', '--since', '7d']);
    assert.equal(kubectl.length, 1);
    assert.equal(kubectl[0]!.gate_user, 'dev');
    assert.equal(kubectl[0]!.derivation, 'exec');
    assert.deepEqual(await commandsJson(['--grep', 'KUBECTL']), []);
    assert.equal((await commandsJson(['--grep', 'KUBECTL', '-i'])).length, 1);
    assert.ok((await commandsJson(['--user', 'ops'])).every((c) => c.gate_user === 'ops'));
    assert.ok((await commandsJson(['--target', 'local'])).every((c) => c.target === 'local'));
    const bySession = await commandsJson(['--session', typed.session]);
    assert.ok(bySession.length >= 2 && bySession.every((c) => c.session === typed.session));
    assert.deepEqual(await commandsJson(['--until', '2020-01-01']), []);

    const table = await sealgate(['commands', store, '--key', keyArg, ...trust, '--grep', 'typed']);
    assert.equal(table.status, 0, showRun(table));
    assert.match(table.stdout, /echo typed-\$\(\(6\*7\)\)/);
    assert.match(table.stdout, /terminal/);
    const badRe = await sealgate(['commands', store, '--key', keyArg, ...trust, '--grep', '(']);
    assert.equal(badRe.status, 2, showRun(badRe));
  });

  it('reads a complete export bundle the same way, and says when its run was not logged to a gate', async () => {
    const signerFile = join(fx.dir, 'signer-export.pem');
    writeFileSync(signerFile, fx.provider.exportPrivateKey(fx.signer), { mode: 0o600 });
    const bundle = join(fx.dir, 'bundle');
    const exp = await sealgate(['export', store, '-o', bundle, '--signer-key', `file:${signerFile}`]);
    assert.equal(exp.status, 0, showRun(exp));
    const r = await sealgate(['sessions', bundle, '--key', keyArg, ...trust, '--json']);
    assert.equal(r.status, 0, showRun(r));
    const fromBundle = jsonLines<SessionSummary>(r.stdout).map((x) => x.session);
    const fromStore = (await sessionsJson()).map((x) => x.session);
    assert.deepEqual(fromBundle, fromStore.slice(0, fromBundle.length));
    assert.ok(fromBundle.length >= 3);
    assert.match(r.stderr, /was not logged to a gate/);
    const spool = join(fx.dir, 'auditor-spool');
    const logged = await sealgate([
      'commands',
      bundle,
      '--key',
      keyArg,
      ...trust,
      '--audit-spool',
      spool,
      '--json',
    ]);
    assert.equal(logged.status, 0, showRun(logged));
    assert.equal(readdirSync(spool).filter((n) => n.endsWith('.json')).length, 1);
  });

  it('every run spools an audit event into the store (action sessions / commands)', async () => {
    const spool = join(store, 'audit-spool');
    const before = new Set(existsSync(spool) ? readdirSync(spool) : []);
    const r = await sealgate(['commands', store, '--key', keyArg, ...trust, '--grep', 'alpha', '--rebuild']);
    assert.equal(r.status, 0, showRun(r));
    const fresh = readdirSync(spool).filter((n) => !before.has(n) && n.endsWith('.json'));
    assert.equal(fresh.length, 1);
    const event = JSON.parse(readFileSync(join(spool, fresh[0]!), 'utf8')) as {
      action: string;
      details: Record<string, unknown>;
    };
    assert.equal(event.action, 'commands');
    assert.equal(event.details.origin, 'test.sealgate/ssh');
    assert.deepEqual(event.details.filters, { grep: 'alpha' });
    assert.equal(event.details.verified, true); // --rebuild: the log was read, verified first
  });

  it('verifies before it reads: no trust root is refused; --no-verify warns; a current index needs no re-read', async () => {
    const idx = join(fx.dir, 'idx-verify');
    const none = await sealgate(['sessions', store, '--key', keyArg, '--index', idx]);
    assert.equal(none.status, 2, showRun(none));
    assert.match(none.stderr, /no signer keys: give the checkpoint signers. public keys \(--keys DIR\)/);
    const unverified = await sealgate([
      'sessions',
      store,
      '--key',
      keyArg,
      '--no-verify',
      '--index',
      idx,
      '--json',
    ]);
    assert.equal(unverified.status, 0, showRun(unverified));
    assert.match(unverified.stderr, /WARNING: --no-verify/);
    // An index written by an unverified read: a verified run verifies the log before it uses it.
    const again = await sealgate(['sessions', store, '--key', keyArg, '--index', idx]);
    assert.equal(again.status, 2, showRun(again));
    const verified = await sealgate([
      'sessions',
      store,
      '--key',
      keyArg,
      ...trust,
      '--index',
      join(fx.dir, 'idx-v2'),
    ]);
    assert.equal(verified.status, 0, showRun(verified));
    // Built from a verified read and current: answered from the index, no trust options needed.
    const current = await sealgate([
      'sessions',
      store,
      '--key',
      keyArg,
      '--index',
      join(fx.dir, 'idx-v2'),
      '--json',
    ]);
    assert.equal(current.status, 0, showRun(current));
    assert.equal(jsonLines(current.stdout).length, jsonLines(unverified.stdout).length);
  });

  it('the default index lives under $XDG_CACHE_HOME/sealgate/index, 0700 / 0600, and index delete removes it', async () => {
    await sessionsJson();
    const root = join(env.XDG_CACHE_HOME!, 'sealgate', 'index');
    const [logDir] = readdirSync(root);
    assert.match(logDir!, /^test\.sealgate_ssh-[0-9a-f]{16}$/);
    const [keyDir] = readdirSync(join(root, logDir!));
    const dir = join(root, logDir!, keyDir!);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.ok(readdirSync(dir).includes('INDEX.json'));
    assert.ok(!readdirSync(store).some((n) => /index/i.test(n)), 'nothing is indexed into the store');

    const del = await sealgate(['index', 'delete', store]);
    assert.equal(del.status, 0, showRun(del));
    assert.ok(!existsSync(join(root, logDir!)));
    const inside = await sealgate([
      'sessions',
      store,
      '--key',
      keyArg,
      ...trust,
      '--index',
      join(store, 'idx'),
    ]);
    assert.equal(inside.status, 2, showRun(inside));
    assert.match(inside.stderr, /inside the source/);
  });

  /** A copy of the store as it stands (the writer is idle: sessions ended, flushed). */
  function snapshot(name: string): string {
    const dest = join(fx.dir, name);
    cpSync(store, dest, { recursive: true });
    rmSync(join(dest, 'writer.lock'), { force: true });
    rmSync(join(dest, 'audit-spool'), { recursive: true, force: true });
    return dest;
  }

  async function indexed(source: string, dir: string, useIndex = true): Promise<IndexedLog> {
    const src = openLogSource(source);
    try {
      const log = await openIndexedLog({
        provider: fx.provider,
        source: src,
        key: fx.recipient,
        useIndex,
        dir,
      });
      return { ...log, commands: () => [...log.commands()] } as IndexedLog;
    } finally {
      src.close();
    }
  }

  it('the index is updated incrementally, and gives what a direct read gives', async () => {
    const early = snapshot('early');
    const idx = join(fx.dir, 'idx-incremental');
    const first = await indexed(early, idx);
    assert.equal(first.use, 'built');
    assert.equal((await indexed(early, idx)).use, 'current');

    const more = await fx.ssh('ops+local', ['echo later-session']);
    assert.equal(more.code, 0, more.stderr);
    await fx.recordsAfterSessions(4);
    await fx.log.checkpoint();
    await fx.log.flush();
    const late = snapshot('late');
    const size = LocalStore.openReadOnly(late);
    const total = size.size;
    await size.close();

    const update = await indexed(late, idx);
    assert.equal(update.use, 'updated', update.reason);
    assert.ok(update.entriesRead < total, `read ${update.entriesRead} of ${total}`);
    const direct = await indexed(late, idx, false);
    assert.equal(direct.use, 'none');
    assert.deepEqual(update.sessions, direct.sessions);
    assert.deepEqual(
      [...update.commands()],
      [...direct.commands()].sort((a, b) => a.index - b.index),
    );
    assert.ok([...update.commands()].some((c) => c.text === 'echo later-session'));

    // The earlier copy is the same log, cut short: the index is rebuilt for it, not trusted.
    const back = await indexed(early, idx);
    assert.equal(back.use, 'rebuilt');
    assert.match(back.reason ?? '', /fewer than/);
    assert.ok(![...back.commands()].some((c) => c.text === 'echo later-session'));
  });

  it('a rewritten last entry or a different log makes the index be rebuilt, not trusted', async () => {
    const copy = snapshot('tampered');
    const idx = join(fx.dir, 'idx-tamper');
    assert.equal((await indexed(copy, idx)).use, 'built');
    // Flip one byte inside the last frame of entries.bin (after its 4-byte length).
    const s = LocalStore.openReadOnly(copy);
    const last = s.entry(s.size - 1);
    await s.close();
    const file = join(copy, 'entries.bin');
    const bytes = readFileSync(file);
    const at = bytes.length - Math.max(1, Math.floor(last.length / 2));
    bytes[at]! ^= 0x01;
    writeFileSync(file, bytes);
    let outcome: string;
    try {
      const r = await indexed(copy, idx);
      outcome = r.use;
      assert.notEqual(r.use, 'current');
      assert.match(r.reason ?? '', /leaf \d+ has changed|checkpoint/);
    } catch (err) {
      assert.ok(err instanceof DecryptError, String(err)); // the rebuild read the altered record
      outcome = err.code;
    }
    assert.ok(
      ['rebuilt', 'none', 'RECORD_AUTHENTICATION_FAILED', 'MALFORMED_ENTRY'].includes(outcome),
      outcome,
    );

    // Another log at the same --index directory.
    const other = snapshot('other-log');
    const otherIdx = join(fx.dir, 'idx-other');
    assert.equal((await indexed(other, otherIdx)).use, 'built');
    const meta = JSON.parse(readFileSync(join(otherIdx, 'INDEX.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(otherIdx, 'INDEX.json'), JSON.stringify({ ...meta, first_leaf: '00'.repeat(32) }));
    const again = await indexed(other, otherIdx);
    assert.equal(again.use, 'rebuilt');
    assert.match(again.reason ?? '', /another log/);
  });
});
