/**
 * Session summaries (docs/AUDITOR.md §9): one row per SSH session, derived from its authenticated
 * records (docs/FORMAT.md §3.2.1) and its segment headers' provenance (§3.1.1). Pure and incremental:
 * feed it the segments and entries of a decryption in leaf order, ask for the rows at any time.
 *
 * A session with no SESSION_END is `open`: still running on a live store, or cut by a crash (then a
 * later CRASH_RECOVERY names one of its segments, and `crashed` is true: it will never continue).
 */
import type { JsonObject } from '../seal/format/json.js';
import type { DataPayload } from '../seal/format/payload.js';
import type { OpenedEntry, OpenedRecord, OpenedSegment } from './decrypt.js';
import { isoMicros } from './decrypt-event.js';

/** One session channel (`session` type): what ran on it and how it ended. */
export interface ChannelSummary {
  readonly channel: number;
  /** `exec`, `shell`, `subsystem:NAME`, or undefined when no request came. */
  request?: string;
  /** The EXEC command. */
  command?: string;
  pty?: boolean;
  exit_status?: number;
  exit_signal?: string;
}

/** A session's row: the JSON line of `sealgate sessions --json` and the index's sessions file. */
export interface SessionSummary {
  /** Session id, hex. */
  readonly session: string;
  gate_user: string;
  target: string;
  /** The user logged in as on the target. */
  login: string;
  /** `ip:port` of the SSH client. */
  client: string;
  /** ISO 8601, microseconds (SESSION_START's time, else the first record's). */
  start: string;
  /** SESSION_END's time; null while open. */
  end: string | null;
  /** Seconds from start to end (or to the last record seen, while open). */
  duration_s: number;
  end_reason: string | null;
  /** `ended` (SESSION_END), or `open` (none: running, or cut by a crash). */
  state: 'ended' | 'open';
  /** An open session a CRASH_RECOVERY accounted for: the gate stopped without ending it. */
  crashed: boolean;
  /** The exit status of the main channel (the first with an exec, shell or subsystem), if it sent one. */
  exit_status: number | null;
  /** The main channel's exit signal, if it ended by one. */
  exit_signal: string | null;
  channels: ChannelSummary[];
  /** Bytes from the client (DATA_IN). */
  bytes_in: number;
  /** Bytes to the client (DATA_OUT + DATA_ERR). */
  bytes_out: number;
  commands: number;
  /** True when every segment seen was sealed in FIPS mode; false if any was not; null if none seen. */
  fips: boolean | null;
  /** The distinct provenances of its segments (FORMAT.md §3.1.1). */
  provenance: JsonObject[];
  segments: number;
  /** Leaf index of its first and last entries seen. */
  first_index: number;
  last_index: number;
}

interface Working {
  row: SessionSummary;
  startUs: bigint | undefined;
  lastUs: bigint;
  provenanceKeys: Set<string>;
  channelsByNumber: Map<number, ChannelSummary>;
  main: ChannelSummary | undefined;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const seconds = (from: bigint, to: bigint): number => Math.max(0, Number(to - from) / 1e6);

export class SessionSummarizer {
  readonly #sessions = new Map<string, Working>();
  /** Segment id → session id, so a CRASH_RECOVERY's segments name their sessions. */
  readonly #segmentSession = new Map<string, string>();

  #working(session: string, index: number, timeUs: bigint): Working {
    let w = this.#sessions.get(session);
    if (!w) {
      w = {
        row: {
          session,
          gate_user: '',
          target: '',
          login: '',
          client: '',
          start: isoMicros(timeUs),
          end: null,
          duration_s: 0,
          end_reason: null,
          state: 'open',
          crashed: false,
          exit_status: null,
          exit_signal: null,
          channels: [],
          bytes_in: 0,
          bytes_out: 0,
          commands: 0,
          fips: null,
          provenance: [],
          segments: 0,
          first_index: index,
          last_index: index,
        },
        startUs: undefined,
        lastUs: timeUs,
        provenanceKeys: new Set(),
        channelsByNumber: new Map(),
        main: undefined,
      };
      this.#sessions.set(session, w);
    }
    return w;
  }

  /** A segment header addressed to the key (decrypt's `onSegment`). */
  segment(s: OpenedSegment): void {
    this.#segmentSession.set(s.segment, s.session);
    const w = this.#working(s.session, s.index, s.createdUs);
    const row = w.row;
    row.segments++;
    row.last_index = Math.max(row.last_index, s.index);
    const fips = s.provenance.fips === true;
    row.fips = row.fips === null ? fips : row.fips && fips;
    const key = JSON.stringify(s.provenance);
    if (!w.provenanceKeys.has(key)) {
      w.provenanceKeys.add(key);
      row.provenance.push(s.provenance);
    }
  }

  /** An opened entry, in leaf order. System entries other than CRASH_RECOVERY are ignored. */
  push(entry: OpenedEntry): void {
    if (entry.kind === 'system') {
      if (entry.type !== 'CRASH_RECOVERY') return;
      const open = Array.isArray(entry.body.open_segments) ? entry.body.open_segments : [];
      for (const s of open) {
        const id = this.#segmentSession.get(str((s as JsonObject | null)?.segment_id));
        const w = id === undefined ? undefined : this.#sessions.get(id);
        if (w && w.row.state === 'open') w.row.crashed = true;
      }
      return;
    }
    this.#record(entry);
  }

  #channel(w: Working, payload: JsonObject | DataPayload): ChannelSummary {
    const n = num(payload.channel) ?? -1;
    let c = w.channelsByNumber.get(n);
    if (!c) {
      c = { channel: n };
      w.channelsByNumber.set(n, c);
      w.row.channels.push(c);
    }
    return c;
  }

  #record(r: OpenedRecord): void {
    const w = this.#working(r.session, r.index, r.timeUs);
    const row = w.row;
    row.last_index = Math.max(row.last_index, r.index);
    if (r.timeUs > w.lastUs) w.lastUs = r.timeUs;
    const p = r.payload as JsonObject;
    switch (r.type) {
      case 'DATA_IN':
        row.bytes_in += (r.payload as DataPayload).data.length;
        break;
      case 'DATA_OUT':
      case 'DATA_ERR':
        row.bytes_out += (r.payload as DataPayload).data.length;
        break;
      case 'SESSION_START':
        w.startUs = r.timeUs;
        row.start = isoMicros(r.timeUs);
        row.gate_user = str(p.gate_user);
        row.target = str(p.target);
        row.login = str(p.user);
        row.client = str(p.client);
        break;
      case 'SESSION_END':
        row.state = 'ended';
        row.crashed = false;
        row.end = isoMicros(r.timeUs);
        row.end_reason = str(p.reason);
        break;
      case 'PTY_REQ':
        this.#channel(w, p).pty = true;
        break;
      case 'EXEC':
      case 'SHELL':
      case 'SUBSYSTEM': {
        const c = this.#channel(w, p);
        c.request = r.type === 'EXEC' ? 'exec' : r.type === 'SHELL' ? 'shell' : `subsystem:${str(p.name)}`;
        if (r.type === 'EXEC') c.command = str(p.command);
        w.main ??= c;
        break;
      }
      case 'EXIT_STATUS': {
        const code = num(p.code);
        if (code !== undefined) this.#channel(w, p).exit_status = code;
        break;
      }
      case 'EXIT_SIGNAL':
        this.#channel(w, p).exit_signal = str(p.signal);
        break;
      default:
        break;
    }
    if (w.startUs !== undefined) {
      row.duration_s = seconds(w.startUs, row.state === 'ended' ? r.timeUs : w.lastUs);
    }
    if (w.main) {
      row.exit_status = w.main.exit_status ?? null;
      row.exit_signal = w.main.exit_signal ?? null;
    }
  }

  /** Adds `n` derived commands to a session's count. */
  countCommands(session: string, n: number): void {
    const w = this.#sessions.get(session);
    if (w) w.row.commands += n;
  }

  has(session: string): boolean {
    return this.#sessions.has(session);
  }

  get(session: string): SessionSummary | undefined {
    return this.#sessions.get(session)?.row;
  }

  /** True when nothing more can come for the session: it ended, or a crash recovery accounted for it. */
  isDone(session: string): boolean {
    const row = this.#sessions.get(session)?.row;
    return row !== undefined && (row.state === 'ended' || row.crashed);
  }

  /** Every session seen, in the order of its first entry. */
  rows(): SessionSummary[] {
    return [...this.#sessions.values()].map((w) => w.row);
  }
}
