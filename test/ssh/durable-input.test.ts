/**
 * The pure pieces of the recording rules on the proxy: DurableInput (input passes in order, only once
 * durable, never after a failure, with the client paused beyond its limit) and upstreamFailure (which
 * upstream failures raise an ALERT).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Target } from '../../src/config/schema.js';
import { DurableInput } from '../../src/ssh/durable-input.js';
import { GateError } from '../../src/ssh/errors.js';
import { upstreamFailure } from '../../src/ssh/upstream.js';

/** A promise with its resolve function, to settle "the fsync" by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('DurableInput (forward_input: when-durable)', () => {
  it('passes each chunk only once durable, in order, even when later ones are durable first', async () => {
    const input = new DurableInput(new PassThrough(), 16);
    const passed: string[] = [];
    const first = deferred<boolean>();
    const second = deferred<boolean>();
    input.enqueue(first.promise, () => passed.push('a'));
    input.enqueue(second.promise, () => passed.push('b'));
    input.enqueue(Promise.resolve(true), () => passed.push('EOF'));
    second.resolve(true);
    await settle();
    assert.deepEqual(passed, [], 'nothing passes before the first chunk is durable');
    first.resolve(true);
    await settle();
    assert.deepEqual(passed, ['a', 'b', 'EOF']);
  });

  it('passes nothing whose record failed (fail closed), and goes on after a throwing write', async () => {
    const input = new DurableInput(new PassThrough(), 16);
    const passed: string[] = [];
    input.enqueue(Promise.resolve(true), () => {
      throw new Error('write after close');
    });
    input.enqueue(Promise.resolve(false), () => passed.push('after the failure'));
    input.enqueue(Promise.resolve(true), () => passed.push('later'));
    await settle();
    assert.deepEqual(passed, ['later']);
  });

  it('pauses the client beyond the limit and resumes it once the queue drains below it', async () => {
    const source = new PassThrough();
    source.resume();
    const input = new DurableInput(source, 3);
    const fsyncs = [deferred<boolean>(), deferred<boolean>(), deferred<boolean>()];
    input.enqueue(fsyncs[0]!.promise, () => undefined);
    input.enqueue(fsyncs[1]!.promise, () => undefined);
    assert.equal(source.isPaused(), false);
    input.enqueue(fsyncs[2]!.promise, () => undefined);
    assert.equal(source.isPaused(), true, 'three chunks wait: the client is paused');
    fsyncs[0]!.resolve(true);
    await settle();
    assert.equal(source.isPaused(), false, 'two wait: the client goes on');
    fsyncs[1]!.resolve(true);
    fsyncs[2]!.resolve(true);
    await settle();
    assert.equal(source.isPaused(), false);
  });
});

describe('upstreamFailure', () => {
  const target: Target = {
    name: 'web1',
    host: '10.0.0.5',
    port: 22,
    known_hosts: '/dev/null',
    on_record_failure: 'fail-closed',
    forward_input: 'when-sealed',
    allow_port_forwarding: false,
  };

  it('host key mismatches are critical ALERTs, a target with no allowed algorithm a warning', () => {
    for (const [code, severity] of [
      ['HOST_KEY_MISMATCH', 'critical'],
      ['HOST_KEY_UNPINNED', 'critical'],
      ['NO_COMMON_ALGORITHM', 'warning'],
    ] as const) {
      const f = upstreamFailure(new GateError(code, 'x'), target);
      assert.deepEqual(f.alert, { rule: `upstream.${code.toLowerCase()}`, severity });
      assert.equal(f.error.code, code);
    }
  });

  it('an unreachable target raises no ALERT; an unknown error becomes UPSTREAM_FAILED naming the target', () => {
    assert.equal(upstreamFailure(new GateError('TARGET_UNREACHABLE', 'down'), target).alert, undefined);
    const f = upstreamFailure(new Error('socket hang up'), target);
    assert.equal(f.error.code, 'UPSTREAM_FAILED');
    assert.match(f.error.message, /web1.*socket hang up/);
    assert.equal(f.alert, undefined);
  });
});
