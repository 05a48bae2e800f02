/**
 * The command list of a log (docs/AUDITOR.md §6), incrementally: feed authenticated records in leaf
 * order (OpenedRecord, from decryptLog(...).opened()), get commands out as soon as they are known. The
 * same code runs over a whole store in the auditor tools and, later, live in the gate.
 *
 * - `exec`: the EXEC record's command.
 * - `terminal`: a channel with a PTY_REQ (a shell, or an exec with `-t`) drives a TerminalChannel.
 * - `sftp`: SFTP_OP request records of a channel whose SUBSYSTEM is sftp.
 */
import type { OpenedRecord } from '../decrypt.js';
import type { JsonObject } from '../../seal/format/json.js';
import type { DataPayload } from '../../seal/format/payload.js';
import { sftpCommands } from './sftp.js';
import { TerminalChannel } from './terminal-channel.js';
import type { Command } from './types.js';

interface ChannelState {
  pty?: { cols: unknown; rows: unknown };
  terminal?: TerminalChannel;
}

/**
 * Terminals alive at once, over all sessions. Each costs up to a few MB; sessions that never end (a gate
 * that crashed) would otherwise keep theirs until the end of the input. Beyond this the least recently
 * used terminal is ended, and its channel says so with a command that is not confident.
 */
export const MAX_LIVE_TERMINALS = 128;
const STOPPED = '(commands not reconstructed from here: too many terminals open at once; read the records)';

/** Sessions whose channels hold terminals; a session's state goes at SESSION_END. */
type SessionState = Map<number, ChannelState>;

const channelOf = (payload: JsonObject | DataPayload): number | undefined =>
  typeof payload.channel === 'number' ? payload.channel : undefined;

export class CommandReconstructor {
  readonly #sessions = new Map<string, SessionState>();
  /** Live terminals, least recently used first. */
  readonly #live = new Map<TerminalChannel, { session: string; channel: number; state: ChannelState }>();

  /** The commands that `record` completes (often none). */
  push(record: OpenedRecord): Command[] {
    let session = this.#sessions.get(record.session);
    if (!session) {
      session = new Map();
      this.#sessions.set(record.session, session);
    }
    if (record.type === 'SESSION_END') return this.#endSession(record.session, session);
    const channel = channelOf(record.payload);
    if (channel === undefined) return [];
    let state = session.get(channel);
    if (!state) {
      state = {};
      session.set(channel, state);
    }
    const base = { session: record.session, channel, index: record.index, timeUs: record.timeUs };
    const evicted: Command[] = [];
    if (state.terminal) this.#touch(state.terminal, record.session, channel, state);
    const json = record.payload as JsonObject;
    switch (record.type) {
      case 'EXEC':
        this.#startTerminal(state, true, record, evicted);
        return [
          ...evicted,
          { ...base, derivation: 'exec', text: String(json.command ?? ''), confident: true },
        ];
      case 'PTY_REQ':
        state.pty = { cols: json.cols, rows: json.rows };
        return [];
      case 'SHELL':
        this.#startTerminal(state, false, record, evicted);
        return evicted;
      case 'WINDOW_CHANGE':
        if (state.pty) state.pty = { cols: json.cols, rows: json.rows };
        state.terminal?.resize(json.cols, json.rows);
        return [];
      case 'SFTP_OP':
        return sftpCommands(json).map((text) => ({ ...base, derivation: 'sftp', text, confident: true }));
      case 'DATA_IN':
        if (!state.terminal) return [];
        return this.#lines(
          record.session,
          channel,
          state.terminal.input((record.payload as DataPayload).data, record.index, record.timeUs),
        );
      case 'DATA_OUT':
      case 'DATA_ERR':
        if (!state.terminal) return [];
        return this.#lines(
          record.session,
          channel,
          state.terminal.output((record.payload as DataPayload).data),
        );
      case 'CHANNEL_CLOSE': {
        const lines = state.terminal ? this.#lines(record.session, channel, state.terminal.end()) : [];
        if (state.terminal) this.#live.delete(state.terminal);
        session.delete(channel);
        return lines;
      }
      default:
        return [];
    }
  }

  /** The end of the input: commands still waiting for an echo, from every open session. */
  finish(): Command[] {
    const out: Command[] = [];
    for (const [id, session] of this.#sessions) out.push(...this.#endSession(id, session));
    return out;
  }

  /** A terminal for a channel with a PTY; `exec`: its command runs from the start (`ssh -t host top`). */
  #startTerminal(state: ChannelState, exec: boolean, record: OpenedRecord, out: Command[]): void {
    if (!state.pty || state.terminal) return;
    if (this.#live.size >= MAX_LIVE_TERMINALS) out.push(...this.#evictOldest(record));
    state.terminal = new TerminalChannel(state.pty.cols, state.pty.rows, exec);
    this.#touch(state.terminal, record.session, channelOf(record.payload) ?? 0, state);
  }

  #touch(terminal: TerminalChannel, session: string, channel: number, state: ChannelState): void {
    this.#live.delete(terminal);
    this.#live.set(terminal, { session, channel, state });
  }

  /** Ends the least recently used terminal; its channel gets a not-confident command that says so. */
  #evictOldest(now: OpenedRecord): Command[] {
    const [terminal, owner] = this.#live.entries().next().value as [
      TerminalChannel,
      { session: string; channel: number; state: ChannelState },
    ];
    this.#live.delete(terminal);
    owner.state.terminal = undefined;
    owner.state.pty = undefined; // no new terminal for it either
    return [
      ...this.#lines(owner.session, owner.channel, terminal.end()),
      {
        session: owner.session,
        channel: owner.channel,
        index: now.index,
        timeUs: now.timeUs,
        derivation: 'terminal',
        text: STOPPED,
        confident: false,
        note: `more than ${MAX_LIVE_TERMINALS} terminals were open at once`,
      },
    ];
  }

  #endSession(id: string, session: SessionState): Command[] {
    const out: Command[] = [];
    for (const [channel, state] of session) {
      if (!state.terminal) continue;
      out.push(...this.#lines(id, channel, state.terminal.end()));
      this.#live.delete(state.terminal);
    }
    this.#sessions.delete(id);
    return out;
  }

  #lines(session: string, channel: number, lines: ReturnType<TerminalChannel['end']>): Command[] {
    return lines.map((l) => ({
      session,
      channel,
      index: l.index,
      timeUs: l.timeUs,
      derivation: 'terminal' as const,
      text: l.text,
      confident: l.confident,
      ...(l.note !== undefined ? { note: l.note } : {}),
    }));
  }
}

/** Every command of `records` (one log's records, in leaf order). */
export function reconstructCommands(records: Iterable<OpenedRecord>): Command[] {
  const r = new CommandReconstructor();
  const out: Command[] = [];
  for (const record of records) out.push(...r.push(record));
  out.push(...r.finish());
  return out;
}
