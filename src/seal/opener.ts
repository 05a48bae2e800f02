/**
 * The segment opener: unwraps a segment's DEK with one recipient's private key, checks the key
 * commitment before anything is opened, then opens records (docs/FORMAT.md §3.2, §4). Nothing
 * unauthenticated is released: a bad tag throws, and the provider discards the partial plaintext.
 */
import { CryptoError, type CryptoProvider, type PrivateKey } from '../crypto/index.js';
import { SealError } from './errors.js';
import { AAD_LEN, decodeSealedRecord, HEADER_HASH_LEN, IV_LEN, RECORD_PREFIX_LEN } from './format/record.js';
import { decodeSegmentHeader, type SegmentHeader } from './format/segment-header.js';
import { recordTypeName, type RecordType } from './format/types.js';
import { DEK_LEN, deriveSegmentKeys, recipientKeyId } from './segment-keys.js';

/** An authenticated record. */
export interface OpenedRecord {
  seq: bigint;
  type: RecordType;
  final: boolean;
  timeUs: bigint;
  plaintext: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Non-secret byte comparison (ids, not keys or tags). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class SegmentOpener {
  /** The decoded segment header. */
  readonly header: SegmentHeader;
  /** H(segment header entry). */
  readonly headerHash: Uint8Array;

  readonly #provider: CryptoProvider;
  /** Reused per record: the record key, the IV (u32 0 || u64 seq) and the AAD (header hash || prefix). */
  readonly #gcm: { readonly key: Uint8Array; readonly iv: Uint8Array; readonly aad: Uint8Array };
  readonly #ivView: DataView;

  private constructor(
    provider: CryptoProvider,
    header: SegmentHeader,
    headerHash: Uint8Array,
    recordKey: Uint8Array,
  ) {
    this.#provider = provider;
    this.header = header;
    this.headerHash = headerHash;
    const iv = new Uint8Array(IV_LEN);
    const aad = new Uint8Array(AAD_LEN);
    aad.set(headerHash);
    this.#gcm = { key: recordKey, iv, aad };
    this.#ivView = new DataView(iv.buffer);
  }

  /**
   * Decodes the header (MALFORMED_ENTRY), finds the recipient entry of `privateKey` (NO_RECIPIENT_FOR_KEY),
   * unwraps the DEK (KEY_UNWRAP_FAILED) and checks the commitment in constant time
   * (KEY_COMMITMENT_MISMATCH). Policy refusals and backend failures pass through as CryptoError.
   */
  static async open(
    provider: CryptoProvider,
    headerBytes: Uint8Array,
    privateKey: PrivateKey,
  ): Promise<SegmentOpener> {
    const header = decodeSegmentHeader(headerBytes);
    const segment = hex(header.segmentId);
    const keyId = recipientKeyId(provider, privateKey.publicKey);
    const recipient = header.recipients.find((r) => sameBytes(r.keyId, keyId));
    if (!recipient) {
      throw new SealError(
        'NO_RECIPIENT_FOR_KEY',
        `segment ${segment} is not sealed to key ${hex(keyId)} (${privateKey.ref}); its recipients are ` +
          header.recipients.map((r) => hex(r.keyId)).join(', '),
      );
    }
    let dek: Uint8Array;
    try {
      dek = await provider.oaepDecrypt(privateKey, recipient.wrappedDek);
    } catch (err) {
      if (
        err instanceof CryptoError &&
        (err.code === 'AUTHENTICATION_FAILED' || err.code === 'INVALID_INPUT')
      ) {
        throw new SealError(
          'KEY_UNWRAP_FAILED',
          `segment ${segment}: the DEK wrapped to key ${hex(keyId)} does not unwrap: ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
    let keys: { recordKey: Uint8Array; commitment: Uint8Array };
    try {
      if (dek.length !== DEK_LEN) {
        throw new SealError(
          'KEY_UNWRAP_FAILED',
          `segment ${segment}: the unwrapped DEK has ${dek.length} bytes, want ${DEK_LEN}`,
        );
      }
      keys = deriveSegmentKeys(provider, dek, header.segmentId);
    } finally {
      dek.fill(0);
    }
    if (!provider.equal(keys.commitment, header.commitment)) {
      keys.recordKey.fill(0);
      throw new SealError(
        'KEY_COMMITMENT_MISMATCH',
        `segment ${segment}: the DEK unwrapped with key ${hex(keyId)} does not match the header's key commitment`,
      );
    }
    const headerHash = provider.digest('sha256', headerBytes);
    if (headerHash.length !== HEADER_HASH_LEN) throw new SealError('INVALID_ARGUMENT', 'header hash size');
    return new SegmentOpener(provider, header, headerHash, keys.recordKey);
  }

  get segmentId(): Uint8Array {
    return this.header.segmentId;
  }

  /**
   * Opens one sealed record entry of this segment. Throws MALFORMED_ENTRY (undecodable), SEGMENT_MISMATCH
   * (another segment's record) or RECORD_AUTHENTICATION_FAILED (anything altered: metadata, position, bytes).
   * Ordering (no gaps, one FINAL) is the verifier's check, not this one's.
   */
  open(recordBytes: Uint8Array): OpenedRecord {
    const record = decodeSealedRecord(recordBytes);
    if (!sameBytes(record.segmentId, this.header.segmentId)) {
      throw new SealError(
        'SEGMENT_MISMATCH',
        `record seq ${record.seq} belongs to segment ${hex(record.segmentId)}, not ${hex(this.header.segmentId)}`,
      );
    }
    const gcm = this.#gcm;
    gcm.aad.set(recordBytes.subarray(0, RECORD_PREFIX_LEN), HEADER_HASH_LEN);
    this.#ivView.setBigUint64(4, record.seq);
    let plaintext: Uint8Array;
    try {
      plaintext = this.#provider.aesGcmOpen(gcm, record.sealed);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'AUTHENTICATION_FAILED') {
        throw new SealError(
          'RECORD_AUTHENTICATION_FAILED',
          `record seq ${record.seq} (${recordTypeName(record.type)}) of segment ${hex(this.header.segmentId)} ` +
            'does not authenticate: altered, moved or from another segment',
          { cause: err },
        );
      }
      throw err;
    }
    return { seq: record.seq, type: record.type, final: record.final, timeUs: record.timeUs, plaintext };
  }
}
