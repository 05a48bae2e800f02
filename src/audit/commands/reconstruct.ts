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

/** Sessions whose channels hold terminals; a session's state goes at SESSION_END. */
type SessionState = Map<number, ChannelState>;

const channelOf = (payload: JsonObject | DataPayload): number | undefined =>
  typeof payload.channel === 'number' ? payload.channel : undefined;

export class CommandReconstructor {
  readonly #sessions = new Map<string, SessionState>();

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
    const json = record.payload as JsonObject;
    switch (record.type) {
      case 'EXEC':
        this.#startTerminal(state);
        return [{ ...base, derivation: 'exec', text: String(json.command ?? ''), confident: true }];
      case 'PTY_REQ':
        state.pty = { cols: json.cols, rows: json.rows };
        return [];
      case 'SHELL':
        this.#startTerminal(state);
        return [];
      case 'WINDOW_CHANGE':
        if (state.pty) state.pty = { cols: json.cols, rows: json.rows };
        state.terminal?.resize(json.cols, json.rows);
        return [];
      case 'SFTP_OP':
        return sftpCommands(json).map((text) => ({ ...base, derivation: 'sftp', text, confident: true }));
      case 'DATA_IN':
        state.terminal?.input((record.payload as DataPayload).data, record.index, record.timeUs);
        return [];
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

  #startTerminal(state: ChannelState): void {
    if (state.pty && !state.terminal) state.terminal = new TerminalChannel(state.pty.cols, state.pty.rows);
  }

  #endSession(id: string, session: SessionState): Command[] {
    const out: Command[] = [];
    for (const [channel, state] of session) {
      if (state.terminal) out.push(...this.#lines(id, channel, state.terminal.end()));
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
