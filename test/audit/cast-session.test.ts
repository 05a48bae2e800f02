/**
 * Casts of a real interactive session, checked by their real consumers: a shell through the gate in
 * front of a real sshd, driven by tmux as a person would (`ssh -tt` in a pane, keys typed with
 * send-keys), then `sealgate decrypt --format …`, `sealgate text` and `sealgate replay` as an auditor
 * runs them (child processes), read back by `asciinema cat` (2.2.0) and `scriptreplay` (util-linux).
 *
 * What "equal" means for asciinema cat and sealgate text: `asciinema cat` prints the output events'
 * text, raw, control sequences and all. So (1) that text must be exactly the session's recorded output
 * (DATA_OUT and DATA_ERR of the channel, as UTF-8), and (2) rendering it through the same headless
 * terminal at the recorded size must give exactly the lines `sealgate text` prints, trailing spaces
 * trimmed. (The first session has no window change: `asciinema cat` drops resize events, so a session
 * with one would render differently on purpose.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ALT_BEGIN, ALT_END, ScreenText } from '../../src/audit/cast/screen-text.js';
import { runCli, showRun, STACK_LINE, type CliRun } from '../helpers/cli.js';
import { startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { cliPath } from '../helpers/paths.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const SOCKET = `sealgate-cast-${process.pid}`;
const PASS = 'cast test passphrase';

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function waitForPane(name: string, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let pane = '';
    try {
      pane = tmux('capture-pane', '-p', '-t', name);
    } catch {
      // the session may be gone
    }
    if (re.test(pane)) return pane;
    if (Date.now() > deadline) throw new Error(`pane never matched ${re}:\n${pane}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function type(name: string, keys: string, until: RegExp): Promise<void> {
  tmux('send-keys', '-t', name, '-l', keys);
  tmux('send-keys', '-t', name, 'Enter');
  await waitForPane(name, until);
}

/** The output bytes of a session's records (DATA_OUT and DATA_ERR), in order. */
function outputBytes(recs: readonly Rec[], session: string): Buffer {
  return Buffer.concat(
    recs
      .filter((r) => r.session === session && (r.type === 'DATA_OUT' || r.type === 'DATA_ERR'))
      .map((r) => r.payload.data ?? new Uint8Array(0)),
  );
}

async function render(cols: number, rows: number, bytes: Uint8Array): Promise<string[]> {
  const screen = new ScreenText(cols, rows);
  const lines = await screen.write(bytes);
  return [...lines, ...(await screen.end())];
}

const trimLines = (text: string): string[] =>
  text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => l.trimEnd());

describe('casts of a real shell session (tmux, ssh -tt, the gate, sshd)', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let work: string;
  let keyFile: string;
  let store: string;
  let recs: Rec[];
  let plain: string; // session 1: no resize
  let resized: string; // session 2: a window change
  let exec: string; // session 3: ssh host cmd, no pty
  let plainPty: { cols: number; rows: number };

  const sealgate = (args: string[]): Promise<CliRun> => runCli(args, { SG_CAST_PASS: PASS });
  let signerPub: string;
  /** The recipient key, and the signer key every read is verified against first. */
  const keyArgs = (): string[] => [
    '--key',
    `file:${keyFile}`,
    '--passphrase-env',
    'SG_CAST_PASS',
    '--keys',
    signerPub,
  ];

  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    work = mkdtempSync(join(tmpdir(), 'sealgate-cast-'));
    keyFile = join(work, 'recipient.key.pem');
    writeFileSync(keyFile, fx.provider.exportPrivateKey(fx.recipient, new TextEncoder().encode(PASS)), {
      mode: 0o600,
    });
    store = fx.config.recording.store;
    signerPub = join(work, 'signer.pub.pem');
    writeFileSync(signerPub, fx.signer.publicKey.spkiPem());
    const ssh = ['ssh', '-tt', ...fx.sshOptions(), 'ops+local@127.0.0.1'].map(quote).join(' ');

    tmux('new-session', '-d', '-s', 'one', '-x', '100', '-y', '30', ssh);
    await waitForPane('one', /^\$ ?$/m);
    // A character whose two bytes are written 0.4 s apart: two DATA_OUT records.
    await type('one', "printf 'caf\\303'; sleep 0.4; printf '\\251 ok\\n'", /^café ok$/m);
    await type('one', 'echo typed-$((6*7))', /^typed-42$/m);
    await type('one', 'seq 1 60', /^60$/m);
    await type('one', "printf '\\033[31mred\\033[0m and plain\\n'", /red and plain/);
    tmux('send-keys', '-t', 'one', '-l', 'less /etc/passwd');
    tmux('send-keys', '-t', 'one', 'Enter');
    await waitForPane('one', /^root:/m);
    tmux('send-keys', '-t', 'one', 'q');
    await waitForPane('one', /^\$ less \/etc\/passwd\n\$ ?$/m);
    await type('one', 'echo after-less', /^after-less$/m);
    tmux('send-keys', '-t', 'one', '-l', 'exit');
    tmux('send-keys', '-t', 'one', 'Enter');
    await fx.recordsAfterSessions(1);

    tmux('new-session', '-d', '-s', 'two', '-x', '80', '-y', '24', ssh);
    await waitForPane('two', /^\$ ?$/m);
    tmux('resize-window', '-t', 'two', '-x', '120', '-y', '40');
    await type('two', 'stty size', /^\d+ 120$/m);
    tmux('send-keys', '-t', 'two', '-l', 'exit');
    tmux('send-keys', '-t', 'two', 'Enter');
    await fx.recordsAfterSessions(2);

    const r = await fx.ssh('ops+local', ['echo out-1; echo err-1 >&2; printf "caf\\303\\251\\n"']);
    assert.equal(r.code, 0, r.stderr);
    recs = await fx.recordsAfterSessions(3);

    const starts = recs.filter((r) => r.type === 'SESSION_START').map((r) => r.session);
    assert.equal(starts.length, 3, 'three sessions recorded');
    [plain, resized, exec] = starts as [string, string, string];
    const pty = recs.find((r) => r.session === plain && r.type === 'PTY_REQ');
    plainPty = { cols: Number(pty?.payload.cols), rows: Number(pty?.payload.rows) };
  });

  after(async () => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    await fx?.close();
    await sshd?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('asciicast v2: asciinema cat prints exactly the recorded output; rendered, it is `sealgate text`', async () => {
    const cast = join(work, 'one.cast');
    const r = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      plain,
      '--format',
      'asciicast-v2',
      '-o',
      cast,
    ]);
    assert.equal(r.status, 0, showRun(r));
    // asciinema 2.2.0 opens /dev/tty (to read keys), so it runs on a pty of script(1); its stdout is
    // redirected to a file inside, so the pty's line discipline never touches the bytes.
    const catOut = join(work, 'one.cat');
    const cat = spawnSync(
      'script',
      ['-qec', `asciinema cat ${quote(cast)} > ${quote(catOut)}`, '/dev/null'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    assert.equal(cat.status, 0, `${cat.stdout.toString()}${cat.stderr.toString()}`);
    const catted = readFileSync(catOut);
    const raw = outputBytes(recs, plain);
    assert.equal(catted.toString('utf8'), raw.toString('utf8'));

    const text = await sealgate(['text', store, plain, ...keyArgs()]);
    assert.equal(text.status, 0, showRun(text));
    const rendered = await render(plainPty.cols, plainPty.rows, catted);
    assert.deepEqual(
      trimLines(text.stdout),
      rendered.map((l) => l.trimEnd()),
    );

    // And the text is what the screen showed: no control sequences, scrolled lines kept in order.
    const lines = trimLines(text.stdout);
    assert.ok(!text.stdout.includes('\u001b'), 'no escape character');
    assert.ok(lines.includes('café ok'), text.stdout);
    assert.ok(lines.includes('typed-42'));
    assert.ok(lines.includes('red and plain'));
    const seq = lines.filter((l) => /^\d+$/.test(l)).map(Number);
    assert.deepEqual(
      seq.slice(0, 60),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    // less ran on the alternate screen: its last screen is framed, after the line that started it.
    const begin = lines.indexOf(ALT_BEGIN);
    assert.ok(begin > 0 && /less \/etc\/passwd$/.test(lines[begin - 1] ?? ''), text.stdout);
    assert.ok(lines.slice(begin).some((l) => l.startsWith('root:')));
    assert.ok(lines.indexOf(ALT_END) > begin);
    assert.ok(lines.indexOf('after-less') > lines.indexOf(ALT_END));
  });

  it('a UTF-8 character split across two DATA_OUT records comes out whole', async () => {
    const out = recs.filter((r) => r.session === plain && r.type === 'DATA_OUT');
    const split = out.findIndex((r) => r.payload.data?.at(-1) === 0xc3);
    assert.ok(split >= 0, 'the recording has a record ending in the first byte of "é"');
    assert.equal(out[split + 1]?.payload.data?.[0], 0xa9);
    const r = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      plain,
      '--format',
      'asciicast-v2',
    ]);
    assert.equal(r.status, 0, showRun(r));
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string]);
    assert.ok(!events.some((e) => e[2].includes('\ufffd')), 'no replacement character');
    assert.ok(
      events.some((e) => e[1] === 'o' && e[2].startsWith('é')),
      'the é arrives whole, in the later event',
    );
  });

  it("asciicast v3: the header and every event have the spec's forms; intervals add up to v2's times", async () => {
    const v3 = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      resized,
      '--format',
      'asciicast-v3',
      '--input',
    ]);
    assert.equal(v3.status, 0, showRun(v3));
    const [head, ...rest] = v3.stdout.trimEnd().split('\n');
    const header = JSON.parse(head ?? '') as Record<string, unknown>;
    assert.equal(header.version, 3);
    const term = header.term as Record<string, unknown>;
    assert.equal(term.cols, 80);
    assert.ok(Number.isInteger(term.rows) && Number(term.rows) >= 22);
    assert.equal(typeof term.type, 'string');
    assert.ok(Number.isInteger(header.timestamp));
    assert.equal(header.width, undefined, 'no v2 fields');
    const events = rest.map((l) => JSON.parse(l) as unknown[]);
    for (const e of events) {
      assert.equal(e.length, 3);
      assert.ok(typeof e[0] === 'number' && e[0] >= 0, JSON.stringify(e));
      assert.ok(['o', 'i', 'r', 'x', 'm'].includes(e[1] as string), JSON.stringify(e));
      assert.equal(typeof e[2], 'string');
    }
    assert.ok(
      events.some((e) => e[1] === 'r' && /^120x\d+$/.test(e[2] as string)),
      'the resize',
    );
    assert.ok(
      events.some((e) => e[1] === 'i' && (e[2] as string).includes('stty size')),
      'input events',
    );
    assert.deepEqual(events.at(-1)?.slice(1), ['x', '0'], 'the exit status last');

    const v2 = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      resized,
      '--format',
      'asciicast-v2',
      '--input',
    ]);
    const v2events = v2.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string]);
    const sum = events.slice(0, -1).reduce((s, e) => s + (e[0] as number), 0);
    assert.equal(v2events.length, events.length - 1, 'v2 has no exit event');
    assert.ok(Math.abs(sum - (v2events.at(-1)?.[0] ?? -1)) < 1e-3, `${sum} vs ${v2events.at(-1)?.[0]}`);
  });

  it('scriptreplay: the classic timing and typescript play back to exactly the output', async () => {
    const prefix = join(work, 'one');
    const r = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      plain,
      '--format',
      'scriptreplay',
      '--out',
      prefix,
    ]);
    assert.equal(r.status, 0, showRun(r));
    const play = spawnSync('scriptreplay', [
      '-d',
      '1000',
      '-m',
      '0.001',
      '-t',
      `${prefix}.timing`,
      `${prefix}.typescript`,
    ]);
    assert.equal(play.status, 0, play.stderr.toString());
    // scriptreplay ends with a newline of its own.
    const expected = Buffer.concat([outputBytes(recs, plain), Buffer.from('\n')]);
    assert.ok(play.stdout.equals(expected), 'scriptreplay printed the recorded output');
    assert.match(readFileSync(`${prefix}.timing`, 'utf8'), /^(\d+\.\d{6} \d+\n)+$/);
  });

  it('scriptreplay: --input gives the advanced format, with the resize as a SIGWINCH line', async () => {
    const typescript = join(work, 'two.io');
    const timing = join(work, 'two.tm');
    const r = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      resized,
      '--format',
      'scriptreplay',
      '--input',
      '--timing',
      timing,
      '--out',
      typescript,
    ]);
    assert.equal(r.status, 0, showRun(r));
    const tm = readFileSync(timing, 'utf8');
    assert.match(tm, /^S \d+\.\d{6} SIGWINCH ROWS=\d+ COLS=120$/m);
    assert.match(tm, /^I \d+\.\d{6} \d+$/m);
    assert.match(tm, /^H 0\.000000 EXIT_CODE 0$/m);
    const play = spawnSync('scriptreplay', [
      '-d',
      '1000',
      '-m',
      '0.001',
      '-t',
      timing,
      '-B',
      typescript,
      '-x',
      'out',
    ]);
    assert.equal(play.status, 0, play.stderr.toString());
    const expected = Buffer.concat([outputBytes(recs, resized), Buffer.from('\n')]);
    assert.ok(play.stdout.equals(expected), 'only the output stream, exactly');
    const summary = spawnSync('scriptreplay', ['--summary', '-t', timing], { encoding: 'utf8' });
    assert.equal(summary.status, 0, summary.stderr);
  });

  it('replay writes the output with its timing (fast), and --at renders what came before at once', async () => {
    const r = await sealgate([
      'replay',
      store,
      plain,
      ...keyArgs(),
      '--speed',
      '1000',
      '--idle-limit',
      '0.01',
    ]);
    assert.equal(r.status, 0, showRun(r));
    assert.equal(r.stdout, outputBytes(recs, plain).toString('utf8'));
    const cast = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      plain,
      '--format',
      'asciicast-v2',
    ]);
    const last = JSON.parse(cast.stdout.trimEnd().split('\n').at(-1) ?? '') as [number];
    const middle = `${(last[0] / 2).toFixed(3)}s`;
    const at = await sealgate(['replay', store, plain, ...keyArgs(), '--at', middle, '--speed', '1000']);
    assert.equal(at.status, 0, showRun(at));
    assert.equal(at.stdout, outputBytes(recs, plain).toString('utf8'));
    const past = await sealgate(['replay', store, plain, ...keyArgs(), '--at', '99999999']);
    assert.equal(past.status, 2, showRun(past));
    assert.match(past.stderr, /past the session's last output/);
    assert.doesNotMatch(past.stderr, STACK_LINE);
  });

  it('text of an exec channel without a pty: the output as it came', async () => {
    const r = await sealgate(['text', store, exec, ...keyArgs()]);
    assert.equal(r.status, 0, showRun(r));
    assert.equal(r.stdout, outputBytes(recs, exec).toString('utf8'));
    assert.match(r.stdout, /^out-1$/m);
    assert.match(r.stdout, /^err-1$/m);
    assert.match(r.stdout, /^café$/m);
  });

  it("replay on a terminal: 'q' quits at once, exit 0", async () => {
    const passFile = join(work, 'pass');
    writeFileSync(passFile, PASS, { mode: 0o600 });
    const rc = join(work, 'replay.rc');
    const command = [
      process.execPath,
      cliPath(),
      'replay',
      store,
      plain,
      '--key',
      `file:${keyFile}`,
      '--passphrase-file',
      passFile,
      '--keys',
      signerPub,
      '--speed',
      '0.01', // the session would take minutes to play
    ]
      .map(quote)
      .join(' ');
    tmux('new-session', '-d', '-s', 'replay', '-x', '100', '-y', '30', `${command}; echo $? > ${quote(rc)}`);
    await waitForPane('replay', /\$/);
    tmux('send-keys', '-t', 'replay', 'q');
    const deadline = Date.now() + 10_000;
    while (!existsSync(rc) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(readFileSync(rc, 'utf8').trim(), '0');
  });

  it('from an export bundle: the same text; the decrypt logged to --audit-spool, or a notice', async () => {
    const signerKey = join(work, 'signer.key.pem');
    writeFileSync(signerKey, fx.provider.exportPrivateKey(fx.signer, new TextEncoder().encode(PASS)), {
      mode: 0o600,
    });
    await fx.log.checkpoint();
    const bundle = join(work, 'bundle');
    const exp = await sealgate([
      'export',
      store,
      '-o',
      bundle,
      '--signer-key',
      `file:${signerKey}`,
      '--passphrase-env',
      'SG_CAST_PASS',
      '--sessions',
      plain,
    ]);
    assert.equal(exp.status, 0, showRun(exp));
    const fromStore = await sealgate(['text', store, plain, ...keyArgs()]);
    const spool = join(work, 'bundle-spool');
    const fromBundle = await sealgate(['text', bundle, plain, ...keyArgs(), '--audit-spool', spool]);
    assert.equal(fromBundle.status, 0, showRun(fromBundle));
    assert.equal(fromBundle.stdout, fromStore.stdout);
    const [event] = readdirSync(spool).map(
      (f) => JSON.parse(readFileSync(join(spool, f), 'utf8')) as { details: Record<string, unknown> },
    );
    assert.equal(event?.details.source_kind, 'bundle');
    assert.equal(event?.details.format, 'text');
    assert.equal(event?.details.session, plain);
    const unlogged = await sealgate([
      'replay',
      bundle,
      plain,
      ...keyArgs(),
      '--speed',
      '1000',
      '--idle-limit',
      '0.01',
    ]);
    assert.equal(unlogged.status, 0, showRun(unlogged));
    assert.match(unlogged.stderr, /was not logged to a gate/);
  });

  it('every read is verified first and logged, with its format; bad input is one line', async () => {
    const spool = join(store, 'audit-spool');
    const events = readdirSync(spool)
      .filter((f) => f.endsWith('.json'))
      .map(
        (f) =>
          JSON.parse(readFileSync(join(spool, f), 'utf8')) as {
            action: string;
            details: Record<string, unknown>;
          },
      );
    const logged = new Set(events.map((e) => `${e.action} ${String(e.details.format)}`));
    for (const f of [
      'decrypt asciicast-v2',
      'decrypt asciicast-v3',
      'decrypt scriptreplay',
      'text text',
      'replay replay',
    ])
      assert.ok(logged.has(f), `${f} in ${[...logged].join(', ')}`);
    assert.ok(events.filter((e) => e.action !== 'export').every((e) => e.details.verified === true));

    const noSession = await sealgate(['decrypt', store, ...keyArgs(), '--format', 'asciicast-v2']);
    assert.equal(noSession.status, 2, showRun(noSession));
    assert.match(noSession.stderr, /needs --session/);
    const noOut = await sealgate([
      'decrypt',
      store,
      ...keyArgs(),
      '--session',
      plain,
      '--format',
      'scriptreplay',
    ]);
    assert.equal(noOut.status, 2, showRun(noOut));
    assert.match(noOut.stderr, /--out PREFIX/);
    const channel = await sealgate(['text', store, plain, ...keyArgs(), '--channel', '7']);
    assert.equal(channel.status, 2, showRun(channel));
    assert.match(
      channel.stderr,
      /no terminal channel 7 \(its terminal channels: channel \d+: shell, pty 100x/,
    );
    const existing = join(work, 'exists.txt');
    writeFileSync(existing, 'keep me');
    const exists = await sealgate(['text', store, plain, ...keyArgs(), '-o', existing]);
    assert.equal(exists.status, 2, showRun(exists));
    assert.match(exists.stderr, /exists; refusing to overwrite it/);
    assert.equal(readFileSync(existing, 'utf8'), 'keep me');
    for (const r of [noSession, noOut, channel, exists]) assert.doesNotMatch(r.stderr, STACK_LINE);
  });
});
