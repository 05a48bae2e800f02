/**
 * The timing of `sealgate replay`, apart from the terminal: how long to wait before each event, and
 * where playback starts.
 */
import type { TermEvent } from './terminal-events.js';

export interface ReplayTiming {
  /** Playback speed: 2 plays twice as fast. > 0. */
  readonly speed: number;
  /** No wait is longer than this many seconds (before the speed is applied), like asciinema's `-i`. */
  readonly idleLimit?: number;
}

/**
 * Where playback starts. `index`: the first event of a record at or after this leaf index (a
 * command's `index`, src/audit/commands/types.ts). `timeUs`: the first event at or after this time.
 * Everything before it is rendered at once, with no waiting, so the screen is as it was then.
 */
export interface StartAt {
  readonly index?: number;
  readonly timeUs?: bigint;
}

/** True while `e` comes before the start point (it is played without delay). */
export function beforeStart(e: TermEvent, start: StartAt): boolean {
  if (start.index !== undefined && e.index < start.index) return true;
  if (start.timeUs !== undefined && e.timeUs < start.timeUs) return true;
  return false;
}

/** Milliseconds to wait between an event at `prevUs` and the next at `us`. */
export function waitMs(prevUs: bigint, us: bigint, timing: ReplayTiming): number {
  let seconds = us > prevUs ? Number(us - prevUs) / 1e6 : 0;
  if (timing.idleLimit !== undefined) seconds = Math.min(seconds, timing.idleLimit);
  return (seconds * 1000) / timing.speed;
}

/**
 * `--at` as given: a leaf index (`1234`), seconds from the start (`90s`, `1.5s`), or a time
 * (ISO 8601, `2026-01-05T10:00:00Z`). Returns undefined when it is none of these.
 */
export function parseStartAt(text: string, startUs: bigint): StartAt | undefined {
  if (/^\d+$/.test(text)) return { index: Number(text) };
  const secs = /^(\d+(?:\.\d+)?)s$/.exec(text);
  if (secs) return { timeUs: startUs + BigInt(Math.round(Number(secs[1]) * 1e6)) };
  if (/^\d{4}-\d\d-\d\dT/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return { timeUs: BigInt(ms) * 1000n };
  }
  return undefined;
}
