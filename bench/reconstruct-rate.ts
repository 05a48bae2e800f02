/**
 * Command reconstruction rate (issue 11): MB/s of terminal output through the CommandReconstructor,
 * against the floor measured in the same run: the same output bytes written into @xterm/headless alone
 * (what any screen-based reconstruction must at least pay), and, for scale, a plain byte scan.
 *
 *     npx tsc -p tsconfig.json && node dist/bench/reconstruct-rate.js [--size 256M] [--reps 3]
 *
 * The session is synthetic but shaped like a real one (the byte forms are bash 5.2's, as recorded
 * through the gate): a coloured prompt, a command typed one key at a time with its echo, then output.
 * Three output kinds, each its own row: `ls --color`-like lines (SGR colours), plain log lines, and a
 * full-screen program (alternate screen, cursor addressing). MB = 10^6 bytes of DATA_OUT.
 */
import Table from 'cli-table3';
import xterm from '@xterm/headless';
import { CommandReconstructor } from '../src/audit/commands/reconstruct.js';
import type { OpenedRecord } from '../src/audit/decrypt.js';
import { numberOption } from './lib/run.js';

const PROMPT = '\x1b[?2004h\x1b[01;32mops@db1\x1b[00m:\x1b[01;34m~\x1b[00m$ ';
const ACCEPT = '\r\n\x1b[?2004l\r';
const CHUNK = 32 * 1024; // the size of a DATA_OUT record under bulk output (one SSH packet)

type Kind = 'colour' | 'plain' | 'fullscreen';

function outputLines(kind: Kind, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    if (kind === 'colour') {
      parts.push(`drwxr-xr-x  2 ops ops  4096 Dec  2 15:18 \x1b[01;34mdir-${i}\x1b[0m  file-${i}.txt\r\n`);
    } else if (kind === 'plain') {
      parts.push(
        `2026-12-02T15:18:${String(i % 60).padStart(2, '0')}Z INFO request id=${i} status=200 took=3ms\r\n`,
      );
    } else {
      parts.push(`\x1b[${(i % 22) + 2};1H\x1b[K ${i} root 20 0 1354524 131648 S 6.7 0.5 node`);
    }
  }
  return parts.join('');
}

/** One command cycle: prompt, typed command, Enter, output; as records. */
function* session(kind: Kind, totalBytes: number): Generator<OpenedRecord> {
  let index = 0;
  let sent = 0;
  const rec = (type: OpenedRecord['type'], payload: OpenedRecord['payload']): OpenedRecord => ({
    kind: 'record',
    index: index++,
    session: 'ab'.repeat(16),
    segment: 'ab'.repeat(16),
    seq: index,
    type,
    final: false,
    timeUs: BigInt(index),
    payload,
  });
  const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  yield rec('PTY_REQ', { channel: 0, term: 'xterm', cols: 120, rows: 40, width: 0, height: 0 });
  yield rec('SHELL', { channel: 0 });
  const body = enc(outputLines(kind, 2000));
  const enter = kind === 'fullscreen' ? '\x1b[?1049h\x1b[?25l' : '';
  const leave = kind === 'fullscreen' ? '\x1b[?25h\x1b[?1049l' : '';
  while (sent < totalBytes) {
    const prompt = enc(PROMPT);
    yield rec('DATA_OUT', { channel: 0, data: prompt });
    sent += prompt.length;
    for (const ch of 'cat /var/log/app.log') {
      yield rec('DATA_IN', { channel: 0, data: enc(ch) });
      yield rec('DATA_OUT', { channel: 0, data: enc(ch) });
      sent++;
    }
    yield rec('DATA_IN', { channel: 0, data: enc('\r') });
    const head = enc(ACCEPT + enter);
    yield rec('DATA_OUT', { channel: 0, data: head });
    sent += head.length;
    for (let off = 0; off < body.length; off += CHUNK) {
      const data = body.subarray(off, off + CHUNK);
      yield rec('DATA_OUT', { channel: 0, data });
      sent += data.length;
    }
    if (kind === 'fullscreen') yield rec('DATA_IN', { channel: 0, data: enc('q') });
    const tail = enc(leave);
    yield rec('DATA_OUT', { channel: 0, data: tail });
    sent += tail.length;
  }
}

function outBytes(records: readonly OpenedRecord[]): number {
  let n = 0;
  for (const r of records) if (r.type === 'DATA_OUT') n += (r.payload as { data: Uint8Array }).data.length;
  return n;
}

function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const size = numberOption('--size', 64 * 1024 * 1024);
const reps = numberOption('--reps', 3);
const table = new Table({
  head: [
    'output',
    'MB',
    'reconstructor MB/s',
    'xterm alone MB/s',
    'ratio',
    'byte scan MB/s',
    'commands found',
  ],
  style: { head: [], border: [] },
});
for (const kind of ['colour', 'plain', 'fullscreen'] as const) {
  const records = [...session(kind, size)];
  const mb = outBytes(records) / 1e6;
  // One command per cycle: the reconstructor must find every one, elision or not.
  const enters = records.filter(
    (r) => r.type === 'DATA_IN' && (r.payload as { data: Uint8Array }).data[0] === 0x0d,
  ).length;
  const recon: number[] = [];
  const floor: number[] = [];
  const scan: number[] = [];
  let commands = 0;
  for (let r = 0; r < reps; r++) {
    recon.push(
      mb /
        timeIt(() => {
          const c = new CommandReconstructor();
          commands = 0;
          for (const rec of records) commands += c.push(rec).length;
          commands += c.finish().length;
        }),
    );
    floor.push(
      mb /
        timeIt(() => {
          const t = new xterm.Terminal({
            cols: 120,
            rows: 40,
            scrollback: 2000,
            allowProposedApi: true,
            logLevel: 'off',
          });
          const core = (t as unknown as { _core: { writeSync(d: Uint8Array): void } })._core;
          for (const rec of records)
            if (rec.type === 'DATA_OUT') core.writeSync((rec.payload as { data: Uint8Array }).data);
          t.dispose();
        }),
    );
    scan.push(
      mb /
        timeIt(() => {
          let lf = 0;
          for (const rec of records) {
            if (rec.type !== 'DATA_OUT') continue;
            const d = (rec.payload as { data: Uint8Array }).data;
            for (let i = 0; i < d.length; i++) if (d[i] === 0x0a) lf++;
          }
          if (lf < 0) throw new Error('unreachable');
        }),
    );
  }
  const rm = median(recon);
  const fm = median(floor);
  if (commands !== enters) throw new Error(`${kind}: ${commands} commands found, ${enters} were run`);
  table.push([
    kind,
    mb.toFixed(0),
    rm.toFixed(1),
    fm.toFixed(1),
    (rm / fm).toFixed(2),
    median(scan).toFixed(0),
    `${commands} of ${enters}`,
  ]);
}
console.log(`command reconstruction, ${reps} rep(s), median; ratio = reconstructor / xterm alone`);
console.log(table.toString());
