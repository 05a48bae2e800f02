/**
 * Flow control across the gate. Each leg already has SSH channel windows (RFC 4254 §5.2); the gate must
 * not become an unbounded buffer between them. So when a sink's buffer is over its high-water mark
 * (`write()` returns false), the source stream is paused until the sink drains. A paused ssh2 channel stops
 * adjusting its window, so the sender on that leg stops too: back-pressure reaches the far end.
 *
 * ssh2 channels buffer at most one window (2 MiB) per direction before `write()` says false, so the gate
 * holds at most a few MiB per channel, whatever the senders do.
 */
import type { Readable, Writable } from 'node:stream';

const EMPTY = Buffer.alloc(0);

/** Writes one chunk (no copy) and pauses `source` until `sink` drains when the sink is full. */
export function forward(source: Readable, sink: Writable, chunk: Buffer): void {
  if (sink.write(chunk) || source.isPaused()) return;
  source.pause();
  const resume = () => {
    sink.off('drain', resume);
    sink.off('close', resume);
    source.resume();
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
