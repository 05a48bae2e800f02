/**
 * The segment sealer: one DEK, one segment header, then records sealed with AES-256-GCM under the
 * derived record key (docs/FORMAT.md §3.1, §3.2, §4). This is on the record path of every SSH byte, so
 * `seal` reuses its IV and AAD buffers and encodes each record entry with one allocation of its own.
 */
import type { CryptoProvider, PublicKey } from '../crypto/index.js';
import { SealError } from './errors.js';
import {
  AAD_LEN,
  HEADER_HASH_LEN,
  IV_LEN,
  MAX_PLAINTEXT_LEN,
  MAX_RECORDS,
  RECORD_PREFIX_LEN,
  RecordPrefix,
  TAG_LEN,
} from './format/record.js';
import {
  encodeSegmentHeader,
  ID_LEN,
  MAX_RECIPIENTS,
  SUITE_1,
  type Recipient,
  type SegmentHeader,
} from './format/segment-header.js';
import type { JsonObject } from './format/json.js';
import { EntryKind, FLAG_FINAL, type RecordType } from './format/types.js';
import { DEK_LEN, deriveSegmentKeys, recipientKeyId } from './segment-keys.js';

/** Recipient keys below this size are accepted with a warning (FORMAT.md §2). */
export const RECOMMENDED_RSA_BITS = 3072;

export interface SegmentSealerOptions {
  /** The log's origin (FORMAT.md §3.1). */
  origin: string;
  /** 16 bytes, random per SSH session, shared by its segments. */
  sessionId: Uint8Array;
  /** The previous segment of the same session; 16 zero bytes when absent. */
  prevSegmentId?: Uint8Array;
  /** Must state the provider's actual FIPS mode and backend: it is an attestation (FORMAT.md §3.1.1). */
  provenance: JsonObject;
  /** 1..16 RSA public keys (≥ 2048 bits; ≥ 3072 recommended), each able to open the segment. */
  recipients: readonly PublicKey[];
  /** Microseconds since the Unix epoch. */
  createdUs: bigint;
}

export interface SealOptions {
  /** Microseconds since the Unix epoch. */
  timeUs: bigint;
  /** The segment's last record (FORMAT.md §3.2). After it, `seal` throws SEGMENT_FINALIZED. */
  final?: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class SegmentSealer {
  /** The segment header entry, as it goes into the log. */
  readonly headerBytes: Uint8Array;
  /** H(segment header entry), bound into every record's AAD. */
  readonly headerHash: Uint8Array;
  /** Non-fatal findings, such as 2048-bit recipient keys; for the operator's log. */
  readonly warnings: readonly string[];

  readonly #provider: CryptoProvider;
  readonly #header: SegmentHeader;
  /** Reused per record: the record key, the IV (u32 0 || u64 seq) and the AAD (header hash || prefix). */
  readonly #gcm: { readonly key: Uint8Array; readonly iv: Uint8Array; readonly aad: Uint8Array };
  readonly #ivView: DataView;
  readonly #prefix: RecordPrefix;
  #seq = 0;
  #finalized = false;
  #plaintextBytes = 0;

  private constructor(
    provider: CryptoProvider,
    header: SegmentHeader,
    headerBytes: Uint8Array,
    recordKey: Uint8Array,
    warnings: string[],
  ) {
    this.#provider = provider;
    this.#header = header;
    this.headerBytes = headerBytes;
    this.headerHash = provider.digest('sha256', headerBytes);
    if (this.headerHash.length !== HEADER_HASH_LEN)
      throw new SealError('INVALID_ARGUMENT', 'header hash size');
    this.warnings = Object.freeze(warnings);
    const iv = new Uint8Array(IV_LEN);
    const aad = new Uint8Array(AAD_LEN);
    aad.set(this.headerHash);
    this.#gcm = { key: recordKey, iv, aad };
    this.#ivView = new DataView(iv.buffer);
    this.#prefix = new RecordPrefix(aad.subarray(HEADER_HASH_LEN), header.segmentId);
  }

  /**
   * Starts a segment: a random DEK and segment id, the DEK wrapped to every recipient with RSA-OAEP-SHA-256,
   * the key commitment, the header. The DEK is zeroed once the record key and commitment are derived.
   */
  static create(provider: CryptoProvider, options: SegmentSealerOptions): SegmentSealer {
    const { recipients, provenance } = options;
    if (recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
      throw new SealError(
        'INVALID_ARGUMENT',
        `${recipients.length} recipients; a segment needs 1..${MAX_RECIPIENTS}`,
      );
    }
    const info = provider.info();
    if (provenance.fips !== info.fipsMode || provenance.backend !== info.backend) {
      throw new SealError(
        'INVALID_ARGUMENT',
        `provenance says fips=${String(provenance.fips)} backend=${String(provenance.backend)}, but the provider ` +
          `is fips=${info.fipsMode} backend=${info.backend}`,
      );
    }
    const warnings: string[] = [];
    const keyIds = recipients.map((key, i) => {
      if (key.algorithm.type !== 'rsa') {
        throw new SealError(
          'INVALID_ARGUMENT',
          `recipient ${i} is an ${key.algorithm.type} key; suite 1 wraps to RSA`,
        );
      }
      provider.policy.checkKey(key.algorithm); // refuses RSA below 2048 bits (CryptoError POLICY_REFUSED)
      const keyId = recipientKeyId(provider, key);
      if (key.algorithm.bits < RECOMMENDED_RSA_BITS) {
        warnings.push(
          `recipient ${hex(keyId)} is RSA-${key.algorithm.bits}: accepted, but ${RECOMMENDED_RSA_BITS} bits or ` +
            'more are recommended (docs/FORMAT.md §2)',
        );
      }
      return keyId;
    });

    const segmentId = provider.randomBytes(ID_LEN);
    const dek = provider.randomBytes(DEK_LEN);
    let keys: { recordKey: Uint8Array; commitment: Uint8Array };
    let wrapped: Recipient[];
    try {
      wrapped = recipients.map((key, i) => ({
        keyId: keyIds[i],
        wrappedDek: provider.oaepEncrypt(key, dek),
      }));
      keys = deriveSegmentKeys(provider, dek, segmentId);
    } finally {
      dek.fill(0);
    }
    const header: SegmentHeader = {
      kind: EntryKind.SEGMENT_HEADER,
      suite: SUITE_1,
      origin: options.origin,
      segmentId,
      prevSegmentId: options.prevSegmentId?.slice() ?? new Uint8Array(ID_LEN),
      sessionId: options.sessionId.slice(),
      createdUs: options.createdUs,
      provenance,
      recipients: wrapped,
      commitment: keys.commitment,
    };
    let headerBytes: Uint8Array;
    try {
      headerBytes = encodeSegmentHeader(header);
    } catch (err) {
      keys.recordKey.fill(0);
      throw err;
    }
    return new SegmentSealer(provider, header, headerBytes, keys.recordKey, warnings);
  }

  /** A copy of the segment id. */
  get segmentId(): Uint8Array {
    return this.#header.segmentId.slice();
  }

  /** A copy of the session id. */
  get sessionId(): Uint8Array {
    return this.#header.sessionId.slice();
  }

  /** The seq the next record gets, which is also the number of records sealed so far. */
  get nextSeq(): bigint {
    return BigInt(this.#seq);
  }

  /** True once a FINAL record was sealed. */
  get finalized(): boolean {
    return this.#finalized;
  }

  /** The plaintext bytes sealed so far, for the 1 GiB rollover (FORMAT.md §1). */
  get plaintextBytes(): number {
    return this.#plaintextBytes;
  }

  /**
   * Seals one record and returns its entry bytes. The record at seq 2^20 - 1 must be FINAL, so that a
   * full segment can still be closed: otherwise SEGMENT_FULL, and the caller rolls over first.
   */
  seal(type: RecordType, plaintext: Uint8Array, options: SealOptions): Uint8Array {
    const final = this.#begin(type, plaintext.length, options);
    const gcm = this.#gcm;
    // The entry is allocated once and the provider seals straight into it, after the prefix.
    const out = new Uint8Array(RECORD_PREFIX_LEN + plaintext.length + TAG_LEN);
    const sealed = this.#provider.aesGcmSeal(gcm, plaintext, { buffer: out, offset: RECORD_PREFIX_LEN });
    if (sealed.length !== plaintext.length + TAG_LEN) {
      throw new SealError('INVALID_ARGUMENT', `provider returned ${sealed.length} sealed bytes`);
    }
    if (sealed.buffer !== out.buffer || sealed.byteOffset !== out.byteOffset + RECORD_PREFIX_LEN) {
      out.set(sealed, RECORD_PREFIX_LEN); // a backend that returned its own buffer
    }
    out.set(this.#prefix.bytes);
    this.#commit(plaintext.length, final);
    return out;
  }

  /**
   * `seal` for a plaintext given in parts (a data payload's u32 channel and its bytes), without joining
   * them: returns the entry as parts (the prefix, the ciphertext of each part, the tag), whose
   * concatenation is exactly the entry `seal` returns for the joined plaintext. The log hashes and
   * stores the parts as they are: the store keeps large parts by reference until they are written.
   */
  sealParts(type: RecordType, plaintext: readonly Uint8Array[], options: SealOptions): Uint8Array[] {
    let length = 0;
    for (const p of plaintext) length += p.length;
    const final = this.#begin(type, length, options);
    const parts = this.#provider.aesGcmSealParts(this.#gcm, plaintext);
    let sealedLength = 0;
    for (const p of parts) sealedLength += p.length;
    if (sealedLength !== length + TAG_LEN) {
      throw new SealError('INVALID_ARGUMENT', `provider returned ${sealedLength} sealed bytes`);
    }
    const entry = [this.#prefix.bytes.slice(), ...parts];
    this.#commit(length, final);
    return entry;
  }

  /** Checks that a record of `length` plaintext bytes may be sealed next, and fills in its prefix. */
  #begin(type: RecordType, length: number, options: SealOptions): boolean {
    if (this.#finalized) {
      throw new SealError(
        'SEGMENT_FINALIZED',
        `segment ${hex(this.#header.segmentId)} is finalized; start a new one`,
      );
    }
    const seq = this.#seq;
    const final = options.final === true;
    if (seq >= MAX_RECORDS || (seq === MAX_RECORDS - 1 && !final)) {
      throw new SealError(
        'SEGMENT_FULL',
        `segment ${hex(this.#header.segmentId)} holds ${seq} records; the last of its 2^20 must be FINAL`,
      );
    }
    if (length > MAX_PLAINTEXT_LEN) {
      throw new SealError('INVALID_ARGUMENT', `plaintext of ${length} bytes does not fit a record`);
    }
    this.#prefix.set(BigInt(seq), type, final ? FLAG_FINAL : 0, options.timeUs, length + TAG_LEN);
    this.#ivView.setUint32(8, seq); // u32 0 || u64 seq, with seq < 2^20 (SP 800-38D §8.2.1)
    return final;
  }

  /** The record is sealed: the next one gets the next seq. */
  #commit(length: number, final: boolean): void {
    this.#seq += 1;
    this.#plaintextBytes += length;
    if (final) this.#finalized = true;
  }
}
