/**
 * The command reconstructor (src/audit/commands/reconstruct.ts) against real sessions: the real OpenSSH
 * client in tmux, through the gate, to a real sshd running bash as a real user (test/helpers/
 * interactive.ts). Each case types as a person would, then asserts the exact list of commands derived
 * from the sealed records: the line on the screen when the user's Enter was echoed, not the keys typed.
 *
 * Also: an exec request gives its command (derivation `exec`), and an sftp batch gives its operations
 * (derivation `sftp`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { OpenedRecord } from '../../src/audit/decrypt.js';
import { reconstructCommands } from '../../src/audit/commands/reconstruct.js';
import type { Command, Derivation } from '../../src/audit/commands/types.js';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import {
  BASH_HOME,
  BASH_PASSWORD,
  BASH_USER,
  COLOUR_PS1,
  DEFAULT_PROMPT,
  ROOT_PROMPT,
  ensureBashUser,
  homeFile,
  interactiveSession,
  newSessionRecords,
  retireBashUser,
  sessionIds,
  setBashPassword,
  userSshKey,
  type InteractiveOptions,
  type InteractiveSession,
} from '../helpers/interactive.js';
import { writeDump } from '../helpers/scenario-dump.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const SUDO_PROMPT = new RegExp(`\\[sudo\\] password for ${BASH_USER}: ?$`, 'm');

/** JSON of the commands (timeUs is a bigint). */
const json = (commands: readonly Command[]): string =>
  JSON.stringify(commands, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

const of = (records: readonly OpenedRecord[], derivation: Derivation): Command[] =>
  reconstructCommands(records).filter((c) => c.derivation === derivation);

const texts = (records: readonly OpenedRecord[], derivation: Derivation = 'terminal'): string[] =>
  of(records, derivation).map((c) => c.text);

/**
 * The terminal commands are exactly `expected`, and each is confident: these sessions are clean (every
 * Enter echoed, the screen followed), so a doubt is a reconstructor finding.
 */
function assertTerminal(records: readonly OpenedRecord[], expected: readonly string[]): Command[] {
  const commands = of(records, 'terminal');
  assert.deepEqual(
    commands.map((c) => c.text),
    expected,
  );
  const doubtful = commands.filter((c) => !c.confident).map((c) => `${c.text} (${c.note ?? ''})`);
  assert.deepEqual(doubtful, [], 'commands not confident');
  return commands;
}

describe('command reconstruction from real bash sessions (tmux → ssh → gate → sshd → bash)', () => {
  let sshd: Sshd | undefined;
  let fx: GateFixture | undefined;
  before(async () => {
    ensureBashUser();
    sshd = await startSshd({ user: BASH_USER });
    setBashPassword();
    fx = await startGateFixture({ sshd });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    retireBashUser();
  });

  /** One scripted session: `script` types; the session's records come back after `exit`. */
  async function scenario(
    opts: InteractiveOptions,
    script: (s: InteractiveSession) => Promise<void>,
  ): Promise<OpenedRecord[]> {
    const s = await interactiveSession(fx as GateFixture, opts);
    try {
      await script(s);
    } catch (err) {
      await s.close().catch(() => undefined);
      throw err;
    }
    return s.close();
  }

  it('plain typing: each line a command', async () => {
    const recs = await scenario({ name: 'plain' }, async (s) => {
      await s.enter('echo one');
      await s.enter('ls /');
      await s.enter('true && echo two');
      shows(s, /^two$/m, /\bbin\b/, /^one$/m);
    });
    assertTerminal(recs, ['echo one', 'ls /', 'true && echo two', 'exit']);
  });

  it('backspace and cursor edits: the edited line, not the keys', async () => {
    const recs = await scenario({ name: 'edits' }, async (s) => {
      await s.type('echo wrold');
      await s.keys('BSpace', 'BSpace', 'BSpace', 'BSpace');
      await s.enter('orld');
      await s.type('echo helo');
      await s.keys('Left');
      await s.enter('l');
      await s.type('cho x');
      await s.keys('C-a');
      await s.type('e');
      await s.keys('C-e');
      await s.enter('y');
      await s.type('rm -rf junk words');
      await s.keys('C-u');
      await s.enter('echo cleared');
      await s.type('echo keep drop');
      await s.keys('C-w');
      await s.enter('last');
      await s.type('echo ac');
      await s.keys('Left');
      await s.type('b');
      await s.keys('Right');
      await s.enter('d');
      shows(s, /^world$/m, /^hello$/m, /^xy$/m, /^cleared$/m, /^keep last$/m, /^abcd$/m);
    });
    assertTerminal(recs, [
      'echo world',
      'echo hello',
      'echo xy',
      'echo cleared',
      'echo keep last',
      'echo abcd',
      'exit',
    ]);
  });

  it('history recall: Up and C-r give the recalled line', async () => {
    const recs = await scenario({ name: 'history' }, async (s) => {
      await s.enter('echo first');
      await s.enter('echo second');
      await s.keys('Up', 'Up');
      await s.waitFor(/\$ echo first$/m);
      await s.enter();
      await s.keys('C-r');
      await s.type('sec');
      await s.waitFor(/reverse-i-search\)`sec': echo second/);
      await s.enter();
      await s.keys('Up');
      await s.waitFor(/\$ echo second$/m);
      await s.keys('BSpace');
      await s.enter('D');
      shows(s, /^seconD$/m);
    });
    assertTerminal(recs, ['echo first', 'echo second', 'echo first', 'echo second', 'echo seconD', 'exit']);
  });

  it('tab completion: the completed file name', async () => {
    homeFile('unique-report-2026.txt', 'report body\n');
    const recs = await scenario({ name: 'tab' }, async (s) => {
      await s.type('cat uniq');
      await s.keys('Tab');
      await s.waitFor(/\$ cat unique-report-2026\.txt$/m);
      await s.enter();
      shows(s, /^report body$/m);
    });
    assertTerminal(recs, ['cat unique-report-2026.txt', 'exit']);
  });

  it('C-c on a half-typed line: no command', async () => {
    const recs = await scenario({ name: 'ctrl-c' }, async (s) => {
      await s.type('rm -rf /tmp/half-typed');
      await s.waitFor(/half-typed$/m);
      await s.keys('C-c');
      await s.waitFor(/half-typed\^C$/m);
      await s.enter('echo after');
      shows(s, /^after$/m);
    });
    assertTerminal(recs, ['echo after', 'exit']);
  });

  it('a line that wraps past the terminal width: one command', async () => {
    const long = `echo ${'wrap-'.repeat(22)}end`; // 120 characters on an 80-column terminal
    const recs = await scenario({ name: 'wrap' }, async (s) => {
      await s.enter(long);
      assert.ok(s.history().split('\n').includes(long.slice(5)), 'the long line ran');
    });
    assertTerminal(recs, [long, 'exit']);
  });

  it('a resize while typing: the whole line', async () => {
    const first = 'echo before-resize ';
    const rest = `after-resize-${'x'.repeat(50)}`;
    const recs = await scenario({ name: 'resize' }, async (s) => {
      await s.type(first);
      await s.waitFor(/before-resize$/m);
      await s.resize(60, 20);
      await s.enter(rest); // wraps at 60 columns
      await s.resize(100, 30);
      await s.enter('echo wider');
      shows(s, /^before-resize after-resize-x{50}$/m, /^wider$/m);
    });
    assertTerminal(recs, [`${first}${rest}`, 'echo wider', 'exit']);
  });

  it('a bracketed paste of several lines: each line a command', async () => {
    const recs = await scenario({ name: 'paste' }, async (s) => {
      await s.paste('echo p1\necho p2\necho p3');
      await s.waitFor(/echo p3$/m);
      await s.enter();
      await s.waitFor(/^p3$/m);
      shows(s, /^p1$/m, /^p2$/m);
    });
    assertTerminal(recs, ['echo p1', 'echo p2', 'echo p3', 'exit']);
  });

  it('UTF-8: the line as typed', async () => {
    const recs = await scenario({ name: 'utf8' }, async (s) => {
      await s.enter('echo héllo 日本');
      await s.type('echo 日本x');
      await s.keys('BSpace', 'BSpace');
      await s.enter('語');
      shows(s, /^héllo 日本$/m, /^日語$/m);
    });
    assertTerminal(recs, ['echo héllo 日本', 'echo 日語', 'exit']);
  });

  it('sudo with a password prompt: the password is in no command', async () => {
    const wrong = 'Wrong-guess-4711';
    const recs = await scenario({ name: 'sudo' }, async (s) => {
      await s.type('sudo id -un');
      await s.keys('Enter');
      await s.waitFor(SUDO_PROMPT);
      await s.type(wrong);
      await s.keys('Enter');
      await s.waitFor(/Sorry, try again\.\n.*password for/, 15_000);
      await s.enter(BASH_PASSWORD, undefined, 15_000);
      shows(s, /^root$/m); // sudo took the password
      await s.enter('echo done');
    });
    assertTerminal(recs, ['sudo id -un', 'echo done', 'exit']);
    const all = json(reconstructCommands(recs));
    assert.ok(!all.includes(BASH_PASSWORD), `the password is in the commands: ${all}`);
    assert.ok(!all.includes(wrong), `the wrong password is in the commands: ${all}`);
  });

  it('full-screen programs: the program line is a command, the keys inside are not', async () => {
    rmSync(join(BASH_HOME, 'scratch.txt'), { force: true });
    homeFile('notes.txt', Array.from({ length: 300 }, (_, i) => `note line ${i}\n`).join(''));
    const recs = await scenario({ name: 'fullscreen' }, async (s) => {
      await s.type('less notes.txt');
      await s.keys('Enter');
      await s.waitFor(/^note line 0$/m);
      await s.type('/line 250');
      await s.keys('Enter');
      await s.waitFor(/^note line 250$/m);
      await s.enter('q');
      await s.type('vi scratch.txt');
      await s.keys('Enter');
      await s.waitFor(/scratch\.txt/);
      await s.settleTerminalReplies(); // vim's start-up probes answered while vim still reads them
      await s.type('iecho typed-in-vi');
      await s.keys('Escape');
      await s.enter(':q!');
      await s.enter('echo back');
      shows(s, /^back$/m);
      assert.ok(!existsSync(join(BASH_HOME, 'scratch.txt')), 'vi quit without writing');
    });
    assertTerminal(recs, ['less notes.txt', 'vi scratch.txt', 'echo back', 'exit']);
  });

  it('top: redraws on the alternate screen are no commands', async () => {
    const recs = await scenario({ name: 'top' }, async (s) => {
      await s.type('top -d 0.3');
      await s.keys('Enter');
      await s.waitFor(/load average/);
      await s.waitFor(/^ *PID +USER/m);
      await s.enter('q');
      await s.enter('echo after-top');
      shows(s, /^after-top$/m);
    });
    assertTerminal(recs, ['top -d 0.3', 'echo after-top', 'exit']);
  });

  it('a terminal reply that reaches the shell: the line bash ran, as the screen shows it', async () => {
    // The cursor position report to printf's request arrives while `sleep` runs: the tty echoes it, and
    // readline then reads it as keys, taking `ESC [ 2 ;` as an unbound sequence and inserting `1R`. Bash
    // runs `1Recho next`; that is the command (confident or not: the input holds bytes nobody typed).
    // The echoed reply comes before the next prompt, so that prompt is not at the start of its line.
    const prompt = /sgbash@sealgate:\S*\$(?: |$)/;
    const recs = await scenario({ name: 'late-reply', prompt }, async (s) => {
      await s.enter("printf '\\033[6n'; sleep 1");
      await s.enter('echo next');
      shows(s, /1Recho: command not found/);
    });
    assert.deepEqual(texts(recs), ["printf '\\033[6n'; sleep 1", '1Recho next', 'exit']);
  });

  it('nested shells: bash, then sudo -i', async () => {
    const recs = await scenario({ name: 'nested' }, async (s) => {
      await s.enter('bash');
      await s.enter('echo inner');
      await s.enter('exit');
      await s.enter('echo outer');
      await s.type('sudo -i');
      await s.keys('Enter');
      await s.waitFor(SUDO_PROMPT);
      await s.enter(BASH_PASSWORD, ROOT_PROMPT, 15_000);
      await s.enter('whoami', ROOT_PROMPT);
      shows(s, /^root$/m, /^inner$/m, /^outer$/m);
      await s.enter('exit');
    });
    assertTerminal(recs, ['bash', 'echo inner', 'exit', 'echo outer', 'sudo -i', 'whoami', 'exit', 'exit']);
    assert.ok(!json(reconstructCommands(recs)).includes(BASH_PASSWORD));
  });

  it('ssh onward from the target: the inner commands are typed into the same channel', async () => {
    const sd = sshd as Sshd;
    sd.authorize(userSshKey(sd.knownHostsLine).publicKey);
    const onward = `ssh -p ${sd.port} ${BASH_USER}@127.0.0.1`;
    const recs = await scenario({ name: 'ssh-onward' }, async (s) => {
      await s.enter(onward, DEFAULT_PROMPT, 15_000);
      await s.enter('echo from-inner');
      shows(s, /^from-inner$/m);
      await s.enter('exit');
      await s.waitFor(/Connection to 127\.0\.0\.1 closed/);
      await s.enter('echo back-outside');
    });
    assertTerminal(recs, [onward, 'echo from-inner', 'exit', 'echo back-outside', 'exit']);
  });

  it('a coloured two-line prompt: the prompt is no part of the command', async () => {
    const recs = await scenario({ name: 'colour-ps1', ps1: COLOUR_PS1 }, async (s) => {
      await s.enter('echo colour');
      await s.type('echo second line');
      await s.keys('C-a');
      await s.enter();
      shows(s, /^colour$/m, /^second line$/m);
    });
    assertTerminal(recs, ['echo colour', 'echo second line', 'exit']);
  });

  it('exec: the EXEC command', async () => {
    const f = fx as GateFixture;
    const before = await sessionIds(f);
    const r = await f.ssh('ops+local', ['echo hi']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'hi\n');
    const recs = await newSessionRecords(f, before);
    dump('exec', recs);
    assert.deepEqual(texts(recs, 'exec'), ['echo hi']);
    assert.deepEqual(texts(recs, 'terminal'), []);
  });

  it('sftp: put, mkdir, rename, chmod, ln -s, ls, rm, rmdir as commands', async () => {
    const f = fx as GateFixture;
    const dir = mkdtempSync(join(tmpdir(), 'sealgate-cmd-sftp-'));
    chmodSync(dir, 0o777);
    try {
      const local = join(dir, 'local.txt');
      writeFileSync(local, 'payload\n');
      const r1 = `${dir}/up.txt`;
      const sub = `${dir}/sub`;
      const batch = [
        `put ${local} ${r1}`,
        `mkdir ${sub}`,
        `rename ${r1} ${sub}/moved.txt`,
        `chmod 600 ${sub}/moved.txt`,
        `ln -s ${sub}/moved.txt ${sub}/link`,
        `ls ${sub}`,
        `rm ${sub}/link`,
        `rm ${sub}/moved.txt`,
        `rmdir ${sub}`,
        '',
      ].join('\n');
      const options = f.sshOptions().map((o, i, all) => (o === '-p' && i === all.length - 2 ? '-P' : o));
      const before = await sessionIds(f);
      const r = await runSftp(['-b', '-', ...options, 'ops+local@127.0.0.1'], batch);
      assert.equal(r.status, 0, r.stderr);
      const recs = await newSessionRecords(f, before);
      dump('sftp', recs);
      assert.deepEqual(texts(recs, 'sftp'), [
        `put ${r1}`,
        `mkdir ${sub}`,
        `rename ${r1} ${sub}/moved.txt`,
        `chmod 600 ${sub}/moved.txt`,
        `ln -s ${sub}/moved.txt ${sub}/link`,
        `ls ${sub}/`, // OpenSSH's sftp opens the directory as `DIR/`
        `rm ${sub}/link`,
        `rm ${sub}/moved.txt`,
        `rmdir ${sub}`,
      ]);
      assert.deepEqual(texts(recs, 'terminal'), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Asserts that the pane's history (wrapped lines joined) shows each pattern: the keys did their work. */
function shows(s: InteractiveSession, ...patterns: RegExp[]): void {
  const history = s.history();
  for (const re of patterns) assert.match(history, re);
}

function dump(name: string, records: readonly OpenedRecord[]): void {
  const dir = process.env.SEALGATE_DUMP_RECORDS;
  if (dir) writeDump(dir, name, records);
}

/** The real OpenSSH sftp, asynchronously (the gate runs in this process). */
function runSftp(args: string[], input: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sftp', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}
