/**
 * One client connection's recording, with the fail-closed rule in one place.
 *
 * `record()` seals an event and says whether the event may go on: the bridge records first and forwards
 * only on `true`, so no byte passes unrecorded. When sealing throws (the log failed: disk full, I/O error,
 * token gone) or the log reports a failure on its own (`fail()`):
 * - fail-closed (the default): `record()` answers false from then on and `onFatal` ends the connection at
 *   once, so nothing more passes;
 * - fail-open (a per-target choice): the failure is logged loudly, once, and the session goes on
 *   unrecorded.
 *
 * `pass()` forwards a recorded chunk through the gate's unlogged window (unlogged.ts): bytes go on only
 * while the bytes forwarded with records not yet durable stay within `recording.max_unlogged_bytes`.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'winston';
import type { Target } from '../config/schema.js';
import type { Payload } from '../seal/format/payload.js';
import type { RecordType } from '../seal/format/types.js';
import type { SessionRecorder } from '../seal/session-recorder.js';
import type { UnloggedWindow } from './unlogged.js';

export type FailureMode = Target['on_record_failure'];
export type InputForwarding = Target['forward_input'];

export class SessionRecording {
  #recorder: SessionRecorder | undefined;
  #mode: FailureMode = 'fail-closed';
  #inputForwarding: InputForwarding = 'when-sealed';
  #failure: Error | undefined;
  #ended = false;
  /** When the last record sealed here is durable (records become durable in order). */
  #lastDurable: Promise<void> | undefined;

  constructor(
    recorder: SessionRecorder | undefined,
    private readonly logger: Logger,
    private readonly context: Record<string, unknown>,
    /** Called once when a fail-closed session must end now. */
    private readonly onFatal: (err: Error) => void,
    /** The gate's cap on forwarded bytes not yet durable; none in unit tests that need none. */
    private readonly unlogged?: UnloggedWindow,
  ) {
    this.#recorder = recorder;
  }

  /** The routed target's choice; fail-closed until a target is known. */
  setMode(mode: FailureMode): void {
    this.#mode = mode;
  }

  get mode(): FailureMode {
    return this.#mode;
  }

  /** The routed target's `forward_input`; `when-sealed` until a target is known. */
  setInputForwarding(when: InputForwarding): void {
    this.#inputForwarding = when;
  }

  get inputForwarding(): InputForwarding {
    return this.#inputForwarding;
  }

  /**
   * Resolves true once every event recorded so far is durable (fsynced; the store is asked to write
   * now), false if the log fails first and the session is failing closed. Used for client input when
   * the target's `forward_input` is `when-durable`.
   */
  whenDurable(): Promise<boolean> {
    const goOn = this.#mode === 'fail-open';
    if (this.#failure || !this.#recorder) return Promise.resolve(goOn);
    return this.#recorder.flush().then(
      () => true,
      (err: unknown) => {
        this.fail(err as Error);
        return goOn;
      },
    );
  }

  /** Seals one event. True: go on (forward it). False: the session is failing closed; forward nothing. */
  record<T extends RecordType>(type: T, value: Payload<T>): boolean {
    if (this.#ended) return false;
    if (this.#failure || !this.#recorder) return this.#mode === 'fail-open';
    try {
      this.#lastDurable = this.#recorder.event(type, value).durable;
      return true;
    } catch (err) {
      this.fail(err as Error);
      return this.#mode === 'fail-open';
    }
  }

  /**
   * Forwards `bytes` from `source` (already recorded: call after `record()` said true) by `send`, now or,
   * when the unlogged window is full, once earlier records are durable; `source` is paused meanwhile.
   * Zero bytes: a marker (EOF) that keeps its place behind held chunks. A chunk held when the session
   * fails closed, or ends, is dropped.
   */
  pass(source: Readable, bytes: number, send: () => void): void {
    const durable = this.#lastDurable;
    // Unrecorded (fail-open after a failure): nothing to wait for.
    if (!this.unlogged || !durable || this.#failure || !this.#recorder) return send();
    this.unlogged.pass({
      source,
      bytes,
      durable,
      send: () => {
        if (this.#ended || (this.#failure && this.#mode === 'fail-closed')) return;
        send();
      },
      lost: (err) => this.fail(err),
    });
  }

  /** The log failed (its onFailure, or a throw here). */
  fail(err: Error): void {
    if (this.#failure || this.#ended) return;
    this.#failure = err;
    if (this.#mode === 'fail-open') {
      this.logger.error('ALERT: recording failed; target is fail-open, so the session continues UNRECORDED', {
        alert: 'recording.failed-open',
        ...this.context,
        error: err.message,
      });
      return;
    }
    this.logger.error('ALERT: recording failed; ending the session (fail-closed)', {
      alert: 'recording.failed',
      ...this.context,
      error: err.message,
    });
    this.onFatal(err);
  }

  /** SESSION_END (FINAL); nothing is recorded or forwarded after it. Safe to call twice, and after a failure. */
  end(reason: string): void {
    this.#ended = true;
    const recorder = this.#recorder;
    this.#recorder = undefined;
    if (!recorder || recorder.ended || this.#failure) return;
    try {
      recorder.end(reason);
    } catch (err) {
      this.logger.error('cannot record the end of a session', {
        ...this.context,
        error: (err as Error).message,
      });
    }
  }
}
