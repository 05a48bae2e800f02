/**
 * Which channel of a session is "the terminal": a cast shows one channel. A channel is a terminal
 * channel when it carried a SHELL (interactive, usually after a PTY_REQ) or an EXEC request; SUBSYSTEM
 * channels (sftp) and forwardings are not. TerminalChannels reads a session's records once (the records
 * are not kept) and pickChannel chooses, or says why it cannot.
 */
import type { OpenedRecord } from '../decrypt.js';
import { isDataPayload } from '../decrypt.js';
import { CastError } from './errors.js';

/** The size and type of a channel's pseudo-terminal (PTY_REQ). */
export interface PtyInfo {
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
}

export interface TerminalChannel {
  readonly session: string;
  readonly channel: number;
  readonly kind: 'shell' | 'exec';
  /** EXEC only: the command. */
  readonly command?: string;
  /** Absent for an exec without a pty (`ssh host cmd`). */
  readonly pty?: PtyInfo;
  /** Microseconds since the epoch of the channel's first record: time 0 of a cast. */
  readonly startUs: bigint;
  /** `user@target` of the session (SESSION_START), for titles. */
  readonly login?: string;
}

/** The terminal size a cast of a channel without a pty is given (a cast must have one). */
export const DEFAULT_SIZE = { cols: 80, rows: 24 } as const;

interface Draft {
  channel: number;
  startUs: bigint;
  kind?: 'shell' | 'exec';
  command?: string;
  pty?: PtyInfo;
}

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;

/** The channel number of a record, if it names one. */
export function recordChannel(record: OpenedRecord): number | undefined {
  if (isDataPayload(record)) return (record.payload as { channel: number }).channel;
  return num((record.payload as Record<string, unknown>).channel);
}

/** Collects the terminal channels of one session from its records, in order. */
export class TerminalChannels {
  readonly #drafts = new Map<number, Draft>();
  #session = '';
  #login: string | undefined;

  add(record: OpenedRecord): void {
    this.#session ||= record.session;
    const payload = record.payload as Record<string, unknown>;
    if (record.type === 'SESSION_START') {
      if (typeof payload.user === 'string' && typeof payload.target === 'string') {
        this.#login = `${payload.user}@${payload.target}`;
      }
      return;
    }
    const channel = recordChannel(record);
    if (channel === undefined) return;
    let draft = this.#drafts.get(channel);
    if (!draft) {
      draft = { channel, startUs: record.timeUs };
      this.#drafts.set(channel, draft);
    }
    if (record.type === 'PTY_REQ' && draft.pty === undefined) {
      draft.pty = {
        term: typeof payload.term === 'string' ? payload.term : 'xterm',
        cols: num(payload.cols) || DEFAULT_SIZE.cols,
        rows: num(payload.rows) || DEFAULT_SIZE.rows,
      };
    } else if (record.type === 'SHELL' && draft.kind === undefined) {
      draft.kind = 'shell';
    } else if (record.type === 'EXEC' && draft.kind === undefined) {
      draft.kind = 'exec';
      if (typeof payload.command === 'string') draft.command = payload.command;
    }
  }

  /** The terminal channels seen, in channel order. */
  list(): TerminalChannel[] {
    const out: TerminalChannel[] = [];
    for (const d of [...this.#drafts.values()].sort((a, b) => a.channel - b.channel)) {
      if (d.kind === undefined) continue;
      out.push({
        session: this.#session,
        channel: d.channel,
        kind: d.kind,
        startUs: d.startUs,
        ...(d.command !== undefined ? { command: d.command } : {}),
        ...(d.pty ? { pty: d.pty } : {}),
        ...(this.#login ? { login: this.#login } : {}),
      });
    }
    return out;
  }
}

/** One line per channel, for the CHANNEL_AMBIGUOUS message and `--channel` help. */
export function describeChannel(c: TerminalChannel): string {
  const what = c.kind === 'shell' ? 'shell' : `exec ${JSON.stringify(c.command ?? '')}`;
  const pty = c.pty ? `pty ${c.pty.cols}x${c.pty.rows} ${c.pty.term}` : 'no pty';
  return `channel ${c.channel}: ${what}, ${pty}`;
}

/**
 * The channel to cast: `requested` if given (it must be a terminal channel), else the only terminal
 * channel. Throws CastError NO_TERMINAL_CHANNEL, CHANNEL_AMBIGUOUS (listing them), CHANNEL_NOT_FOUND.
 */
export function pickChannel(
  session: string,
  channels: readonly TerminalChannel[],
  requested?: number,
): TerminalChannel {
  const listing = channels.map(describeChannel).join('; ');
  if (requested !== undefined) {
    const found = channels.find((c) => c.channel === requested);
    if (found) return found;
    throw new CastError(
      'CHANNEL_NOT_FOUND',
      `session ${session} has no terminal channel ${requested}` +
        (channels.length > 0 ? ` (its terminal channels: ${listing})` : ' (it has no terminal channel)'),
    );
  }
  const [only, ...more] = channels;
  if (!only) {
    throw new CastError(
      'NO_TERMINAL_CHANNEL',
      `session ${session} has no shell or exec channel (sftp and forwardings have no terminal to show)`,
    );
  }
  if (more.length > 0) {
    throw new CastError(
      'CHANNEL_AMBIGUOUS',
      `session ${session} has ${channels.length} terminal channels; choose one with --channel N: ${listing}`,
    );
  }
  return only;
}
