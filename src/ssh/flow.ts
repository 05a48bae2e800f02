/**
 * Flow control across the gate. Each leg already has SSH channel windows (RFC 4254 §5.2); the gate must
 * not become an unbounded buffer between them. So when a sink's buffer is over its high-water mark
 * (`write()` returns false), the source stream is paused until the sink drains. A paused ssh2 channel stops
 * adjusting its window, so the sender on that leg stops too: back-pressure reaches the far end.
 *
 * ssh2 channels buffer at most one window (2 MiB) per direction before `write()` says false, so the gate
 * holds at most a few MiB per channel, whatever the senders do.
 *
 * A source can be paused for more than one reason at once: its sink is full (here), its bytes wait for
 * the disk (durable-input.ts, unlogged.ts). Each reason is a hold; the source resumes when the last one is
 * released, so one reason ending never lets bytes through that another still holds back.
 */
import type { Readable, Writable } from 'node:stream';

const EMPTY = Buffer.alloc(0);

/** Why a source is paused: its sink is full, or its bytes wait for their records to be durable. */
export type HoldReason = 'sink' | 'durable-input' | 'unlogged';

const holds = new WeakMap<Readable, Set<HoldReason>>();

/** Pauses `source` for `why` (a no-op if it is already held for it). */
export function hold(source: Readable, why: HoldReason): void {
  let reasons = holds.get(source);
  if (!reasons) holds.set(source, (reasons = new Set()));
  if (reasons.has(why)) return;
  reasons.add(why);
  if (reasons.size === 1) source.pause();
}

/** Releases the hold for `why`; `source` resumes when nothing else holds it. */
export function release(source: Readable, why: HoldReason): void {
  const reasons = holds.get(source);
  if (!reasons?.delete(why)) return;
  if (reasons.size === 0) source.resume();
}

/** Whether `source` is held for `why`. */
export function isHeld(source: Readable, why: HoldReason): boolean {
  return holds.get(source)?.has(why) ?? false;
}

/** Writes one chunk (no copy) and holds `source` until `sink` drains when the sink is full. */
export function forward(source: Readable, sink: Writable, chunk: Buffer): void {
  if (sink.write(chunk) || isHeld(source, 'sink')) return;
  hold(source, 'sink');
  const resume = () => {
    sink.off('drain', resume);
    sink.off('close', resume);
    release(source, 'sink');
  };
  sink.on('drain', resume);
  sink.on('close', resume);
}

/**
 * Resolves once everything written to `sink` so far has been handed to the SSH layer: a zero-length write
 * queues behind the others, and its callback runs when they are done. Also resolves if the sink closes.
 */
export function flushed(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (sink.destroyed || !sink.writable) {
      resolve();
      return;
    }
    const done = () => {
      sink.off('close', done);
      resolve();
    };
    sink.once('close', done);
    sink.write(EMPTY, done);
  });
}

/** Ends `sink` and resolves when it has finished (or closed, or failed). */
export function ended(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (sink.writableFinished || sink.destroyed) {
      resolve();
      return;
    }
    const done = () => {
      sink.off('finish', done);
      sink.off('close', done);
      sink.off('error', done);
      resolve();
    };
    sink.on('finish', done);
    sink.on('close', done);
    sink.on('error', done);
    sink.end();
  });
}
