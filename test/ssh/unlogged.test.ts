/**
 * The pure accounting of the unlogged window (unlogged.ts) and the hold reasons it shares with flow.ts:
 * bytes forwarded before their records are durable never exceed the cap, held chunks go in order once
 * fsyncs complete, their sources are paused meanwhile, the log is asked to fsync early, and a store
 * failure reaches every held chunk's owner before anything moves.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { hold, isHeld, release } from '../../src/ssh/flow.js';
import { UnloggedWindow, type Forwarding } from '../../src/ssh/unlogged.js';

/** One group-commit batch: every record appended to it shares its promise, as in the store. */
function batch(): { durable: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const durable = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  durable.catch(() => undefined);
  return { durable, resolve, reject };
}

const settle = () => new Promise((r) => setImmediate(r));

function flowing(): PassThrough {
  const s = new PassThrough();
  s.resume();
  return s;
}

describe('UnloggedWindow', () => {
  it('forwards within the cap, holds and pauses beyond it, and goes on in order once durable', async () => {
    const flushes: number[] = [];
    const w = new UnloggedWindow(100, () => flushes.push(w.pending));
    const a = flowing();
    const sent: string[] = [];
    const b1 = batch();
    const chunk = (name: string, bytes: number, durable = b1.durable): Forwarding => ({
      source: a,
      bytes,
      durable,
      send: () => sent.push(name),
      lost: () => assert.fail('nothing was lost'),
    });
    w.pass(chunk('1', 40));
    w.pass(chunk('2', 40));
    assert.deepEqual(sent, ['1', '2']);
    assert.equal(w.pending, 80);
    assert.deepEqual(flushes, [80], 'at half the cap the log is asked to fsync now');
    assert.equal(a.isPaused(), false);
    const b2 = batch();
    w.pass(chunk('3', 40, b2.durable));
    w.pass(chunk('EOF', 0, b2.durable));
    assert.deepEqual(sent, ['1', '2'], '120 > 100: held, and the EOF behind it');
    assert.equal(w.pending, 80);
    assert.equal(w.held, 2);
    assert.equal(a.isPaused(), true, 'the source is paused while its chunk waits');
    b1.resolve();
    await settle();
    assert.deepEqual(sent, ['1', '2', '3', 'EOF']);
    assert.equal(w.pending, 40);
    assert.equal(a.isPaused(), false);
    b2.resolve();
    await settle();
    assert.equal(w.pending, 0);
  });

  it('counts nothing for a held chunk whose record is durable by the time it leaves', async () => {
    const w = new UnloggedWindow(64, () => undefined);
    const b = batch();
    const src = flowing();
    const sent: number[] = [];
    const f = (n: number): Forwarding => ({
      source: src,
      bytes: 40,
      durable: b.durable,
      send: () => sent.push(n),
      lost: () => undefined,
    });
    w.pass(f(1));
    w.pass(f(2)); // same batch: held behind the first
    assert.deepEqual(sent, [1]);
    b.resolve();
    await settle();
    assert.deepEqual(sent, [1, 2]);
    assert.equal(w.pending, 0, 'both records were durable when the second left');
  });

  it('a single chunk passes when nothing is outstanding, even one larger than the cap', () => {
    const w = new UnloggedWindow(10, () => undefined);
    let sent = false;
    w.pass({
      source: flowing(),
      bytes: 50,
      durable: batch().durable,
      send: () => (sent = true),
      lost: () => undefined,
    });
    assert.equal(sent, true);
    assert.equal(w.pending, 50);
  });

  it('holds across sources in arrival order (one window per gate), releasing each source when its chunks leave', async () => {
    const w = new UnloggedWindow(100, () => undefined);
    const [a, b, c] = [flowing(), flowing(), flowing()];
    const b1 = batch();
    const b2 = batch();
    const sent: string[] = [];
    const f = (source: PassThrough, name: string, bytes: number, durable: Promise<void>): Forwarding => ({
      source,
      bytes,
      durable,
      send: () => sent.push(name),
      lost: () => undefined,
    });
    w.pass(f(a, 'a1', 90, b1.durable));
    w.pass(f(b, 'b1', 20, b2.durable));
    w.pass(f(c, 'c1', 5, b2.durable)); // would fit, but must not overtake b1
    assert.deepEqual(sent, ['a1']);
    assert.deepEqual([a.isPaused(), b.isPaused(), c.isPaused()], [false, true, true]);
    b1.resolve();
    await settle();
    assert.deepEqual(sent, ['a1', 'b1', 'c1']);
    assert.deepEqual([a.isPaused(), b.isPaused(), c.isPaused()], [false, false, false]);
  });

  it('asks for an early fsync at half the cap, and again only after an fsync has completed', async () => {
    let flushes = 0;
    const w = new UnloggedWindow(100, () => flushes++);
    const src = flowing();
    const b1 = batch();
    const pass = (durable: Promise<void>) =>
      w.pass({ source: src, bytes: 30, durable, send: () => undefined, lost: () => undefined });
    pass(b1.durable);
    assert.equal(flushes, 0, 'below half the cap: the batch deadline will do');
    pass(b1.durable); // 60: past half
    pass(b1.durable); // 90
    assert.equal(flushes, 1);
    const b2 = batch();
    pass(b2.durable); // held
    pass(b2.durable); // held
    assert.equal(flushes, 1, 'no new request while the fsync asked for has not completed');
    b1.resolve();
    await settle();
    assert.equal(w.pending, 60, 'the held chunks left, and are outstanding now');
    assert.ok(flushes >= 2, 'past half again after the fsync: asked again');
    const asked = flushes;
    b2.resolve();
    await settle();
    assert.equal(w.pending, 0);
    assert.equal(flushes, asked, 'nothing outstanding: nothing asked');
  });

  it('a store failure reaches every held chunk before any moves, and frees the window', async () => {
    const w = new UnloggedWindow(50, () => undefined);
    const src = flowing();
    const b1 = batch();
    const events: string[] = [];
    const failed = new Set<string>();
    const f = (name: string, durable: Promise<void>): Forwarding => ({
      source: src,
      bytes: 40,
      durable,
      send: () => events.push(failed.has(name) ? `dropped ${name}` : `sent ${name}`),
      lost: (err) => {
        failed.add(name);
        events.push(`lost ${name}: ${err.message}`);
      },
    });
    w.pass(f('x', b1.durable));
    w.pass(f('y', b1.durable));
    assert.deepEqual(events, ['sent x']);
    b1.reject(new Error('ENOSPC'));
    await settle();
    assert.deepEqual(events, ['sent x', 'lost y: ENOSPC', 'dropped y']);
    assert.equal(w.pending, 0);
    assert.equal(src.isPaused(), false);
  });

  it('never has more than the cap outstanding, whatever the chunk sizes and fsync timing', async () => {
    // A deterministic pseudo-random schedule: chunks of 1..32 KiB from 4 sources, batches of 1..8 records
    // made durable at random moments, in order (as the store does).
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n) + 0;
    const cap = 256 * 1024;
    const w = new UnloggedWindow(cap, () => undefined);
    const sources = [flowing(), flowing(), flowing(), flowing()];
    const open: ReturnType<typeof batch>[] = [];
    let current = batch();
    let inBatch = 0;
    let maxPending = 0;
    const sentBy = sources.map(() => [] as number[]);
    const queuedBy = sources.map(() => [] as number[]);
    for (let i = 0; i < 2000; i++) {
      const s = rand(sources.length);
      if (!sources[s]!.isPaused()) {
        const bytes = 1 + rand(32 * 1024);
        queuedBy[s]!.push(i);
        w.pass({
          source: sources[s]!,
          bytes,
          durable: current.durable,
          send: () => sentBy[s]!.push(i),
          lost: () => assert.fail('no failure here'),
        });
        maxPending = Math.max(maxPending, w.pending);
        if (++inBatch >= 1 + rand(8)) {
          open.push(current);
          current = batch();
          inBatch = 0;
        }
      }
      if (open.length > 0 && rand(3) === 0) {
        open.shift()!.resolve();
        await settle();
        maxPending = Math.max(maxPending, w.pending);
      }
    }
    open.push(current);
    for (const b of open) b.resolve();
    await settle();
    assert.ok(maxPending <= cap, `at most ${cap} outstanding, saw ${maxPending}`);
    assert.ok(maxPending > cap / 2, 'the schedule did fill the window');
    assert.equal(w.pending, 0);
    assert.equal(w.held, 0);
    sentBy.forEach((sent, s) => assert.deepEqual(sent, queuedBy[s], `source ${s}: all sent, in order`));
  });
});

describe('hold reasons (flow.ts)', () => {
  it('a source paused for two reasons resumes only when both are released', () => {
    const s = flowing();
    hold(s, 'sink');
    hold(s, 'unlogged');
    hold(s, 'unlogged');
    assert.equal(s.isPaused(), true);
    release(s, 'sink');
    assert.equal(s.isPaused(), true, 'the window still holds it: a drained sink must not resume it');
    assert.equal(isHeld(s, 'unlogged'), true);
    release(s, 'unlogged');
    assert.equal(s.isPaused(), false);
    release(s, 'unlogged'); // not held: no-op
    assert.equal(s.isPaused(), false);
  });
});
