/**
 * A terminal channel's records as the events every cast format is made of: output (DATA_OUT and
 * DATA_ERR: both reach the user's screen), input (DATA_IN), resize (WINDOW_CHANGE) and exit
 * (EXIT_STATUS, EXIT_SIGNAL). Bytes stay bytes here; each writer decides how to carry them.
 */
import type { OpenedRecord } from '../decrypt.js';
import type { DataPayload } from '../../seal/format/payload.js';
import { constants } from 'node:os';
import { recordChannel } from './channel.js';

function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[`SIG${name}`];
}

/** Where an event comes from: its record's leaf index and time (µs since the epoch). */
interface At {
  readonly index: number;
  readonly timeUs: bigint;
}

export type TermEvent = At &
  (
    | { readonly code: 'o'; readonly stream: 'out' | 'err'; readonly data: Uint8Array }
    | { readonly code: 'i'; readonly data: Uint8Array }
    | { readonly code: 'r'; readonly cols: number; readonly rows: number }
    /** `status`: the exit code; for a signal, 128 + its number, as a shell reports it (`$?`). */
    | { readonly code: 'x'; readonly status: number }
  );

const size = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;

/** The event a record of `channel` makes, or undefined (another channel, or nothing to show). */
export function terminalEvent(record: OpenedRecord, channel: number): TermEvent | undefined {
  if (recordChannel(record) !== channel) return undefined;
  const { index, timeUs } = record;
  const payload = record.payload as Record<string, unknown>;
  switch (record.type) {
    case 'DATA_OUT':
    case 'DATA_ERR':
      return {
        code: 'o',
        index,
        timeUs,
        stream: record.type === 'DATA_OUT' ? 'out' : 'err',
        data: (record.payload as DataPayload).data,
      };
    case 'DATA_IN':
      return { code: 'i', index, timeUs, data: (record.payload as DataPayload).data };
    case 'WINDOW_CHANGE': {
      const cols = size(payload.cols);
      const rows = size(payload.rows);
      return cols && rows ? { code: 'r', index, timeUs, cols, rows } : undefined;
    }
    case 'EXIT_STATUS':
      return typeof payload.code === 'number'
        ? { code: 'x', index, timeUs, status: payload.code }
        : undefined;
    case 'EXIT_SIGNAL': {
      // RFC 4254 §6.10: the signal name without "SIG".
      const n = typeof payload.signal === 'string' ? signalNumber(payload.signal) : undefined;
      return n === undefined ? undefined : { code: 'x', index, timeUs, status: 128 + n };
    }
    default:
      return undefined;
  }
}

/** Microseconds as seconds with six decimals (`1.250000`); a negative span (a clock step back) is 0. */
export function secondsText(us: bigint): string {
  const clamped = us < 0n ? 0n : us;
  const whole = clamped / 1_000_000n;
  const frac = (clamped % 1_000_000n).toString().padStart(6, '0');
  return `${whole}.${frac}`;
}
