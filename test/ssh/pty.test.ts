/**
 * An interactive shell with a PTY, driven through tmux as a person would: `ssh -tt` in a tmux pane, keys
 * typed with send-keys, the window resized with resize-window. The typed input, the output, the pty-req
 * and the window-change are all in the sealed log, and the target sees the new size.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { dataText, startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const SOCKET = `sealgate-test-${process.pid}`;

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function waitForPane(re: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let pane = '';
    try {
      pane = tmux('capture-pane', '-p', '-t', 'gate');
    } catch {
      // the session may be gone
    }
    if (re.test(pane)) return pane;
    if (Date.now() > deadline) throw new Error(`pane never matched ${re}:\n${pane}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('interactive shell with a PTY (tmux driving ssh -tt)', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
  });
  after(async () => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    await fx?.close();
    await sshd?.stop();
  });

  it('records typed input, output, the pty-req and a window-change', async () => {
    const ssh = ['ssh', '-tt', ...fx.sshOptions(), 'ops+local@127.0.0.1'].map(quote).join(' ');
    tmux('new-session', '-d', '-s', 'gate', '-x', '100', '-y', '30', ssh);
    await waitForPane(/^\$ ?$/m);
    tmux('send-keys', '-t', 'gate', 'echo typed-$((6*7))', 'Enter');
    await waitForPane(/^typed-42$/m);

    tmux('resize-window', '-t', 'gate', '-x', '120', '-y', '40');
    tmux('send-keys', '-t', 'gate', 'stty size', 'Enter');
    const pane = await waitForPane(/^\d+ 120$/m);
    const rows = Number(/^(\d+) 120$/m.exec(pane)?.[1]);
    assert.ok(rows >= 38, `the target saw ${rows} rows`);

    tmux('send-keys', '-t', 'gate', 'exit', 'Enter');
    const recs = await fx.recordsAfterSessions(1);
    const pty = recs.find((r) => r.type === 'PTY_REQ');
    assert.equal(pty?.payload.cols, 100);
    assert.ok(Number(pty?.payload.rows) >= 28);
    assert.equal(typeof pty?.payload.term, 'string');
    assert.ok(recs.some((r) => r.type === 'SHELL'));
    const change = recs.find((r) => r.type === 'WINDOW_CHANGE' && r.payload.cols === 120);
    assert.ok(change, 'no WINDOW_CHANGE to 120 columns');
    assert.equal(change.payload.rows, rows);
    const typed = dataText(recs, 'DATA_IN');
    assert.match(typed, /echo typed-\$\(\(6\*7\)\)\r/);
    assert.match(typed, /stty size\r/);
    assert.match(typed, /exit\r/);
    const shown = dataText(recs, 'DATA_OUT');
    assert.match(shown, /typed-42\r\n/);
    assert.match(shown, new RegExp(`${rows} 120\\r\\n`));
    assert.equal(recs.find((r) => r.type === 'EXIT_STATUS')?.payload.code, 0);
  });
});
