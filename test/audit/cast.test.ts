/**
 * The cast writers and the screen renderer on records made by hand (the pure layer: records in, lines
 * out), for what a live session cannot be made to do on cue: a character split at an exact byte,
 * invalid UTF-8, a clock that steps back, several terminal channels, ten thousand lines in one write.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OpenedRecord } from '../../src/audit/decrypt.js';
import { AsciicastWriter } from '../../src/audit/cast/asciicast.js';
import { pickChannel, TerminalChannels, type TerminalChannel } from '../../src/audit/cast/channel.js';
import { CastError } from '../../src/audit/cast/errors.js';
import { beforeStart, parseStartAt, waitMs } from '../../src/audit/cast/replay-clock.js';
import { ALT_BEGIN, ALT_END, LINES_LOST, ScreenText } from '../../src/audit/cast/screen-text.js';
import { ScriptWriter } from '../../src/audit/cast/scriptreplay.js';
import { Osc52Filter } from '../../src/audit/cast/osc52-filter.js';
import { terminalEvent, type TermEvent } from '../../src/audit/cast/terminal-events.js';
import type { RecordTypeName } from '../../src/seal/format/types.js';

const SESSION = 'ab'.repeat(16);
const T0 = 1_764_000_000_000_000n;
let index = 0;

function rec(type: RecordTypeName, ms: number, payload: Record<string, unknown>): OpenedRecord {
  return {
    kind: 'record',
    index: index++,
    session: SESSION,
    segment: 'cd'.repeat(16),
    seq: index,
    type,
    final: false,
    timeUs: T0 + BigInt(ms) * 1000n,
    payload: payload as OpenedRecord['payload'],
  };
}
const data = (type: 'DATA_OUT' | 'DATA_IN' | 'DATA_ERR', ms: number, bytes: number[] | string, channel = 0) =>
  rec(type, ms, {
    channel,
    data: typeof bytes === 'string' ? new TextEncoder().encode(bytes) : Uint8Array.from(bytes),
  });

function shellRecords(): OpenedRecord[] {
  return [
    rec('SESSION_START', 0, { user: 'ops', target: 'local' }),
    rec('CHANNEL_OPEN', 1, { channel: 0, type: 'session' }),
    rec('PTY_REQ', 2, { channel: 0, term: 'xterm-256color', cols: 100, rows: 30, width: 0, height: 0 }),
    rec('SHELL', 3, { channel: 0 }),
    data('DATA_OUT', 10, [0x63, 0x61, 0x66, 0xc3]), // "caf" and the first byte of "é"
    data('DATA_OUT', 500, [0xa9, 0x0a]),
    data('DATA_IN', 600, 'ls\r'),
    rec('WINDOW_CHANGE', 700, { channel: 0, cols: 120, rows: 40, width: 0, height: 0 }),
    data('DATA_ERR', 650, 'err\n'), // a clock step back: 650 after 700
    data('DATA_OUT', 800, [0x62, 0xff, 0x61]), // invalid UTF-8
    data('DATA_OUT', 900, [0xe2, 0x82]), // ends mid-character
    rec('EXIT_STATUS', 1000, { channel: 0, code: 3 }),
  ];
}

function channelOf(records: readonly OpenedRecord[]): TerminalChannel {
  const channels = new TerminalChannels();
  for (const r of records) channels.add(r);
  return pickChannel(SESSION, channels.list());
}

function events(records: readonly OpenedRecord[], channel = 0): TermEvent[] {
  return records.map((r) => terminalEvent(r, channel)).filter((e): e is TermEvent => e !== undefined);
}

function cast(version: 2 | 3, input: boolean): unknown[][] & { header: Record<string, unknown> } {
  const records = shellRecords();
  const w = new AsciicastWriter(channelOf(records), { version, input });
  const lines = [w.header(), ...events(records).flatMap((e) => w.event(e)), ...w.end()];
  const [head, ...rest] = lines.map((l) => JSON.parse(l) as unknown);
  return Object.assign(rest as unknown[][], { header: head as Record<string, unknown> });
}

describe('asciicast writers', () => {
  it('v2: header from PTY_REQ, times since the start, "é" split across records arrives whole', () => {
    const c = cast(2, false);
    assert.deepEqual(c.header, {
      version: 2,
      width: 100,
      height: 30,
      timestamp: Number(T0 / 1_000_000n),
      title: `sealgate session ${SESSION} channel 0 (ops@local)`,
      env: { TERM: 'xterm-256color' },
    });
    assert.deepEqual(c[0], [0.009, 'o', 'caf']);
    assert.deepEqual(c[1], [0.499, 'o', 'é\n']);
    assert.deepEqual(c[2], [0.699, 'r', '120x40']);
    assert.deepEqual(c[3], [0.699, 'o', 'err\n'], 'a step back in time is no time passing');
    assert.deepEqual(c[4], [0.799, 'o', 'b\ufffda'], 'invalid bytes become U+FFFD');
    assert.deepEqual(c[5], [0.799, 'o', '\ufffd'], 'a tail left at the end becomes U+FFFD');
    assert.equal(c.length, 6, 'no input, no exit event in v2');
  });

  it('v3: term object, intervals since the previous event, input events, the exit status last', () => {
    const c = cast(3, true);
    assert.deepEqual(c.header.term, { cols: 100, rows: 30, type: 'xterm-256color' });
    assert.equal(c.header.version, 3);
    assert.deepEqual(
      c.map((e) => [e[1], e[2]]),
      [
        ['o', 'caf'],
        ['o', 'é\n'],
        ['i', 'ls\r'],
        ['r', '120x40'],
        ['o', 'err\n'],
        ['o', 'b\ufffda'],
        ['o', '\ufffd'],
        ['x', '3'],
      ],
    );
    assert.deepEqual(
      c.map((e) => e[0]),
      [0.009, 0.49, 0.1, 0.1, 0, 0.1, 0, 0.2],
    );
  });

  it('an exec channel without a pty: 80x24, the command in the header', () => {
    const records = [
      rec('CHANNEL_OPEN', 0, { channel: 1, type: 'session' }),
      rec('EXEC', 1, { channel: 1, command: 'uname -a' }),
      data('DATA_OUT', 2, 'Linux\n', 1),
    ];
    const w = new AsciicastWriter(channelOf(records), { version: 2 });
    assert.deepEqual(JSON.parse(w.header()), {
      version: 2,
      width: 80,
      height: 24,
      timestamp: Number(T0 / 1_000_000n),
      command: 'uname -a',
      title: `sealgate session ${SESSION} channel 1`,
    });
  });
});

describe('scriptreplay writer', () => {
  it('classic: raw bytes, `delay bytes` per output, header line first', () => {
    const records = shellRecords();
    const w = new ScriptWriter(channelOf(records), 'classic');
    const chunks = [w.header(), ...events(records).map((e) => w.event(e)), w.end()];
    const timing = chunks.flatMap((c) => c.timing);
    // The resize is not carried, so the output after it waits from the output before it.
    assert.deepEqual(timing, ['0.009000 4', '0.490000 2', '0.150000 4', '0.150000 3', '0.100000 2']);
    const ts = Buffer.concat(chunks.flatMap((c) => c.typescript));
    assert.match(
      ts.toString('latin1'),
      /^Script started on 2025-11-24 \d\d:\d\d:\d\d\+00:00 \[TERM="xterm-256color" /,
    );
    const body = ts.subarray(ts.indexOf(0x0a) + 1);
    assert.deepEqual([...body.subarray(0, 6)], [0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a], 'bytes as they are');
    assert.match(ts.toString('latin1'), /\nScript done on .* \[COMMAND_EXIT_CODE="3"\]\n$/);
  });

  it('advanced: O, I and S lines, delays since the previous line of any kind', () => {
    const records = shellRecords();
    const w = new ScriptWriter(channelOf(records), 'advanced');
    const timing = [w.header(), ...events(records).map((e) => w.event(e)), w.end()].flatMap((c) => c.timing);
    assert.deepEqual(timing.slice(4), [
      'O 0.009000 4',
      'O 0.490000 2',
      'I 0.100000 3',
      'S 0.100000 SIGWINCH ROWS=40 COLS=120',
      'O 0.000000 4',
      'O 0.100000 3',
      'O 0.100000 2',
      'H 0.000000 DURATION 0.899000',
      'H 0.000000 EXIT_CODE 3',
    ]);
    assert.equal(timing[0]?.startsWith('H 0.000000 START_TIME 2025-11-24 '), true);
  });
});

describe('choosing the terminal channel', () => {
  const two = [
    rec('CHANNEL_OPEN', 0, { channel: 0, type: 'session' }),
    rec('PTY_REQ', 1, { channel: 0, term: 'xterm', cols: 90, rows: 20 }),
    rec('SHELL', 2, { channel: 0 }),
    rec('CHANNEL_OPEN', 3, { channel: 2, type: 'session' }),
    rec('SUBSYSTEM', 4, { channel: 2, name: 'sftp' }),
    rec('CHANNEL_OPEN', 5, { channel: 3, type: 'session' }),
    rec('EXEC', 6, { channel: 3, command: 'id' }),
  ];
  const list = () => {
    const c = new TerminalChannels();
    for (const r of two) c.add(r);
    return c.list();
  };

  it('several: refused, each listed; --channel picks one; sftp is not a terminal', () => {
    assert.throws(
      () => pickChannel(SESSION, list()),
      (e: CastError) =>
        e.code === 'CHANNEL_AMBIGUOUS' &&
        e.message.includes('channel 0: shell, pty 90x20 xterm') &&
        e.message.includes('channel 3: exec "id", no pty') &&
        !e.message.includes('channel 2'),
    );
    assert.equal(pickChannel(SESSION, list(), 3).command, 'id');
    assert.throws(
      () => pickChannel(SESSION, list(), 2),
      (e: CastError) => e.code === 'CHANNEL_NOT_FOUND',
    );
    assert.throws(
      () => pickChannel(SESSION, []),
      (e: CastError) => e.code === 'NO_TERMINAL_CHANNEL',
    );
  });
});

describe('screen text (xterm headless)', () => {
  const enc = (s: string) => new TextEncoder().encode(s);

  it('control sequences rendered, wrapped lines joined, a full-screen program framed in place', async () => {
    const s = new ScreenText(20, 5);
    const out: string[] = [];
    out.push(...(await s.write(enc('$ echo \x1b[1mhi\x1b[0m\r\nhi\r\n$ abc\x08\x08XY\r\n'))));
    out.push(...(await s.write(enc(`$ ${'x'.repeat(45)}\r\n$ vim\r\n\x1b[?1049h\x1b[H\x1b[2Jin vim\r\n~`))));
    out.push(...(await s.write(enc('\x1b[?1049l$ done\r\n$ '))));
    out.push(...(await s.end()));
    assert.deepEqual(out, [
      '$ echo hi',
      'hi',
      '$ aXY',
      `$ ${'x'.repeat(45)}`,
      '$ vim',
      ALT_BEGIN,
      'in vim',
      '~',
      ALT_END,
      '$ done',
      '$ ',
    ]);
  });

  it('ten thousand lines in one write: all of them, in order, none lost', async () => {
    const s = new ScreenText(80, 24);
    const text = Array.from({ length: 10_000 }, (_, i) => `line ${i}`).join('\r\n');
    const out = [...(await s.write(enc(text))), ...(await s.end())];
    assert.equal(out.length, 10_000);
    assert.ok(!out.includes(LINES_LOST));
    assert.equal(out[9_999], 'line 9999');
    assert.ok(out.every((l, i) => l === `line ${i}`));
  });

  it('an alternate-screen switch cut between two records is still seen', async () => {
    const s = new ScreenText(20, 5);
    const out: string[] = [];
    for (const part of ['$ less f\r\n\x1b[?10', '49h\x1b[Hpage one', '\x1b[?1', '049l$ ok\r\n']) {
      out.push(...(await s.write(enc(part))));
    }
    out.push(...(await s.end()));
    assert.deepEqual(out, ['$ less f', ALT_BEGIN, 'page one', ALT_END, '$ ok']);
  });

  it('a program still on the alternate screen at the end gives its screen', async () => {
    const s = new ScreenText(20, 5);
    const out = [...(await s.write(enc('$ top\r\n\x1b[?1049h\x1b[Hload 1.0'))), ...(await s.end())];
    assert.deepEqual(out, ['$ top', ALT_BEGIN, 'load 1.0', ALT_END]);
  });
});

describe('replay clock', () => {
  it('speed and idle limit; --at as an index, seconds or a time', () => {
    assert.equal(waitMs(0n, 2_000_000n, { speed: 2 }), 1000);
    assert.equal(waitMs(0n, 60_000_000n, { speed: 1, idleLimit: 1.5 }), 1500);
    assert.equal(waitMs(5n, 1n, { speed: 1 }), 0);
    assert.deepEqual(parseStartAt('42', T0), { index: 42 });
    assert.deepEqual(parseStartAt('1.5s', T0), { timeUs: T0 + 1_500_000n });
    assert.deepEqual(parseStartAt('2025-11-24T16:00:00Z', T0), { timeUs: 1_764_000_000_000_000n });
    assert.equal(parseStartAt('soon', T0), undefined);
    const e = events([data('DATA_OUT', 10, 'x')])[0]!;
    assert.equal(beforeStart(e, { index: e.index + 1 }), true);
    assert.equal(beforeStart(e, { index: e.index }), false);
    assert.equal(beforeStart(e, { timeUs: T0 }), false);
  });
});

describe('Osc52Filter (replay: recorded output must not write the auditor clipboard)', () => {
  const run = (chunks: string[]) => {
    const f = new Osc52Filter();
    const out = chunks.map((c) => Buffer.from(f.push(Buffer.from(c, 'latin1'))).toString('latin1')).join('');
    return { out: out + Buffer.from(f.end()).toString('latin1'), removed: f.removed };
  };
  it('drops OSC 52 ended by BEL or ST, split anywhere, and nothing else', () => {
    assert.deepEqual(run(['a\x1b]52;c;ZXZpbA==\x07b']), { out: 'ab', removed: 1 });
    assert.deepEqual(run(['a\x1b', ']5', '2;c;ZXZp', 'bA==\x1b', '\\b']), { out: 'ab', removed: 1 });
    assert.deepEqual(run(['\x1b]0;title\x07\x1b[31mred\x1b]5x']), {
      out: '\x1b]0;title\x07\x1b[31mred\x1b]5x',
      removed: 0,
    });
    assert.deepEqual(run(['x\x1b\x1b]52;;\x07y']), { out: 'x\x1by', removed: 1 });
    assert.deepEqual(run(['tail\x1b]5']), { out: 'tail\x1b]5', removed: 0 });
  });
});
