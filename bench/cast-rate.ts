/**
 * Cast rate: how fast the pure cast layer turns a terminal channel's output into an asciicast v2 file
 * and into screen text, on synthetic shell-like output (lines of text with colour sequences, in 4 KiB
 * records). Baselines: the asciicast writer against reading the same bytes as UTF-8 (TextDecoder,
 * stream mode); screen text against the headless xterm parsing the same output with nothing read off
 * it. No decryption, no I/O: decrypt is measured by seal-rate / verify-rate.
 *
 *     npx tsc -p tsconfig.json && node dist/bench/cast-rate.js [--mb N] [--reps N]
 */
import xterm from '@xterm/headless';
import { AsciicastWriter } from '../src/audit/cast/asciicast.js';
import type { TerminalChannel } from '../src/audit/cast/channel.js';
import { ScreenText } from '../src/audit/cast/screen-text.js';
import type { TermEvent } from '../src/audit/cast/terminal-events.js';

const { Terminal } = xterm;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const MB = arg('mb', 20);
const REPS = arg('reps', 3);
const RECORD = 4096;

/** One continuous output stream (as a shell's `ls --color` would give), cut into records. */
function records(): TermEvent[] {
  const line = (i: number) => `\x1b[32m${i}\x1b[0m drwxr-xr-x 2 ops ops 4096 Jan  5 10:00 dir-${i} café\r\n`;
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < MB * 1024 * 1024; i++) {
    parts.push(line(i));
    size += parts[parts.length - 1]!.length;
  }
  const stream = new TextEncoder().encode(parts.join(''));
  const out: TermEvent[] = [];
  for (let at = 0, i = 0; at < stream.length; at += RECORD, i++) {
    out.push({
      code: 'o',
      stream: 'out',
      index: i,
      timeUs: BigInt(i) * 1000n,
      data: stream.subarray(at, at + RECORD),
    });
  }
  return out;
}

const channel: TerminalChannel = {
  session: '00'.repeat(16),
  channel: 0,
  kind: 'shell',
  pty: { term: 'xterm', cols: 120, rows: 40 },
  startUs: 0n,
};

async function time(run: () => Promise<void> | void): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    await run();
    best = Math.min(best, performance.now() - t);
  }
  return best / 1000;
}

async function main(): Promise<void> {
  const events = records();
  const bytes = events.length * RECORD;
  const mbps = (s: number) => (bytes / 1024 / 1024 / s).toFixed(1);
  const base = await time(() => {
    const d = new TextDecoder();
    for (const e of events) if (e.code === 'o') d.decode(e.data, { stream: true });
  });
  const v2 = await time(() => {
    const w = new AsciicastWriter(channel, { version: 2 });
    let n = 0;
    for (const e of events) for (const l of w.event(e)) n += l.length;
    if (n === 0) throw new Error('no output');
  });
  const raw = await time(async () => {
    const t = new Terminal({ cols: 120, rows: 40, scrollback: 0, allowProposedApi: true, logLevel: 'off' });
    for (const e of events) if (e.code === 'o') t.write(e.data);
    await new Promise<void>((done) => t.write('', done));
    t.dispose();
  });
  const text = await time(async () => {
    const s = new ScreenText(120, 40);
    let n = 0;
    for (const e of events) if (e.code === 'o') n += (await s.write(e.data)).length;
    n += (await s.end()).length;
    if (n === 0) throw new Error('no lines');
  });
  console.log(`cast rate, ${MB} MiB of output in ${RECORD}-byte records, best of ${REPS}`);
  console.log(`  baseline TextDecoder:   ${mbps(base)} MiB/s`);
  console.log(`  asciicast v2 writer:    ${mbps(v2)} MiB/s (${(base / v2).toFixed(2)} of baseline)`);
  console.log(`  xterm alone (no text):  ${mbps(raw)} MiB/s`);
  console.log(`  screen text:            ${mbps(text)} MiB/s (${(raw / text).toFixed(2)} of xterm alone)`);
}

await main();
