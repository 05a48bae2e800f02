/**
 * Decrypt: the log's entries and one recipient's RSA private key in, the authenticated events out
 * (docs/FORMAT.md §3.2, §4; design brief §2: "Decrypt checks the commitment and every tag, and releases
 * nothing unauthenticated").
 *
 * - A segment header addressed to the key (its key id is among the recipients) is opened with
 *   SegmentOpener, which unwraps the DEK and checks the key commitment before any record is opened.
 * - Every record of an opened segment is opened (GCM tag over header hash, position and metadata) and
 *   must come in order: seq 0, 1, 2, … with nothing after FINAL. A record that authenticates but is out
 *   of order (a replayed or dropped record) is refused as well: decrypt releases a segment's records only
 *   as the sealer wrote them.
 * - Segments addressed to other keys are counted, not opened. System entries are emitted as they are
 *   (plaintext; the tree and the checkpoint signatures authenticate them, which is `verify`'s job).
 *
 * Failure policy: by default decryption stops at the first failure and releases nothing after it (the
 * error names the leaf index). With `keepGoing`, a failure abandons only its segment: no later record of
 * that segment is released, other segments go on, and every failure is listed in `summary.failures`.
 */
import type { CryptoProvider, PrivateKey } from '../crypto/index.js';
import { SealError } from '../seal/errors.js';
import type { JsonObject } from '../seal/format/json.js';
import { decodePayload, type DataPayload } from '../seal/format/payload.js';
import { decodeSegmentHeader, ID_LEN } from '../seal/format/segment-header.js';
import { decodeSystemEntry } from '../seal/format/system-entry.js';
import {
  EntryKind,
  recordTypeName,
  systemTypeName,
  type RecordTypeName,
  type SystemTypeName,
} from '../seal/format/types.js';
import { SegmentOpener } from '../seal/opener.js';
import { recipientKeyId } from '../seal/segment-keys.js';
import {
  dataFields,
  isoMicros,
  mergeFields,
  type DecryptedEvent,
  type RecordEvent,
  type SystemEvent,
} from './decrypt-event.js';

export type { DecryptedEvent, RecordEvent, SystemEvent } from './decrypt-event.js';

/**
 * An authenticated record before it is shaped as JSON: what the auditor tools (src/audit/commands,
 * sessions, casts) consume. `payload` is the record's JSON object, or `{channel, data}` for DATA_*.
 */
export interface OpenedRecord {
  readonly kind: 'record';
  readonly index: number;
  readonly session: string;
  readonly segment: string;
  readonly seq: number;
  readonly type: RecordTypeName;
  readonly final: boolean;
  /** Microseconds since the epoch. */
  readonly timeUs: bigint;
  readonly payload: JsonObject | DataPayload;
}

/** A system entry before it is shaped as JSON. */
export interface OpenedSystem {
  readonly kind: 'system';
  readonly index: number;
  readonly type: SystemTypeName;
  readonly timeUs: bigint;
  readonly body: JsonObject;
}

export type OpenedEntry = OpenedRecord | OpenedSystem;

/** The JSON line shape (decrypt-event.ts) of an opened entry. */
export function toDecryptedEvent(entry: OpenedEntry): DecryptedEvent {
  if (entry.kind === 'system') {
    const event: Record<string, unknown> = {
      kind: 'system',
      index: entry.index,
      type: entry.type,
      time: isoMicros(entry.timeUs),
    };
    mergeFields(event, entry.body);
    return event as SystemEvent;
  }
  const event: Record<string, unknown> = {
    kind: 'record',
    index: entry.index,
    session: entry.session,
    segment: entry.segment,
    seq: entry.seq,
    type: entry.type,
    final: entry.final,
    time: isoMicros(entry.timeUs),
  };
  mergeFields(
    event,
    isDataPayload(entry) ? dataFields(entry.payload as DataPayload) : (entry.payload as JsonObject),
  );
  return event as RecordEvent;
}

/** True for DATA_IN, DATA_OUT and DATA_ERR, whose payload is `{channel, data}`. */
export function isDataPayload(record: OpenedRecord): boolean {
  return record.type === 'DATA_IN' || record.type === 'DATA_OUT' || record.type === 'DATA_ERR';
}

export type DecryptErrorCode =
  /** No segment header in the input names the key as a recipient. */
  | 'NO_SEGMENT_FOR_KEY'
  /** A session filter was given and no segment of that session is in the input. */
  | 'SESSION_NOT_FOUND'
  /** The key cannot unwrap DEKs: not an RSA key. */
  | 'WRONG_KEY_TYPE'
  /** The DEK wrapped to this key does not unwrap (RSA-OAEP failure, or not 32 bytes). */
  | 'KEY_UNWRAP_FAILED'
  /** The unwrapped DEK does not give the header's key commitment (FORMAT.md §4). */
  | 'KEY_COMMITMENT_MISMATCH'
  /** A record's GCM tag does not verify (altered ciphertext, metadata or position). */
  | 'RECORD_AUTHENTICATION_FAILED'
  /** An entry does not decode (FORMAT.md §3), or an authenticated plaintext does not fit its type. */
  | 'MALFORMED_ENTRY'
  | 'MALFORMED_PAYLOAD'
  /** A segment id appears in two headers. */
  | 'DUPLICATE_SEGMENT'
  /** An authenticated record is not the next seq of its segment (replayed, reordered or one missing). */
  | 'RECORD_OUT_OF_SEQUENCE'
  /** An authenticated record follows its segment's FINAL record. */
  | 'RECORD_AFTER_FINAL'
  /** Reading the entries failed (a store or bundle that cannot be read). */
  | 'SOURCE_FAILED';

/** One error type for decrypt, with the leaf index where it happened (when it happened at one). */
export class DecryptError extends Error {
  override readonly name = 'DecryptError';
  constructor(
    readonly code: DecryptErrorCode,
    message: string,
    /** The leaf index of the entry that failed. */
    readonly index?: number,
    options?: { cause?: unknown },
  ) {
    super(index === undefined ? message : `leaf ${index}: ${message}`, options);
  }
}

export interface DecryptOptions {
  /** Only records of this session (32 hex digits); system entries are then left out. */
  readonly session?: string;
  /** Leave system entries out. */
  readonly recordsOnly?: boolean;
  /** On a failure, abandon only the failing segment and go on (see the file comment). */
  readonly keepGoing?: boolean;
  /**
   * A range bundle's first leaf (FORMAT.md §7): the entries before it are outside the selection, so a
   * segment whose header lies before it resumes, at its first record from this leaf on, at whatever seq
   * that record has (the records between are not in the input). Every later record must follow in order.
   */
  readonly rangeFrom?: number;
  /** Called with the number of entries read so far, every 1024 entries and at the end. */
  readonly onProgress?: (entriesRead: number) => void;
}

export interface DecryptSummary {
  /** Entries read. */
  entries: number;
  /** Segment headers addressed to the key, opened (commitment checked). */
  segmentsOpened: number;
  /** Segment headers (of the selected session, if any) not addressed to the key. */
  segmentsNotAddressed: number;
  /** Records released. */
  records: number;
  /** System entries released. */
  systemEntries: number;
  /** Records of segments not addressed to the key (not opened). */
  recordsNotAddressed: number;
  /** Records whose segment header is not in the input (a partial bundle may start mid-segment). */
  recordsWithoutHeader: number;
  /** With `keepGoing`: records not released because their segment failed earlier. */
  recordsAbandoned: number;
  /** With `keepGoing`: every failure, in leaf order. Without it the first failure is thrown instead. */
  failures: DecryptError[];
}

/** A log entry as the sources give it (src/audit/source.ts). `bytes` may be reused after the next pull. */
export interface EntryInput {
  readonly index: number;
  readonly bytes: Uint8Array;
}

interface OpenSegment {
  readonly opener: SegmentOpener;
  readonly session: string;
  readonly segment: string;
  nextSeq: bigint;
  finalized: boolean;
  /** The header is before a range's first leaf: the first record in the range sets nextSeq. */
  resumes: boolean;
}

/** What became of a segment header: opened, or skipped (and why). */
type SegmentState = OpenSegment | 'not-addressed' | 'other-session' | 'failed';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const PROGRESS_EVERY = 1024;
const SESSION_HEX = /^[0-9a-fA-F]{32}$/;

/** The SealError codes the opener and decoders throw that decrypt reports under the same name. */
const PASSED_THROUGH: ReadonlySet<string> = new Set<DecryptErrorCode>([
  'KEY_UNWRAP_FAILED',
  'KEY_COMMITMENT_MISMATCH',
  'RECORD_AUTHENTICATION_FAILED',
  'MALFORMED_ENTRY',
  'MALFORMED_PAYLOAD',
]);

function fromSealError(err: unknown, index: number): DecryptError {
  if (err instanceof SealError && PASSED_THROUGH.has(err.code)) {
    return new DecryptError(err.code as DecryptErrorCode, err.message, index, { cause: err });
  }
  if (err instanceof SealError && err.code === 'SEGMENT_MISMATCH') {
    return new DecryptError('RECORD_AUTHENTICATION_FAILED', err.message, index, { cause: err });
  }
  throw err; // a bug or a backend failure: not a finding about the log
}

/**
 * Decrypts `entries` (leaf order) with `key`. The result is an async iterable of events; its `summary`
 * is complete once the iteration ends. Throws DecryptError: at the first failure (naming the leaf), and
 * at the end when no segment was addressed to the key (NO_SEGMENT_FOR_KEY) or the selected session
 * was not found (SESSION_NOT_FOUND).
 */
export function decryptLog(
  provider: CryptoProvider,
  entries: Iterable<EntryInput>,
  key: PrivateKey,
  options: DecryptOptions = {},
): LogDecryption {
  return new LogDecryption(provider, entries, key, options);
}

export class LogDecryption implements AsyncIterable<DecryptedEvent> {
  readonly summary: DecryptSummary = {
    entries: 0,
    segmentsOpened: 0,
    segmentsNotAddressed: 0,
    records: 0,
    systemEntries: 0,
    recordsNotAddressed: 0,
    recordsWithoutHeader: 0,
    recordsAbandoned: 0,
    failures: [],
  };
  /** Hex key id of the key: SHA-256 of its SPKI DER (FORMAT.md §3.1). */
  readonly keyId: string;
  readonly #keyIdBytes: Uint8Array;
  #started = false;

  constructor(
    private readonly provider: CryptoProvider,
    private readonly input: Iterable<EntryInput>,
    private readonly key: PrivateKey,
    private readonly options: DecryptOptions,
  ) {
    if (key.algorithm.type !== 'rsa') {
      throw new DecryptError(
        'WRONG_KEY_TYPE',
        `${key.ref} is an ${key.algorithm.type.toUpperCase()} key; decrypt needs an RSA recipient key`,
      );
    }
    if (options.session !== undefined && !SESSION_HEX.test(options.session)) {
      throw new DecryptError('SESSION_NOT_FOUND', `session "${options.session}" is not 32 hex digits`);
    }
    this.#keyIdBytes = recipientKeyId(provider, key.publicKey);
    this.keyId = hex(this.#keyIdBytes);
  }

  [Symbol.asyncIterator](): AsyncIterator<DecryptedEvent> {
    return this.#events();
  }

  async *#events(): AsyncGenerator<DecryptedEvent> {
    for await (const entry of this.opened()) yield toDecryptedEvent(entry);
  }

  /** The same entries, unshaped (OpenedEntry). A LogDecryption is iterated once, either way. */
  opened(): AsyncGenerator<OpenedEntry> {
    if (this.#started) throw new Error('a LogDecryption can be iterated once');
    this.#started = true;
    return this.#run();
  }

  async *#run(): AsyncGenerator<OpenedEntry> {
    const { recordsOnly, onProgress } = this.options;
    const session = this.options.session?.toLowerCase();
    const withSystem = !recordsOnly && session === undefined;
    const segments = new Map<string, SegmentState>();
    const summary = this.summary;
    let sessionSeen = false;
    const iterator = this.input[Symbol.iterator]();
    for (;;) {
      let next: IteratorResult<EntryInput>;
      try {
        next = iterator.next();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new DecryptError(
          'SOURCE_FAILED',
          `reading entry ${summary.entries} failed: ${why}`,
          undefined,
          {
            cause: err,
          },
        );
      }
      if (next.done) break;
      const { index, bytes } = next.value;
      summary.entries++;
      if (onProgress && summary.entries % PROGRESS_EVERY === 0) onProgress(summary.entries);
      try {
        switch (bytes[0]) {
          case EntryKind.SEGMENT_HEADER: {
            const header = decodeSegmentHeader(bytes);
            const id = hex(header.segmentId);
            if (segments.has(id)) {
              segments.set(id, 'failed'); // release nothing more under either header
              throw new DecryptError('DUPLICATE_SEGMENT', `a second header for segment ${id}`, index);
            }
            const sessionHex = hex(header.sessionId);
            if (session !== undefined && sessionHex !== session) {
              segments.set(id, 'other-session');
              break;
            }
            sessionSeen = true;
            if (!header.recipients.some((r) => this.provider.equal(r.keyId, this.#keyIdBytes))) {
              segments.set(id, 'not-addressed');
              summary.segmentsNotAddressed++;
              break;
            }
            segments.set(id, 'failed'); // until the commitment is checked
            const opener = await SegmentOpener.open(this.provider, bytes, this.key);
            const resumes = this.options.rangeFrom !== undefined && index < this.options.rangeFrom;
            segments.set(id, {
              opener,
              session: sessionHex,
              segment: id,
              nextSeq: 0n,
              finalized: false,
              resumes,
            });
            summary.segmentsOpened++;
            break;
          }
          case EntryKind.SEALED_RECORD: {
            const event = this.#openRecord(segments, index, bytes);
            if (event) {
              summary.records++;
              yield event;
            }
            break;
          }
          case EntryKind.SYSTEM: {
            if (!withSystem) break;
            const entry = decodeSystemEntry(bytes);
            summary.systemEntries++;
            yield {
              kind: 'system',
              index,
              type: systemTypeName(entry.type) as SystemTypeName,
              timeUs: entry.timeUs,
              body: entry.body,
            };
            break;
          }
          default:
            throw new DecryptError(
              'MALFORMED_ENTRY',
              `entry: unknown kind 0x${(bytes[0] ?? 0).toString(16)}`,
              index,
            );
        }
      } catch (err) {
        const failure = err instanceof DecryptError ? err : fromSealError(err, index);
        if (!this.options.keepGoing) throw failure;
        summary.failures.push(failure);
        this.#abandon(segments, bytes);
      }
    }
    onProgress?.(summary.entries);
    if (session !== undefined && !sessionSeen) {
      throw new DecryptError('SESSION_NOT_FOUND', `no segment of session ${session} is in this log`);
    }
    if (summary.segmentsOpened === 0 && summary.failures.length === 0) {
      const others = summary.segmentsNotAddressed;
      throw new DecryptError(
        'NO_SEGMENT_FOR_KEY',
        `no segment is addressed to this key (key id ${this.keyId})` +
          (others > 0 ? `; ${others} segment${others === 1 ? ' is' : 's are'} sealed to other keys` : ''),
      );
    }
  }

  /** Opens one record, or returns undefined for a record of a segment that is not ours to open. */
  #openRecord(
    segments: Map<string, SegmentState>,
    index: number,
    bytes: Uint8Array,
  ): OpenedRecord | undefined {
    if (bytes.length < 1 + ID_LEN) {
      throw new DecryptError('MALFORMED_ENTRY', `sealed record: ${bytes.length} bytes, too short`, index);
    }
    const state = segments.get(hex(bytes.subarray(1, 1 + ID_LEN)));
    if (state === undefined) {
      this.summary.recordsWithoutHeader++;
      return undefined;
    }
    if (state === 'not-addressed') this.summary.recordsNotAddressed++;
    if (state === 'failed') this.summary.recordsAbandoned++;
    if (typeof state !== 'object') return undefined;
    const record = state.opener.open(bytes); // authenticates, or throws
    if (state.resumes && index >= (this.options.rangeFrom ?? 0)) {
      state.nextSeq = record.seq; // the segment's earlier records lie before the range
      state.resumes = false;
    }
    if (state.finalized) {
      throw new DecryptError(
        'RECORD_AFTER_FINAL',
        `record seq ${record.seq} (${recordTypeName(record.type)}) follows the FINAL record of segment ${state.segment}`,
        index,
      );
    }
    if (record.seq !== state.nextSeq) {
      throw new DecryptError(
        'RECORD_OUT_OF_SEQUENCE',
        `record seq ${record.seq} of segment ${state.segment} where seq ${state.nextSeq} was due ` +
          '(a record replayed, reordered or missing)',
        index,
      );
    }
    state.nextSeq++;
    if (record.final) state.finalized = true;
    return {
      kind: 'record',
      index,
      session: state.session,
      segment: state.segment,
      seq: Number(record.seq),
      type: recordTypeName(record.type) as RecordTypeName,
      final: record.final,
      timeUs: record.timeUs,
      payload: decodePayload(record.type, record.plaintext),
    };
  }

  /**
   * keepGoing: a failed record's segment releases nothing more. (A header that fails has its state set
   * to 'failed' already, or did not decode far enough to name a segment, so its records have no header.)
   */
  #abandon(segments: Map<string, SegmentState>, bytes: Uint8Array): void {
    if (bytes[0] !== EntryKind.SEALED_RECORD || bytes.length < 1 + ID_LEN) return;
    const id = hex(bytes.subarray(1, 1 + ID_LEN));
    if (segments.has(id)) segments.set(id, 'failed');
  }
}
