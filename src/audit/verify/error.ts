/**
 * What verification finds (docs/FORMAT.md §8): a closed set of codes named in the spec's terms, each
 * with the step of §8 that checks it. A finding is data, not an exception: the verifier collects every
 * failure (and warning) with its location and goes on where it can, so a tampered bundle yields the
 * specific content-level failure, not just the first hash mismatch. Tests assert on `code`; the CLI
 * prints `location: message`.
 */

/** §8 step 1: the bundle's own files. */
type ManifestCode =
  /** manifest.json is missing fields, not JSON, or not the sealgate-bundle-v1 format. */
  | 'MANIFEST_MALFORMED'
  /** manifest.sig is missing or malformed, names another manifest, or has no valid signature from a trusted signer. */
  | 'MANIFEST_SIGNATURE_INVALID'
  /** manifest.json says something the files contradict: origin, entry or checkpoint count, tree size, range. */
  | 'MANIFEST_CONTENT_MISMATCH'
  /** A file the format requires, or the manifest lists, is absent. */
  | 'FILE_MISSING'
  /** A file's SHA-256 differs from the manifest's. */
  | 'FILE_HASH_MISMATCH'
  /** proofs.json is not JSON or not the sealgate-proofs-v1 shape. */
  | 'PROOFS_MALFORMED'
  /** keys/signers.json is not the sealgate-signers-v1 shape, or contradicts itself or the log. */
  | 'SIGNERS_FILE_INVALID';

/** §8 step 2: checkpoints and their signers. */
type CheckpointCode =
  /** The source holds no checkpoint at all: nothing in it is signed. */
  | 'CHECKPOINT_MISSING'
  /** A checkpoint frame, note or body does not parse (C2SP signed-note, tlog-checkpoint). */
  | 'CHECKPOINT_MALFORMED'
  /** A signature line from a trusted signer does not verify. */
  | 'CHECKPOINT_SIGNATURE_INVALID'
  /** No signature line is from a signer trusted at that tree size (following rotations). */
  | 'CHECKPOINT_UNKNOWN_SIGNER'
  /** A checkpoint, segment header or LOG_START names another origin than the log's. */
  | 'ORIGIN_MISMATCH'
  /** A SIGNER_ROTATION entry is malformed, or not signed by the signer it retires (FORMAT.md §5.3). */
  | 'SIGNER_ROTATION_INVALID';

/** §8 step 3: consistency. */
type ConsistencyCode =
  /** Checkpoints out of order or contradicting each other: a size goes back or repeats, or has two roots. */
  | 'CHECKPOINT_INCONSISTENT'
  /** A consistency proof in proofs.json is missing, or does not join the two checkpoints it names. */
  | 'CONSISTENCY_PROOF_INVALID'
  /** The auditor's trusted checkpoint does not parse, is for another origin, or is not signed by a trusted signer. */
  | 'TRUSTED_CHECKPOINT_INVALID'
  /** The log does not extend the auditor's trusted checkpoint: a fork, or a rewritten history. */
  | 'TRUSTED_CHECKPOINT_INCONSISTENT'
  /** A partial bundle carries no proof linking the trusted checkpoint to its checkpoints. */
  | 'TRUSTED_CHECKPOINT_UNPROVEN'
  /** The trusted checkpoint covers more entries than the log holds: its tail was cut off. */
  | 'TAIL_TRUNCATED';

/** §8 step 4: the tree. */
type TreeCode =
  /** The entries do not hash to a checkpoint's root (complete sources). */
  | 'ROOT_MISMATCH'
  /** A partial bundle's entry has no inclusion proof, or its proof does not lead to the last checkpoint's root. */
  | 'INCLUSION_PROOF_INVALID'
  /** The source holds fewer entries than its last checkpoint covers (or than the manifest's range). */
  | 'ENTRIES_TRUNCATED'
  /** Entries beyond the last checkpoint: unsigned. A failure in a bundle, a warning for a live store. */
  | 'ENTRIES_AFTER_LAST_CHECKPOINT';

/** §8 step 5: leaf indexes. */
type IndexCode =
  /** A complete bundle's (or a range's) leaf indexes skip or repeat. */
  | 'INDEX_NOT_CONTIGUOUS'
  /** A partial bundle's leaf indexes do not strictly increase, or leave its range. */
  | 'INDEX_NOT_INCREASING';

/** §8 step 6: segments. */
type SegmentCode =
  /** An entry does not decode (FORMAT.md §3), or an entries.bin frame is broken. */
  | 'ENTRY_MALFORMED'
  /** A second segment header with the same segment id. */
  | 'SEGMENT_HEADER_DUPLICATE'
  /** A segment's prev_segment_id names no closed segment of the same session. */
  | 'SEGMENT_CHAIN_BROKEN'
  /** A record's seq is not the next one of its segment (a gap, a repeat, or records out of order). */
  | 'SEQUENCE_GAP'
  /** A record names a segment whose header is not in the log before it. */
  | 'RECORD_UNKNOWN_SEGMENT'
  /** A closed segment has no FINAL record (SESSION_END not FINAL, a successor segment, or LOG_STOP). */
  | 'FINAL_MISSING'
  /** A record follows its segment's FINAL record. */
  | 'RECORD_AFTER_FINAL'
  /** A segment was left open by a run that crashed, and the CRASH_RECOVERY after it does not name it. */
  | 'SEGMENT_OPEN_UNACCOUNTED'
  /** A CRASH_RECOVERY entry names a segment that is unknown, closed, or has another last seq. */
  | 'CRASH_RECOVERY_MISMATCH';

/** §8 step 7: runs. */
type RunCode =
  /** A LOG_START while a run is open, with no LOG_STOP or CRASH_RECOVERY before it. */
  | 'RUN_NOT_CLOSED'
  /** An entry outside any run: before the first LOG_START, or after a LOG_STOP. */
  | 'RUN_NOT_STARTED'
  /** A system entry names another run_id than the run it is in. */
  | 'RUN_ID_MISMATCH'
  /** Two consecutive entries of a run are further apart than the heartbeat policy, or a heartbeat is missing. */
  | 'HEARTBEAT_GAP';

export type VerifyCode =
  ManifestCode | CheckpointCode | ConsistencyCode | TreeCode | IndexCode | SegmentCode | RunCode;

/** Findings that do not fail verification. */
export type VerifyWarningCode =
  /** --trust-bundle-signers: the signers were taken from the bundle's own keys/signers.json (integrity only). */
  | 'SIGNERS_NOT_PINNED'
  /** A live store: entries after its last checkpoint are not signed yet. */
  | 'ENTRIES_AFTER_LAST_CHECKPOINT'
  /** A segment without FINAL at the end of a run that is still going (or at the edge of a partial bundle). */
  | 'SEGMENT_OPEN'
  /** A file in the bundle directory that the manifest does not list. */
  | 'FILE_UNLISTED'
  /** A partial bundle: checks that need every entry (runs, heartbeats, open segments) were limited. */
  | 'PARTIAL_CHECKS'
  /** A run ended because the log failed (LOG_STOP reason "failed"): recording stopped there. */
  | 'RUN_FAILED';

export interface VerifyFailure {
  readonly code: VerifyCode;
  /** Where: "entries.bin leaf 1234", "checkpoint 7 (size 9000)", "manifest.sig". */
  readonly location: string;
  readonly message: string;
}

export interface VerifyWarning {
  readonly code: VerifyWarningCode;
  readonly location: string;
  readonly message: string;
}

/** The §8 step that checks each code, so that a report lists failures in the spec's order. */
export const VERIFY_STEP: Readonly<Record<VerifyCode, number>> = {
  MANIFEST_MALFORMED: 1,
  MANIFEST_SIGNATURE_INVALID: 1,
  MANIFEST_CONTENT_MISMATCH: 1,
  FILE_MISSING: 1,
  FILE_HASH_MISMATCH: 1,
  PROOFS_MALFORMED: 1,
  SIGNERS_FILE_INVALID: 1,
  CHECKPOINT_MISSING: 2,
  CHECKPOINT_MALFORMED: 2,
  CHECKPOINT_SIGNATURE_INVALID: 2,
  CHECKPOINT_UNKNOWN_SIGNER: 2,
  ORIGIN_MISMATCH: 2,
  SIGNER_ROTATION_INVALID: 2,
  CHECKPOINT_INCONSISTENT: 3,
  CONSISTENCY_PROOF_INVALID: 3,
  TRUSTED_CHECKPOINT_INVALID: 3,
  TRUSTED_CHECKPOINT_INCONSISTENT: 3,
  TRUSTED_CHECKPOINT_UNPROVEN: 3,
  TAIL_TRUNCATED: 3,
  ROOT_MISMATCH: 4,
  INCLUSION_PROOF_INVALID: 4,
  ENTRIES_TRUNCATED: 4,
  ENTRIES_AFTER_LAST_CHECKPOINT: 4,
  INDEX_NOT_CONTIGUOUS: 5,
  INDEX_NOT_INCREASING: 5,
  ENTRY_MALFORMED: 6,
  SEGMENT_HEADER_DUPLICATE: 6,
  SEGMENT_CHAIN_BROKEN: 6,
  SEQUENCE_GAP: 6,
  RECORD_UNKNOWN_SEGMENT: 6,
  FINAL_MISSING: 6,
  RECORD_AFTER_FINAL: 6,
  SEGMENT_OPEN_UNACCOUNTED: 6,
  CRASH_RECOVERY_MISMATCH: 6,
  RUN_NOT_CLOSED: 7,
  RUN_NOT_STARTED: 7,
  RUN_ID_MISMATCH: 7,
  HEARTBEAT_GAP: 7,
};

export const VERIFY_CODES = Object.keys(VERIFY_STEP) as VerifyCode[];

/**
 * Where the checks put what they find. A mutated bundle can break thousands of entries the same way
 * (a flipped bit in a frame length shifts everything after it), so each code keeps at most
 * `perCode` failures and counts the rest: the report stays readable and names every kind of failure.
 */
export class Findings {
  readonly failures: VerifyFailure[] = [];
  readonly warnings: VerifyWarning[] = [];
  readonly #counts = new Map<string, number>();
  readonly #perCode: number;

  constructor(perCode = 100) {
    this.#perCode = perCode;
  }

  fail(code: VerifyCode, location: string, message: string): void {
    if (this.#count(`F${code}`) <= this.#perCode) this.failures.push({ code, location, message });
  }

  warn(code: VerifyWarningCode, location: string, message: string): void {
    if (this.#count(`W${code}`) <= this.#perCode) this.warnings.push({ code, location, message });
  }

  #count(key: string): number {
    const n = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, n);
    return n;
  }

  /** How many failures of each code were found (including those not kept). */
  failureCounts(): Record<string, number> {
    return Object.fromEntries(
      [...this.#counts].filter(([k]) => k.startsWith('F')).map(([k, n]) => [k.slice(1), n]),
    );
  }

  /** Failures not kept because their code passed `perCode`. */
  get suppressed(): number {
    let n = 0;
    for (const [, c] of this.#counts) n += Math.max(0, c - this.#perCode);
    return n;
  }

  has(code: VerifyCode): boolean {
    return this.#counts.has(`F${code}`);
  }

  /** Failures in §8 order (stable within a step). */
  sortedFailures(): VerifyFailure[] {
    return this.failures
      .map((f, i) => ({ f, i }))
      .sort((a, b) => VERIFY_STEP[a.f.code] - VERIFY_STEP[b.f.code] || a.i - b.i)
      .map(({ f }) => f);
  }
}
