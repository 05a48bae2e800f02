/**
 * Runs (docs/FORMAT.md §3.3, §8 step 7): the writer brackets each run with LOG_START and LOG_STOP, or,
 * when it died, the next run begins with a CRASH_RECOVERY naming it. Between them HEARTBEAT entries
 * come at least every `heartbeat_seconds`, so that a gap in time is visible: no two consecutive
 * entries of a run may be further apart than the heartbeat policy allows, and heartbeats count 1, 2,
 * 3, … within a run.
 *
 * The allowed gap is 2 × heartbeat_seconds + 5 s: one missed beat (a heartbeat timer that fires late
 * under load, or a checkpoint signature on a slow token) is tolerated, two are not; the 5 s absorb
 * fsync and scheduling jitter.
 */
import { SystemType } from '../../seal/format/types.js';
import type { SystemEntry } from '../../seal/format/system-entry.js';
import type { Findings } from './error.js';
import type { SourceMode } from './segments.js';

/** The heartbeat gap verify allows: 2 × the interval + 5 s (docs/FORMAT.md §8). */
export function allowedGapUs(heartbeatSeconds: number): number {
  return Math.round((2 * heartbeatSeconds + 5) * 1e6);
}

type RunState =
  /** Before the first LOG_START of a complete source. */
  | 'none'
  /** A range bundle that begins inside some run. */
  | 'unknown'
  /** After CRASH_RECOVERY, before its LOG_START. */
  | 'recovering'
  | 'open'
  | 'stopped';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export class RunChecks {
  #state: RunState;
  #runId: string | undefined;
  /** The run a CRASH_RECOVERY opened (its LOG_START must carry the same run_id). */
  #pendingRunId: string | undefined;
  #lastTimeUs: number | undefined;
  #lastHeartbeat: number | undefined;
  runs = 0;
  heartbeats = 0;

  constructor(
    private readonly origin: string,
    mode: SourceMode,
    private readonly allowedGap: number,
    private readonly findings: Findings,
    private readonly locate: (index: number) => string,
  ) {
    this.#state = mode === 'complete' ? 'none' : 'unknown';
  }

  /** Whether the last run is still going at the end of the source (no LOG_STOP yet): a live log. */
  get open(): boolean {
    return this.#state === 'open' || this.#state === 'unknown';
  }

  get state(): string {
    return this.#state;
  }

  /** Any timestamped entry inside a run: a header, a record, or a system entry that is not LOG_START or CRASH_RECOVERY. */
  entry(timeUs: number, index: number): void {
    if (this.#state !== 'open' && this.#state !== 'unknown') {
      const where = this.locate(index);
      const why =
        this.#state === 'none'
          ? 'before the first LOG_START'
          : this.#state === 'stopped'
            ? `after LOG_STOP of run ${this.#runId}, before the next LOG_START`
            : 'after CRASH_RECOVERY, before its LOG_START';
      this.findings.fail('RUN_NOT_STARTED', where, `an entry outside any run (${why})`);
      return;
    }
    if (this.#lastTimeUs !== undefined && timeUs - this.#lastTimeUs > this.allowedGap) {
      const gap = (timeUs - this.#lastTimeUs) / 1e6;
      const limit = this.allowedGap / 1e6;
      this.findings.fail(
        'HEARTBEAT_GAP',
        this.locate(index),
        `${gap.toFixed(1)} s since the previous entry of run ${this.#runId ?? '?'} (at most ${limit} s allowed)`,
      );
    }
    if (this.#lastTimeUs === undefined || timeUs > this.#lastTimeUs) this.#lastTimeUs = timeUs;
  }

  #checkRunId(e: SystemEntry, where: string): void {
    const runId = str(e.body.run_id);
    if (this.#state === 'unknown' && this.#runId === undefined) {
      this.#runId = runId;
      return;
    }
    if (runId !== this.#runId) {
      this.findings.fail(
        'RUN_ID_MISMATCH',
        where,
        `run_id ${JSON.stringify(runId)} in run ${this.#runId ?? '?'}`,
      );
    }
  }

  /**
   * A system entry at leaf `index`; `previousIndex` is the leaf before it in the source, if any.
   * Returns which run event it was, for the segment checks.
   */
  system(e: SystemEntry, index: number, previousIndex: number | undefined): void {
    const where = this.locate(index);
    const timeUs = Number(e.timeUs);
    switch (e.type) {
      case SystemType.LOG_START: {
        const runId = str(e.body.run_id);
        if (this.#state === 'open') {
          this.findings.fail(
            'RUN_NOT_CLOSED',
            where,
            `LOG_START of run ${runId} while run ${this.#runId} is open: no LOG_STOP or CRASH_RECOVERY before it`,
          );
        } else if (this.#state === 'recovering' && runId !== this.#pendingRunId) {
          this.findings.fail(
            'RUN_ID_MISMATCH',
            where,
            `LOG_START of run ${runId} after the CRASH_RECOVERY of run ${this.#pendingRunId}`,
          );
        }
        const origin = str(e.body.origin);
        if (origin !== undefined && origin !== this.origin) {
          this.findings.fail(
            'ORIGIN_MISMATCH',
            where,
            `LOG_START names origin ${JSON.stringify(origin)}, not ${JSON.stringify(this.origin)}`,
          );
        }
        this.#state = 'open';
        this.#runId = runId;
        this.#pendingRunId = undefined;
        this.#lastTimeUs = timeUs;
        this.#lastHeartbeat = 0;
        this.runs++;
        return;
      }
      case SystemType.CRASH_RECOVERY: {
        const previous = str(e.body.previous_run_id);
        const expected = this.#state === 'recovering' ? this.#pendingRunId : this.#runId;
        if (this.#state !== 'none' && this.#state !== 'unknown' && previous !== expected) {
          this.findings.fail(
            'CRASH_RECOVERY_MISMATCH',
            where,
            `previous_run_id ${JSON.stringify(previous)}, but the run before it is ${expected}`,
          );
        }
        const lastIndex = e.body.last_index;
        if (previousIndex !== undefined && previousIndex === index - 1 && lastIndex !== index - 1) {
          this.findings.fail(
            'CRASH_RECOVERY_MISMATCH',
            where,
            `last_index ${JSON.stringify(lastIndex)}, but the entry before it is leaf ${index - 1}`,
          );
        }
        this.#state = 'recovering';
        this.#pendingRunId = str(e.body.run_id);
        return;
      }
      case SystemType.LOG_STOP:
        this.entry(timeUs, index);
        if (this.#state === 'open' || this.#state === 'unknown') {
          this.#checkRunId(e, where);
          this.#state = 'stopped';
        }
        if (e.body.reason === 'failed') {
          // FORMAT.md §3.3: the log failed and ended its run; sessions of that moment were cut.
          const failure = str(e.body.failure) ?? 'no reason given';
          this.findings.warn(
            'RUN_FAILED',
            where,
            `run ${str(e.body.run_id) ?? '?'} stopped because the log failed: ${failure}`,
          );
        }
        return;
      case SystemType.HEARTBEAT: {
        this.heartbeats++;
        this.entry(timeUs, index);
        if (this.#state !== 'open' && this.#state !== 'unknown') return;
        this.#checkRunId(e, where);
        const n = e.body.n;
        if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
          this.findings.fail('HEARTBEAT_GAP', where, 'the heartbeat has no count n');
        } else {
          if (this.#lastHeartbeat !== undefined && n !== this.#lastHeartbeat + 1) {
            this.findings.fail(
              'HEARTBEAT_GAP',
              where,
              `heartbeat n=${n} follows n=${this.#lastHeartbeat}: ${n > this.#lastHeartbeat ? 'heartbeats are missing' : 'out of order'}`,
            );
          }
          this.#lastHeartbeat = n;
        }
        return;
      }
      default:
        this.entry(timeUs, index);
        if (this.#state === 'open' || this.#state === 'unknown') this.#checkRunId(e, where);
    }
  }
}
