/**
 * Scripted interactive sessions as a person types them: the real OpenSSH client (`ssh -tt`) in a tmux
 * pane, through an in-process gate (gate-fixture.ts), to a real sshd (sshd.ts) running **bash** as a real
 * local user with a normal prompt, a HOME with a .bashrc and a HISTFILE, and sudo that asks for the
 * user's password.
 *
 * Facts this relies on (checked on Debian 12):
 * - `useradd -m -s /bin/bash`, then a password set with `chpasswd`: the account is unlocked, so sshd
 *   (`UsePAM no`) accepts the key login. startSshd's ensureUser sets the password to `*`, so the password
 *   is set after the sshd has started.
 * - sudo uses PAM (`/etc/pam.d/sudo` → common-auth → pam_unix), independently of sshd's `UsePAM no`;
 *   pam_unix checks the password against /etc/shadow, so a sudoers.d line `USER ALL=(ALL:ALL) ALL` gives a
 *   real `[sudo] password for USER:` prompt. Nothing else was needed.
 * - Every tmux server has its own socket (`-L`) and no config (`-f /dev/null`); the pane's TERM is tmux's
 *   default (`screen`). Waiting is by polling `capture-pane`, never by fixed sleeps.
 *
 * With `SEALGATE_DUMP_RECORDS=DIR`, `close()` also writes the session's records to `DIR/NAME.jsonl`
 * (scenario-dump.ts), so the command reconstructor can be worked on without re-running tmux.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptError, decryptLog, type OpenedRecord } from '../../src/audit/decrypt.js';
import { storeSource } from '../../src/audit/source.js';
import type { DataPayload } from '../../src/seal/format/payload.js';
import type { GateFixture } from './gate-fixture.js';
import { writeDump } from './scenario-dump.js';

/** The login user of the interactive scenarios (bash, a password, sudo with a password). */
export const BASH_USER = 'sgbash';
/** Its password: typed at sudo's prompt; it must appear in no derived command. */
export const BASH_PASSWORD = 'Pw-7c1f-secret-sudo';
export const BASH_HOME = `/home/${BASH_USER}`;
/** The prompt of the default .bashrc: `sgbash@sealgate:~$ ` (fixed host name, not the machine's). */
export const DEFAULT_PS1 = '\\u@sealgate:\\w\\$ ';
/** A coloured two-line prompt: a green `[user ~]` line, then `❯ `. */
export const COLOUR_PS1 = '\\[\\e[1;32m\\][\\u \\w]\\[\\e[0m\\]\\n\\[\\e[35m\\]❯\\[\\e[0m\\] ';

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/** Creates the bash user (before startSshd: it keeps the shell; startSshd's ensureUser unlocks it). */
export function ensureBashUser(): void {
  if (spawnSync('id', ['-u', BASH_USER]).status !== 0) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/bash', BASH_USER], { encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 9) throw new Error(`useradd ${BASH_USER}: ${r.stderr}`);
  }
  run('usermod', ['-s', '/bin/bash', BASH_USER]);
  writeFileSync(`/etc/sudoers.d/${BASH_USER}`, `${BASH_USER} ALL=(ALL:ALL) ALL\n`, { mode: 0o440 });
  run('visudo', ['-c', '-q', '-f', `/etc/sudoers.d/${BASH_USER}`]);
}

/** Sets the password (after startSshd, whose ensureUser set it to `*`). */
export function setBashPassword(): void {
  run('chpasswd', [], `${BASH_USER}:${BASH_PASSWORD}\n`);
}

/** Removes the sudoers file and the known password (`*`, as the other test users); the user stays. */
export function retireBashUser(): void {
  rmSync(`/etc/sudoers.d/${BASH_USER}`, { force: true });
  run('usermod', ['-p', '*', BASH_USER]);
}

const uid = (): number => Number(run('id', ['-u', BASH_USER]).trim());
const gid = (): number => Number(run('id', ['-g', BASH_USER]).trim());

function writeOwned(path: string, text: string, mode = 0o644): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  chownSync(path, uid(), gid());
}

/** A fresh HOME: .bashrc with `ps1`, an empty history, no ~/.ssh unless `sshKeyFor` is set later. */
export function resetHome(ps1: string): void {
  rmSync(join(BASH_HOME, '.bash_history'), { force: true });
  rmSync(join(BASH_HOME, '.lesshst'), { force: true });
  rmSync(join(BASH_HOME, '.viminfo'), { force: true });
  writeOwned(
    join(BASH_HOME, '.bashrc'),
    [
      '# written by test/helpers/interactive.ts',
      `export HISTFILE=${BASH_HOME}/.bash_history`,
      'HISTSIZE=1000',
      'HISTCONTROL=',
      'export LANG=C.UTF-8',
      'export PAGER=less EDITOR=vi',
      // No bell, no mail check, nothing that writes asynchronously to the terminal.
      'unset MAILCHECK',
      `PS1='${ps1.replace(/'/g, `'\\''`)}'`,
      '',
    ].join('\n'),
  );
  writeOwned(join(BASH_HOME, '.profile'), '[ -f ~/.bashrc ] && . ~/.bashrc\n');
  rmSync(join(BASH_HOME, '.bash_profile'), { force: true });
  writeOwned(join(BASH_HOME, '.hushlogin'), '');
}

/** Writes a file in HOME owned by the user. */
export function homeFile(name: string, text: string, mode = 0o644): string {
  const path = join(BASH_HOME, name);
  writeOwned(path, text, mode);
  return path;
}

/** Gives the user an ssh key and known_hosts for `ssh` onward to the same sshd (authorized by the caller). */
export function userSshKey(knownHostsLine: string): { publicKey: string } {
  const dir = join(BASH_HOME, '.ssh');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, uid(), gid());
  const key = join(dir, 'id_ecdsa');
  run('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-C', 'sgbash-onward', '-f', key]);
  chownSync(key, uid(), gid());
  chownSync(`${key}.pub`, uid(), gid());
  writeOwned(join(dir, 'known_hosts'), `${knownHostsLine}\n`);
  return { publicKey: run('cat', [`${key}.pub`]).trim() };
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface InteractiveOptions {
  /** The scenario's name: the dump file's name. */
  readonly name: string;
  /** PS1 for the .bashrc (default DEFAULT_PS1). */
  readonly ps1?: string;
  /**
   * The prompt's last line as it shows, at the start of a line (default: DEFAULT_PROMPT, or COLOUR_PROMPT
   * for COLOUR_PS1). Counted to know that a command has finished.
   */
  readonly prompt?: RegExp;
  readonly cols?: number;
  readonly rows?: number;
  /** The gate login (default `ops+local`). */
  readonly login?: string;
}

/** DEFAULT_PS1 as it shows (capture-pane drops trailing blanks, so the space is optional). */
export const DEFAULT_PROMPT = /^sgbash@sealgate:\S*\$(?: |$)/;
/** The last line of COLOUR_PS1 as it shows. */
export const COLOUR_PROMPT = /^❯(?: |$)/;
/** Debian's root prompt from /etc/bash.bashrc (`sudo -i`): `root@HOST:~# `. */
export const ROOT_PROMPT = /^root@[^:\s]+:\S*#(?: |$)/;

export interface InteractiveSession {
  /** Literal text, as typed (`send-keys -l`). */
  type(text: string): Promise<void>;
  /** tmux key names: `Enter`, `C-a`, `Up`, `BSpace`, `C-c`, `Tab`, `Left`… */
  keys(...names: string[]): Promise<void>;
  /**
   * Presses Enter (after `text`, typed literally, if given) and waits for the next prompt: one more line
   * matching `prompt` (default the session's) in the whole pane history, and it is the cursor's line.
   */
  enter(text?: string, prompt?: RegExp, timeoutMs?: number): Promise<string>;
  /** Polls the visible pane until it matches; returns it. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** The visible pane, now. */
  screen(): string;
  /** The whole pane history, wrapped lines joined. */
  history(): string;
  /** Resizes the tmux window (the client sends a window-change) and waits until the pane has the size. */
  resize(cols: number, rows: number): Promise<void>;
  /** Pastes `text` as a terminal does: in bracketed-paste markers when the application asked for them. */
  paste(text: string): Promise<void>;
  /** The session's records sealed so far (the session still running). */
  recorded(): Promise<OpenedRecord[]>;
  /**
   * Waits until tmux has answered every cursor position request (`ESC [ 6 n`) the target sent so far:
   * the recorded input holds as many `ESC [ row ; col R` replies. Programs such as vim ask at start-up;
   * a reply that comes after the program has quit lands in the shell's input, so a scenario that is not
   * about that waits for the replies before it types on.
   */
  settleTerminalReplies(timeoutMs?: number): Promise<void>;
  /**
   * Types `exit` (unless `typeExit` is false: the caller ended the shell), waits for the client to leave
   * and the gate to record SESSION_END, and returns the session's records in leaf order.
   */
  close(opts?: { typeExit?: boolean }): Promise<OpenedRecord[]>;
}

let counter = 0;

/** A cursor position report, `ESC [ row ; col R`: the terminal's answer to `ESC [ 6 n`. */
const CURSOR_REPORT = new RegExp(`${String.fromCharCode(27)}\\[\\d+;\\d+R`, 'g');

/** The records of sessions not in `before`, waiting until `n` of them have a SESSION_END. */
export async function newSessionRecords(
  fx: GateFixture,
  before: ReadonlySet<string>,
  n = 1,
  timeoutMs = 15_000,
): Promise<OpenedRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = (await allRecords(fx)).filter((r) => !before.has(r.session));
    const ended = new Set(records.filter((r) => r.type === 'SESSION_END').map((r) => r.session));
    if (ended.size >= n) return records;
    if (Date.now() > deadline) {
      throw new Error(`${ended.size} of ${n} new sessions ended within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every record in the fixture's store, opened with its recipient key (decryptLog(...).opened()). */
export async function allRecords(fx: GateFixture): Promise<OpenedRecord[]> {
  if (!fx.log.failed) await fx.log.checkpoint().catch(() => undefined);
  const source = storeSource(fx.config.recording.store);
  const out: OpenedRecord[] = [];
  try {
    const opened = decryptLog(fx.provider, source.entries(), fx.recipient, { recordsOnly: true }).opened();
    for await (const e of opened) if (e.kind === 'record') out.push(e);
  } catch (err) {
    // A store with no session yet has no segment at all.
    if (!(err instanceof DecryptError && err.code === 'NO_SEGMENT_FOR_KEY')) throw err;
  } finally {
    source.close();
  }
  return out;
}

/** The session ids in the store so far. */
export async function sessionIds(fx: GateFixture): Promise<Set<string>> {
  return new Set((await allRecords(fx)).map((r) => r.session));
}

const countMatches = (text: string, lineRe: RegExp): number =>
  text.split('\n').filter((l) => lineRe.test(l)).length;

/** Starts `ssh -tt` in a new tmux server (its own socket) and waits for the first prompt. */
export async function interactiveSession(
  fx: GateFixture,
  opts: InteractiveOptions,
): Promise<InteractiveSession> {
  const ps1 = opts.ps1 ?? DEFAULT_PS1;
  const prompt = opts.prompt ?? (ps1 === COLOUR_PS1 ? COLOUR_PROMPT : DEFAULT_PROMPT);
  resetHome(ps1);
  const socket = `sealgate-int-${process.pid}-${++counter}`;
  const target = 'int';
  const tmux = (...args: string[]): string => {
    const r = spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
    return r.stdout;
  };
  /** Stops this tmux server and removes its socket file (tmux leaves it behind). */
  const killServer = (): void => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    const uidNow = process.getuid?.() ?? 0;
    rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${uidNow}`, socket), { force: true });
  };
  const before = await sessionIds(fx);
  const login = opts.login ?? 'ops+local';
  const ssh = ['ssh', '-tt', ...fx.sshOptions(), `${login}@127.0.0.1`].map(quote).join(' ');
  const cols = opts.cols ?? 80;
  const rows = opts.rows ?? 24;
  // history-limit before the pane exists (it applies to new panes); remain-on-exit to see ssh leave.
  // LANG: tmux reads the pane as UTF-8.
  tmux(
    'start-server',
    ';',
    'set-option',
    '-g',
    'history-limit',
    '20000',
    ';',
    'set-option',
    '-g',
    'remain-on-exit',
    'on',
    ';',
    'new-session',
    '-d',
    '-s',
    target,
    '-x',
    String(cols),
    '-y',
    String(rows),
    '-e',
    'LANG=C.UTF-8',
    ssh,
  );

  let alive = true;
  const capture = (...extra: string[]): string => {
    try {
      return tmux('capture-pane', '-p', '-t', target, ...extra);
    } catch {
      return '';
    }
  };
  const screen = (): string => capture();
  const history = (): string => capture('-J', '-S', '-', '-E', '-');
  const poll = async (what: string, ok: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) {
        throw new Error(`${opts.name}: ${what} within ${timeoutMs} ms; the pane:\n${screen()}`);
      }
      await new Promise((r) => setTimeout(r, 40));
    }
  };
  const cursorLine = (): string => {
    const y = Number(tmux('display-message', '-p', '-t', target, '#{cursor_y}').trim());
    return screen().split('\n')[y] ?? '';
  };
  const waitFor = async (re: RegExp, timeoutMs = 10_000): Promise<string> => {
    let pane = '';
    await poll(`the pane never matched ${re}`, () => re.test((pane = screen())), timeoutMs);
    return pane;
  };

  const session: InteractiveSession = {
    async type(text) {
      tmux('send-keys', '-t', target, '-l', text);
    },
    async keys(...names) {
      tmux('send-keys', '-t', target, ...names);
    },
    async enter(text, re = prompt, timeoutMs = 10_000) {
      const seen = countMatches(history(), re);
      if (text !== undefined) tmux('send-keys', '-t', target, '-l', text);
      tmux('send-keys', '-t', target, 'Enter');
      await poll(
        `no new prompt ${re} after Enter`,
        () => countMatches(history(), re) > seen && re.test(cursorLine()),
        timeoutMs,
      );
      return screen();
    },
    waitFor,
    screen,
    history,
    async resize(c, r) {
      tmux('resize-window', '-t', target, '-x', String(c), '-y', String(r));
      await poll(
        `the pane is not ${c}x${r}`,
        () =>
          tmux('display-message', '-p', '-t', target, '#{pane_width}x#{pane_height}').trim() === `${c}x${r}`,
        5_000,
      );
    },
    async paste(text) {
      tmux('set-buffer', '-b', 'paste', text);
      tmux('paste-buffer', '-p', '-d', '-b', 'paste', '-t', target);
    },
    async recorded() {
      return (await allRecords(fx)).filter((r) => !before.has(r.session));
    },
    async settleTerminalReplies(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const recs = await session.recorded();
        const text = (type: string): string =>
          Buffer.concat(
            recs.filter((r) => r.type === type).map((r) => (r.payload as DataPayload).data),
          ).toString('latin1');
        const asked = text('DATA_OUT').split('\x1b[6n').length - 1;
        const answered = (text('DATA_IN').match(CURSOR_REPORT) ?? []).length;
        if (answered >= asked) return;
        if (Date.now() > deadline) {
          throw new Error(`${opts.name}: ${answered} of ${asked} cursor position requests answered`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close(o = {}) {
      if (!alive) throw new Error(`${opts.name}: closed twice`);
      alive = false;
      try {
        if (o.typeExit !== false) await session.type('exit');
        if (o.typeExit !== false) await session.keys('Enter');
        await poll(
          'ssh did not exit',
          () => tmux('display-message', '-p', '-t', target, '#{pane_dead}').trim() === '1',
          10_000,
        );
      } finally {
        killServer();
      }
      const records = await newSessionRecords(fx, before);
      const dir = process.env.SEALGATE_DUMP_RECORDS;
      if (dir) writeDump(dir, opts.name, records);
      return records;
    },
  };
  try {
    await poll('no first prompt', () => countMatches(history(), prompt) > 0, 15_000);
  } catch (err) {
    killServer();
    throw err;
  }
  return session;
}
