/**
 * The command reconstructor's pure pieces (src/audit/commands/), fed records directly. The terminal
 * byte sequences are the ones real bash 5.2 printed through the gate (captured from sealed sessions);
 * the end-to-end cases with real bash, tmux and sshd are in commands-terminal.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OpenedRecord } from '../../src/audit/decrypt.js';
import { ELIDE_MIN, elisionPoint, endsClean } from '../../src/audit/commands/elide.js';
import { InputScanner, type KeyEvent } from '../../src/audit/commands/input-scanner.js';
import {
  CommandReconstructor,
  MAX_LIVE_TERMINALS,
  reconstructCommands,
} from '../../src/audit/commands/reconstruct.js';
import { sftpCommands } from '../../src/audit/commands/sftp.js';
import type { JsonObject } from '../../src/seal/format/json.js';

const SESSION = 'ab'.repeat(16);
const PROMPT = '\x1b[?2004h\x1b[01;32msgtest@vm\x1b[00m:\x1b[01;34m~\x1b[00m$ ';
const ACCEPT = '\r\n\x1b[?2004l\r';

/** Builds a session's records: each call appends one record with the next leaf index. */
function session() {
  const records: OpenedRecord[] = [];
  const push = (type: OpenedRecord['type'], payload: OpenedRecord['payload']) =>
    records.push({
      kind: 'record',
      index: records.length,
      session: SESSION,
      segment: SESSION,
      seq: records.length,
      type,
      final: false,
      timeUs: BigInt(1_764_000_000_000_000 + records.length),
      payload,
    });
  const bytes = (s: string | Uint8Array) =>
    typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'utf8')) : s;
  return {
    records,
    json: (type: OpenedRecord['type'], payload: JsonObject) => push(type, payload),
    shell(cols = 80, rows = 24) {
      push('CHANNEL_OPEN', { channel: 0, type: 'session' });
      push('PTY_REQ', { channel: 0, term: 'xterm', cols, rows, width: 0, height: 0 });
      push('SHELL', { channel: 0 });
    },
    in: (s: string | Uint8Array) => push('DATA_IN', { channel: 0, data: bytes(s) }),
    out: (s: string | Uint8Array) => push('DATA_OUT', { channel: 0, data: bytes(s) }),
    /** Types `line` one key at a time with the echo, as a user at a prompt does. */
    type(line: string) {
      for (const ch of line) {
        push('DATA_IN', { channel: 0, data: bytes(ch) });
        push('DATA_OUT', { channel: 0, data: bytes(ch) });
      }
    },
    texts: () => reconstructCommands(records).map((c) => c.text),
  };
}

function keys(scanner: InputScanner, ...chunks: string[]): KeyEvent['kind'][] {
  return chunks.flatMap((c) => [...scanner.scan(Buffer.from(c, 'latin1'))].map((k) => k.kind));
}

describe('InputScanner', () => {
  it('an arrow key split across records is one edit, not typing', () => {
    assert.deepEqual(keys(new InputScanner(), 'a\x1b', '[', 'Db'), ['text', 'edit', 'text']);
  });
  it('SS3 arrows, Alt-x and a CSI with parameters are edits', () => {
    assert.deepEqual(keys(new InputScanner(), '\x1bOA\x1bx\x1b[1;5C'), ['edit', 'edit', 'edit']);
  });
  it('CR and CRLF are one Enter each; a lone LF is an Enter; Ctrl-C interrupts', () => {
    assert.deepEqual(keys(new InputScanner(), '\r\n\r\x03\n'), ['enter', 'enter', 'interrupt', 'enter']);
  });
  it('CRs inside a bracketed paste are text, not Enters', () => {
    const s = new InputScanner();
    assert.deepEqual(keys(s, '\x1b[200~a\rb\x1b[201~\r'), [
      'paste-start',
      'text',
      'text',
      'text',
      'paste-end',
      'enter',
    ]);
    assert.equal(s.inPaste, false);
  });
});

describe('elision of bulk output', () => {
  const lines = (n: number, line: string) => Buffer.from(line.repeat(n), 'latin1');
  it('plain and coloured text: all but the last lines may be skipped', () => {
    const bytes = lines(2000, '\x1b[01;34mdir\x1b[0m file.txt\r\n');
    const cut = elisionPoint(bytes, 25);
    assert.ok(cut > 0 && cut < bytes.length);
    assert.equal(bytes.subarray(cut).toString('latin1').split('\n').length - 1, 25);
  });
  it('cursor addressing, modes or a short chunk: nothing is skipped', () => {
    assert.equal(elisionPoint(lines(2000, '\x1b[2;1Hrow\r\n'), 25), 0);
    assert.equal(elisionPoint(lines(2000, 'x\x1b[?1049h\r\n'), 25), 0);
    assert.equal(elisionPoint(lines(10, 'short\r\n'), 5), 0);
    assert.ok(ELIDE_MIN > 10 * 7);
  });
  it('a chunk that ends inside an escape or UTF-8 sequence is not clean', () => {
    assert.equal(endsClean(Buffer.from('abc\r\n')), true);
    assert.equal(endsClean(Buffer.from('abc\x1b[01;3', 'latin1')), false);
    assert.equal(endsClean(Buffer.from('abc\x1b[01;34m', 'latin1')), true);
    assert.equal(endsClean(Buffer.from([0x61, 0xc3])), false);
    assert.equal(endsClean(Buffer.from('\x1b]0;' + 'x'.repeat(300), 'latin1')), false);
  });
  it('a command after megabytes of output is read the same', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.type('cat big.log');
    s.in('\r');
    s.out(ACCEPT);
    const body = lines(20_000, '2026-12-02T15:18:00Z \x1b[32mINFO\x1b[0m request ok\r\n');
    for (let off = 0; off < body.length; off += 32 * 1024) s.out(body.subarray(off, off + 32 * 1024));
    s.out(PROMPT);
    s.type('echo after');
    s.in('\r');
    s.out(`${ACCEPT}after\r\n${PROMPT}`);
    const commands = reconstructCommands(s.records);
    assert.deepEqual(
      commands.map((c) => [c.text, c.confident]),
      [
        ['cat big.log', true],
        ['echo after', true],
      ],
    );
  });
});

describe('sftpCommands', () => {
  const cases: [JsonObject, string[]][] = [
    [{ channel: 0, op: 'open', id: 1, path: '/etc/x', flags: ['write', 'creat', 'trunc'] }, ['put /etc/x']],
    [{ channel: 0, op: 'open', id: 1, path: '/etc/x', flags: ['read'] }, ['get /etc/x']],
    [{ channel: 0, op: 'rename', id: 2, path: 'a', new_path: 'b' }, ['rename a b']],
    [{ channel: 0, op: 'posix-rename@openssh.com', id: 2, path: 'a', new_path: 'b' }, ['rename a b']],
    [{ channel: 0, op: 'remove', id: 3, path: '/tmp/f' }, ['rm /tmp/f']],
    [
      { channel: 0, op: 'setstat', id: 4, path: '/tmp/f', attrs: { permissions: '777' } },
      ['chmod 777 /tmp/f'],
    ],
    [{ channel: 0, op: 'symlink', id: 5, path: 'link', target: '/etc/shadow' }, ['ln -s /etc/shadow link']],
    [{ channel: 0, op: 'open', id: 1, path: '/etc/x', flags: ['write'], result: 'ok' }, []],
    [{ channel: 0, op: 'stat', id: 6, path: '/' }, []],
    [{ channel: 0, op: 'unknown-99', id: 7 }, ['unknown-99']],
  ];
  for (const [op, want] of cases) {
    it(`${JSON.stringify(op)} -> ${JSON.stringify(want)}`, () => assert.deepEqual(sftpCommands(op), want));
  }
});

describe('CommandReconstructor', () => {
  it('exec: the EXEC command, at its record, confident', () => {
    const s = session();
    s.json('CHANNEL_OPEN', { channel: 0, type: 'session' });
    s.json('EXEC', { channel: 0, command: 'kubectl delete pod x' });
    const [c, ...rest] = reconstructCommands(s.records);
    assert.equal(rest.length, 0);
    assert.deepEqual(
      { ...c, timeUs: undefined },
      {
        session: SESSION,
        channel: 0,
        index: 1,
        timeUs: undefined,
        derivation: 'exec',
        text: 'kubectl delete pod x',
        confident: true,
      },
    );
  });

  it('typing at a coloured prompt: the command without the prompt, at the Enter record', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.type('echo hello');
    s.in('\r');
    const enter = s.records.length - 1;
    s.out(`${ACCEPT}hello\r\n${PROMPT}`);
    const commands = reconstructCommands(s.records);
    assert.deepEqual(
      commands.map((c) => [c.text, c.index, c.confident]),
      [['echo hello', enter, true]],
    );
  });

  it('a UTF-8 character split across two output records is read whole', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    const e = Buffer.from('é', 'utf8');
    s.in('echo h\u00e9');
    s.out(Buffer.concat([Buffer.from('echo h'), e.subarray(0, 1)]));
    s.out(e.subarray(1));
    s.in('\r');
    s.out(`${ACCEPT}h\u00e9\r\n${PROMPT}`);
    assert.deepEqual(s.texts(), ['echo h\u00e9']);
  });

  it('a password typed at a prompt that does not echo gives no command and never appears', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.type('sudo true');
    s.in('\r');
    s.out(`${ACCEPT}[sudo] password for sgtest: `);
    s.in('hunter2-secret');
    s.in('\r');
    s.out(`\r\n${PROMPT}`);
    const commands = reconstructCommands(s.records);
    assert.deepEqual(
      commands.map((c) => c.text),
      ['sudo true'],
    );
    assert.ok(
      !JSON.stringify(commands, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes(
        'hunter2',
      ),
    );
  });

  it('a bracketed paste of three lines: three commands at the one Enter (bytes as bash 5.2 sent them)', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.in('\x1b[200~echo one\recho two\recho three\r\x1b[201~');
    s.out('\x1b[7mecho one\x1b[27m\r\n\r\x1b[7mecho two\x1b[27m\r\n\r\x1b[7mecho three\x1b[27m\r\n\r');
    s.in('\r');
    s.out(
      `\x1bM\x1bM\x1bM\r${PROMPT.slice(8)}echo one\r\n\recho two\r\n\recho three\r\n\r\x1bM${ACCEPT}one\r\ntwo\r\nthree\r\n${PROMPT}\x1b[K`,
    );
    const commands = reconstructCommands(s.records);
    assert.deepEqual(
      commands.map((c) => c.text),
      ['echo one', 'echo two', 'echo three'],
    );
    assert.equal(new Set(commands.map((c) => c.index)).size, 1);
  });

  it('a line longer than the terminal is one command', () => {
    const s = session();
    s.shell(40, 10);
    s.out(PROMPT);
    const line = `echo ${'x'.repeat(70)} end`;
    s.type(line);
    s.in('\r');
    s.out(`${ACCEPT}${PROMPT}`);
    assert.deepEqual(s.texts(), [line]);
  });

  it('Ctrl-C discards the line; keys on the alternate screen are not commands', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.type('echo half');
    s.in('\x03');
    s.out(`^C\r\n${PROMPT}`);
    s.type('vi f');
    s.in('\r');
    s.out(`${ACCEPT}\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n`);
    s.in('iabc\x1b:q!\r');
    s.out('\x1b[?1049l');
    s.out(PROMPT);
    s.type('ls');
    s.in('\r');
    s.out(`${ACCEPT}${PROMPT}`);
    assert.deepEqual(s.texts(), ['vi f', 'ls']);
  });

  it('plain typing that the screen does not show is not confident', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    for (const ch of 'rm -rf x') s.in(ch);
    s.out('ls'); // the target showed something else than was typed
    s.in('\r');
    s.out(`${ACCEPT}${PROMPT}`);
    const [c] = reconstructCommands(s.records);
    assert.equal(c?.text, 'ls');
    assert.equal(c?.confident, false);
    assert.match(c?.note ?? '', /other text than was typed/);
  });

  it('is incremental: a terminal command comes out with the record that echoes its Enter', () => {
    const s = session();
    s.shell();
    s.out(PROMPT);
    s.type('id');
    s.in('\r');
    const r = new CommandReconstructor();
    for (const rec of s.records) assert.deepEqual(r.push(rec), []);
    s.out(ACCEPT);
    const last = s.records.at(-1)!;
    assert.deepEqual(
      r.push(last).map((c) => c.text),
      ['id'],
    );
    assert.deepEqual(r.finish(), []);
  });

  it('SFTP: request records are commands, replies are not', () => {
    const s = session();
    s.json('CHANNEL_OPEN', { channel: 0, type: 'session' });
    s.json('SUBSYSTEM', { channel: 0, name: 'sftp' });
    s.json('SFTP_OP', { channel: 0, op: 'open', id: 1, path: '/etc/x', flags: ['write', 'creat'] });
    s.json('SFTP_OP', { channel: 0, op: 'open', id: 1, path: '/etc/x', result: 'ok', handle: '00' });
    const commands = reconstructCommands(s.records);
    assert.deepEqual(
      commands.map((c) => [c.derivation, c.text, c.index]),
      [['sftp', 'put /etc/x', 2]],
    );
  });

  describe('hostile recordings', () => {
    it('a prompt that hides the cursor or switches to the alternate screen cannot hide commands', () => {
      for (const mode of ['\x1b[?25l', '\x1b[?1049h']) {
        const s = session();
        s.shell();
        const prompt = `${mode}$ `;
        s.out(prompt);
        s.type('rm -rf /data');
        s.in('\r');
        s.out(`\r\n${prompt}`);
        s.type('kubectl delete ns prod');
        s.in('\r');
        s.out(`\r\n${prompt}`);
        const commands = reconstructCommands(s.records);
        assert.deepEqual(
          commands.map((c) => [c.text, c.confident]),
          [
            ['rm -rf /data', false],
            ['kubectl delete ns prod', false],
          ],
          JSON.stringify(mode),
        );
        assert.match(commands[0]!.note ?? '', /full-screen mode that no command had started/);
      }
    });

    it('a password typed ahead of its prompt does not shift later commands to the wrong Enter', () => {
      const s = session();
      s.shell();
      s.out(PROMPT);
      s.type('sudo ls');
      s.in('\r');
      s.in('hunter2-secret\r'); // typed before sudo asked
      s.out(`${ACCEPT}[sudo] password for sgtest: `);
      s.out(`\r\nfile\r\n${PROMPT}`);
      s.type('echo hi');
      s.in('\r');
      const echoEnter = s.records.length - 1;
      s.out(`${ACCEPT}hi\r\n${PROMPT}`);
      const commands = reconstructCommands(s.records);
      assert.deepEqual(
        commands.map((c) => c.text),
        ['sudo ls', 'echo hi'],
      );
      assert.equal(commands[1]!.index, echoEnter);
      assert.ok(
        !JSON.stringify(commands, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes(
          'hunter2',
        ),
      );
    });

    it(
      'a REP of two billion characters and an absurd PTY size do not stall or break it',
      { timeout: 30_000 },
      () => {
        const s = session();
        s.json('CHANNEL_OPEN', { channel: 0, type: 'session' });
        s.json('PTY_REQ', {
          channel: 0,
          term: 'xterm',
          cols: 4294967295,
          rows: 4294967295,
          width: 0,
          height: 0,
        });
        s.json('SHELL', { channel: 0 });
        for (let i = 0; i < 20; i++) s.out('a\x1b[2147483647b');
        s.json('WINDOW_CHANGE', { channel: 0, cols: 1e9, rows: -5, width: 0, height: 0 });
        s.out(`\r\n${PROMPT}`);
        s.type('id');
        s.in('\r');
        s.out(`${ACCEPT}${PROMPT}`);
        assert.deepEqual(s.texts(), ['id']);
      },
    );

    it(`more than ${MAX_LIVE_TERMINALS} open terminals: the oldest is ended, and its channel says so`, () => {
      const r = new CommandReconstructor();
      const out: string[] = [];
      for (let n = 0; n <= MAX_LIVE_TERMINALS; n++) {
        const id = n.toString(16).padStart(32, '0');
        const rec = (type: OpenedRecord['type'], payload: OpenedRecord['payload']): OpenedRecord => ({
          kind: 'record',
          index: n,
          session: id,
          segment: id,
          seq: 0,
          type,
          final: false,
          timeUs: 0n,
          payload,
        });
        for (const c of r.push(
          rec('PTY_REQ', { channel: 0, term: 'xterm', cols: 80, rows: 24, width: 0, height: 0 }),
        ))
          out.push(c.session);
        for (const c of r.push(rec('SHELL', { channel: 0 })))
          out.push(`${c.session} ${c.confident} ${c.text}`);
      }
      assert.equal(out.length, 1);
      assert.match(out[0]!, /^0{32} false \(commands not reconstructed from here/);
    });
  });
});
