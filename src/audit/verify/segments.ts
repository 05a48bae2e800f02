/**
 * Segments (docs/FORMAT.md §3.1, §3.2, §8 step 6), checked without a key from the plaintext metadata:
 * a valid header for the log's origin; sequence numbers 0, 1, 2, … with no gap; every record's segment
 * known; exactly one FINAL, on the last record; nothing after FINAL; sessions chained by
 * prev_segment_id; and a segment left open by a crash named by the CRASH_RECOVERY that follows.
 *
 * Also collects each segment's provenance (§3.1.1), which is what lets an auditor say "every record of
 * this period was sealed in FIPS mode".
 */
import type { SegmentHeader } from '../../seal/format/segment-header.js';
import { RecordType } from '../../seal/format/types.js';
import type { Findings } from './error.js';
import type { RecordMeta } from './record-meta.js';

/** What the bundle is: every leaf, a contiguous range of leaves, or a set of sessions. */
export type SourceMode = 'complete' | 'range' | 'sessions';

/** How one segment was sealed (FORMAT.md §3.1.1), as its header attests. */
export interface SegmentProvenance {
  readonly segment: string;
  /** Undefined for a segment whose header lies before a partial bundle's range. */
  readonly session?: string;
  readonly headerIndex?: number;
  /** RFC 3339, from created_us. */
  readonly created?: string;
  /** The header's `fips`; undefined when the header is not in the bundle or lacks a boolean. */
  readonly fips?: boolean;
  readonly backend?: string;
  readonly library?: string;
  readonly fipsProvider?: string;
  readonly fipsProviderVersion?: string;
  readonly fipsModuleSha256?: string;
  /** Every other provenance field (PKCS#11: tokenModel, tokenSerial). */
  readonly other: Readonly<Record<string, unknown>>;
  readonly records: number;
  /** closed by a FINAL record, accounted by a CRASH_RECOVERY, or still open at the end. */
  readonly state: 'final' | 'crashed' | 'open';
}

interface SegmentState {
  readonly id: string;
  readonly session: string | undefined;
  readonly headerIndex: number | undefined;
  /** What the header says (copied out of it: entry bytes are views into a reused window). */
  readonly header: { readonly createdUs: bigint; readonly provenance: Record<string, unknown> } | undefined;
  nextSeq: number;
  /** seq of the last record, -1 when only the header was seen. */
  lastSeq: number;
  records: number;
  final: { index: number; type: number } | undefined;
  crashed: boolean;
  /** Reported as left open (FINAL_MISSING or SEGMENT_OPEN_UNACCOUNTED), so that it is reported once. */
  flagged: boolean;
  successor: string | undefined;
  /** A header before a range's first leaf (carried by the range): its first record sets nextSeq. */
  carried: boolean;
}

const ZERO_ID = '0'.repeat(32);
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function isoFromUs(us: bigint): string | undefined {
  const ms = Number(us / 1000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export class SegmentChecks {
  readonly #segments = new Map<string, SegmentState>();
  /** Session id → its segment ids, in order. */
  readonly #sessions = new Map<string, string[]>();
  /** Segments opened (or adopted) in the current run. */
  #runSegments = new Set<string>();
  records = 0;

  constructor(
    private readonly origin: string,
    private readonly mode: SourceMode,
    private readonly findings: Findings,
    /** Names a leaf in messages ("entries.bin leaf 12"); undefined when the leaf is not in the source. */
    private readonly locate: (index: number | undefined) => string,
  ) {}

  get segmentCount(): number {
    return this.#segments.size;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * A segment header at leaf `index`. `carried`: a range bundle's header from before its range (the
   * segment's records between the header and the range are not in the bundle), so the segment's first
   * record in the range may have any seq, and the header must be followed by at least one record.
   */
  header(index: number, h: SegmentHeader, carried = false): void {
    const where = this.locate(index);
    const id = hex(h.segmentId);
    const session = hex(h.sessionId);
    if (this.#segments.has(id)) {
      this.findings.fail(
        'SEGMENT_HEADER_DUPLICATE',
        where,
        `segment ${id} already has a header at leaf ${this.#segments.get(id)?.headerIndex}`,
      );
      return;
    }
    if (h.origin !== this.origin) {
      this.findings.fail(
        'ORIGIN_MISMATCH',
        where,
        `segment ${id} is for origin ${JSON.stringify(h.origin)}, not ${JSON.stringify(this.origin)}`,
      );
    }
    const prev = hex(h.prevSegmentId);
    const chain = this.#sessions.get(session) ?? [];
    if (prev === ZERO_ID) {
      if (chain.length > 0)
        this.findings.fail(
          'SEGMENT_CHAIN_BROKEN',
          where,
          `segment ${id} starts session ${session} again (it began with segment ${chain[0]})`,
        );
    } else {
      const p = this.#segments.get(prev);
      if (!p) {
        if (this.mode !== 'range')
          this.findings.fail(
            'SEGMENT_CHAIN_BROKEN',
            where,
            `segment ${id} follows segment ${prev}, which is not in the log before it`,
          );
      } else if (p.session !== undefined && p.session !== session) {
        this.findings.fail(
          'SEGMENT_CHAIN_BROKEN',
          where,
          `segment ${id} of session ${session} follows segment ${prev} of session ${p.session}`,
        );
      } else if (p.successor !== undefined) {
        this.findings.fail(
          'SEGMENT_CHAIN_BROKEN',
          where,
          `segment ${prev} already continues in segment ${p.successor}`,
        );
      } else {
        p.successor = id;
        if (!p.final && !p.crashed && !p.flagged) {
          this.findings.fail(
            'FINAL_MISSING',
            where,
            `segment ${prev} continues in segment ${id} without a FINAL record`,
          );
        } else if (p.final?.type === RecordType.SESSION_END) {
          this.findings.fail(
            'SEGMENT_CHAIN_BROKEN',
            where,
            `segment ${id} continues session ${session} after its SESSION_END (segment ${prev})`,
          );
        }
      }
    }
    chain.push(id);
    this.#sessions.set(session, chain);
    this.#segments.set(id, {
      id,
      session,
      headerIndex: index,
      header: { createdUs: h.createdUs, provenance: h.provenance },
      nextSeq: 0,
      lastSeq: -1,
      records: 0,
      final: undefined,
      crashed: false,
      flagged: false,
      successor: undefined,
      carried,
    });
    this.#runSegments.add(id);
  }

  /** Carried headers (see `header`) none of whose records came: the range does not start inside them. */
  carriedWithoutRecords(): { id: string; headerIndex: number | undefined }[] {
    return [...this.#segments.values()]
      .filter((s) => s.carried && s.records === 0)
      .map((s) => ({ id: s.id, headerIndex: s.headerIndex }));
  }

  /** A sealed record at leaf `index`. */
  record(index: number, r: RecordMeta): void {
    this.records++;
    const id = r.segment;
    const seq = r.seq;
    let s = this.#segments.get(id);
    if (!s) {
      if (this.mode !== 'range') {
        this.findings.fail(
          'RECORD_UNKNOWN_SEGMENT',
          this.locate(index),
          `record seq ${seq} names segment ${id}, which has no header before it`,
        );
        return;
      }
      // A range may begin inside a segment: adopt it from its first record in the range.
      s = {
        id,
        session: undefined,
        headerIndex: undefined,
        header: undefined,
        nextSeq: seq,
        lastSeq: seq - 1,
        records: 0,
        final: undefined,
        crashed: false,
        flagged: false,
        successor: undefined,
        carried: false,
      };
      this.#segments.set(id, s);
      this.#runSegments.add(id);
    }
    if (s.carried && s.records === 0) {
      s.nextSeq = seq; // its earlier records lie between the header and the range
      s.lastSeq = seq - 1;
    }
    s.records++;
    if (s.final || s.crashed) {
      const why = s.final ? `its FINAL record (leaf ${s.final.index})` : 'a CRASH_RECOVERY closed it';
      this.findings.fail(
        'RECORD_AFTER_FINAL',
        this.locate(index),
        `record seq ${seq} of segment ${id} comes after ${why}`,
      );
    }
    if (seq !== s.nextSeq) {
      const what = seq > s.nextSeq ? `${seq - s.nextSeq} record(s) missing` : 'out of order or repeated';
      this.findings.fail(
        'SEQUENCE_GAP',
        this.locate(index),
        `segment ${id}: seq ${seq} where ${s.nextSeq} was due (${what})`,
      );
    }
    if (seq + 1 > s.nextSeq) s.nextSeq = seq + 1;
    s.lastSeq = seq;
    if (r.final) {
      s.final ??= { index, type: r.type };
    } else if (r.type === RecordType.SESSION_END) {
      this.findings.fail(
        'FINAL_MISSING',
        this.locate(index),
        `segment ${id}: SESSION_END (seq ${seq}) is not flagged FINAL`,
      );
    }
  }

  /** Open segments: neither FINAL nor accounted for by a crash. */
  #open(): SegmentState[] {
    return [...this.#segments.values()].filter((s) => !s.final && !s.crashed && !s.flagged);
  }

  /**
   * A CRASH_RECOVERY at leaf `index`: every segment open now must be named, with its last seq
   * (FORMAT.md §6); a named segment must be open (or named by an earlier recovery already).
   */
  crashRecovery(index: number, body: Record<string, unknown>): void {
    const where = this.locate(index);
    const listed = Array.isArray(body.open_segments) ? body.open_segments : undefined;
    if (!listed) {
      this.findings.fail('CRASH_RECOVERY_MISMATCH', where, 'the body has no open_segments list');
      return;
    }
    const named = new Set<string>();
    for (const item of listed as unknown[]) {
      const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
      const id = str(o.segment_id);
      const lastSeq = o.last_seq;
      if (id === undefined || typeof lastSeq !== 'number') {
        this.findings.fail(
          'CRASH_RECOVERY_MISMATCH',
          where,
          'an open_segments item is not {"segment_id","last_seq"}',
        );
        continue;
      }
      named.add(id);
      const s = this.#segments.get(id);
      if (!s) {
        if (this.mode === 'complete')
          this.findings.fail(
            'CRASH_RECOVERY_MISMATCH',
            where,
            `names segment ${id}, which is not in the log`,
          );
        continue;
      }
      if (s.final) {
        this.findings.fail(
          'CRASH_RECOVERY_MISMATCH',
          where,
          `names segment ${id}, which was closed by its FINAL record at leaf ${s.final.index}`,
        );
        continue;
      }
      if (s.lastSeq !== lastSeq) {
        this.findings.fail(
          'CRASH_RECOVERY_MISMATCH',
          where,
          `names segment ${id} with last seq ${lastSeq}, but the log holds it up to seq ${s.lastSeq}`,
        );
      }
      s.crashed = true;
    }
    for (const s of this.#open()) {
      if (named.has(s.id)) continue;
      this.findings.fail(
        'SEGMENT_OPEN_UNACCOUNTED',
        this.locate(s.headerIndex),
        `segment ${s.id} has no FINAL record and the CRASH_RECOVERY at leaf ${index} does not name it`,
      );
      s.flagged = true;
    }
    this.#runSegments = new Set();
  }

  /** LOG_START: a new run. */
  runStarted(): void {
    this.#runSegments = new Set();
  }

  /** LOG_STOP at leaf `index`: the writer ends every session first, so every segment of the run is closed. */
  runStopped(index: number): void {
    for (const id of this.#runSegments) {
      const s = this.#segments.get(id);
      if (!s || s.final || s.crashed || s.flagged) continue;
      this.findings.fail(
        'FINAL_MISSING',
        this.locate(s.headerIndex),
        `segment ${id} has no FINAL record, and its run stopped (LOG_STOP at leaf ${index})`,
      );
      s.flagged = true;
    }
    this.#runSegments = new Set();
  }

  /** Segments still open at the end of the source: a session in progress (or cut off by a partial bundle). */
  stillOpen(): { id: string; headerIndex: number | undefined; lastSeq: number }[] {
    return this.#open().map((s) => ({ id: s.id, headerIndex: s.headerIndex, lastSeq: s.lastSeq }));
  }

  provenance(): SegmentProvenance[] {
    return [...this.#segments.values()].map((s): SegmentProvenance => {
      const p = s.header?.provenance ?? {};
      const { fips, backend, library, fipsProvider, fipsProviderVersion, fipsModuleSha256, ...other } = p;
      return {
        segment: s.id,
        ...(s.session !== undefined ? { session: s.session } : {}),
        ...(s.headerIndex !== undefined ? { headerIndex: s.headerIndex } : {}),
        ...(s.header ? { created: isoFromUs(s.header.createdUs) } : {}),
        ...(typeof fips === 'boolean' ? { fips } : {}),
        ...(str(backend) !== undefined ? { backend: str(backend) } : {}),
        ...(str(library) !== undefined ? { library: str(library) } : {}),
        ...(str(fipsProvider) !== undefined ? { fipsProvider: str(fipsProvider) } : {}),
        ...(str(fipsProviderVersion) !== undefined ? { fipsProviderVersion: str(fipsProviderVersion) } : {}),
        ...(str(fipsModuleSha256) !== undefined ? { fipsModuleSha256: str(fipsModuleSha256) } : {}),
        other,
        records: s.records,
        state: s.final ? 'final' : s.crashed ? 'crashed' : 'open',
      };
    });
  }
}
