/**
 * One SSH session's records: a chain of segments (docs/FORMAT.md §1). A segment rolls over at its record,
 * age or plaintext limit; the record that reaches the limit carries FINAL, and the next record opens a
 * new segment that names the old one as previous. SESSION_END is always FINAL.
 */
import { SealError } from './errors.js';
import { encodePayload, encodePayloadParts, type Payload } from './format/payload.js';
import { RecordType } from './format/types.js';
import type { SealedLog } from './log.js';
import { SegmentSealer } from './sealer.js';

export interface SegmentLimits {
  readonly maxRecords: number;
  readonly maxAgeMs: number;
  readonly maxPlaintextBytes: number;
}

export interface Appended {
  readonly index: number;
  readonly durable: Promise<void>;
}

export class SessionRecorder {
  #sealer: SegmentSealer | undefined;
  #segmentStartedMs = 0;
  #prevSegmentId: Uint8Array | undefined;
  #ended = false;
  #records = 0;

  constructor(
    private readonly log: SealedLog,
    readonly sessionId: Uint8Array,
    private readonly limits: SegmentLimits,
  ) {}

  get ended(): boolean {
    return this.#ended;
  }

  /** Records sealed so far in this session, across segments. */
  get records(): number {
    return this.#records;
  }

  /**
   * Seals and appends one event. JSON types take an object; data types take `{ channel, data }`, whose
   * bytes are sealed where they lie (no copy of the payload).
   */
  event<T extends RecordType>(type: T, value: Payload<T>): Appended {
    return this.record(type, encodePayloadParts(type, value));
  }

  /** Writes and fsyncs everything appended so far, now; rejects if the store fails first. */
  flush(): Promise<void> {
    return this.log.flush();
  }

  /**
   * Seals and appends one record whose plaintext is already encoded, whole or in parts (sealed, hashed
   * and stored without joining them; the entry is the same).
   */
  record(type: RecordType, plaintext: Uint8Array | readonly Uint8Array[], final = false): Appended {
    if (this.#ended) {
      // A session the log ended because it failed (log.ts): say why, as for any session of a failed log.
      const failure = this.log.failed;
      if (failure) {
        throw new SealError('LOG_FAILED', `the log failed and accepts nothing more: ${failure.message}`, {
          cause: failure,
        });
      }
      throw new SealError('SESSION_ENDED', 'the session has ended; nothing more can be recorded');
    }
    const ctx = this.log.sealingContext();
    const timeUs = ctx.clock();
    const sealer = this.#sealer ?? this.startSegment(timeUs);
    const ageMs = Number(timeUs / 1000n) - this.#segmentStartedMs;
    let length = 0;
    if (plaintext instanceof Uint8Array) length = plaintext.length;
    else for (const p of plaintext) length += p.length;
    const isLast =
      final ||
      sealer.nextSeq + 1n >= BigInt(this.limits.maxRecords) ||
      sealer.plaintextBytes + length >= this.limits.maxPlaintextBytes ||
      ageMs >= this.limits.maxAgeMs;
    const options = { timeUs, final: isLast };
    const entry =
      plaintext instanceof Uint8Array
        ? sealer.seal(type, plaintext, options)
        : sealer.sealParts(type, plaintext, options);
    const appended = this.log.append(entry);
    this.#records++;
    if (isLast) {
      this.#prevSegmentId = sealer.segmentId;
      this.#sealer = undefined;
    }
    return appended;
  }

  /** SESSION_END with FINAL; the log signs a checkpoint at every session end. */
  end(reason: string): Appended {
    const appended = this.record(
      RecordType.SESSION_END,
      encodePayload(RecordType.SESSION_END, { reason }),
      true,
    );
    this.#ended = true;
    this.log.sessionEnded(this);
    return appended;
  }

  private startSegment(timeUs: bigint): SegmentSealer {
    const ctx = this.log.sealingContext();
    const sealer = SegmentSealer.create(ctx.provider, {
      origin: ctx.origin,
      sessionId: this.sessionId,
      ...(this.#prevSegmentId ? { prevSegmentId: this.#prevSegmentId } : {}),
      provenance: ctx.provenance,
      recipients: [...ctx.recipients],
      createdUs: timeUs,
    });
    this.log.append(sealer.headerBytes);
    this.#sealer = sealer;
    this.#segmentStartedMs = Number(timeUs / 1000n);
    return sealer;
  }
}
