/**
 * The verifier (docs/FORMAT.md §8): one function that composes the small checks, in the spec's order,
 * over a store or a bundle. No private key, no network: public keys and bytes only.
 *
 *   1. manifest.ts     the manifest's signature and every file's hash (bundles)
 *   2. checkpoints.ts  every checkpoint signed by a signer trusted at its size (trust.ts: rotations)
 *   3. checkpoints.ts  consecutive checkpoints consistent, and the auditor's trusted checkpoint
 *   4. tree.ts         the last root recomputed (complete) or each leaf's inclusion proof (partial)
 *   5. here            leaf indexes contiguous (complete) or strictly increasing (partial)
 *   6. segments.ts     headers, sequence numbers, FINAL, crash accounting; provenance
 *   7. runs.ts         LOG_START … LOG_STOP | CRASH_RECOVERY, heartbeat gaps
 *
 * Everything is gathered in one pass over the entries (each leaf hashed once, each entry decoded once,
 * as views into the file), then the signature and consistency checks run on what the pass found: the
 * signers of later checkpoints are only known once the SIGNER_ROTATION entries have been read.
 * Verification continues past failures wherever it can, so every mutation shows its own failure.
 */
import type { CryptoProvider, PublicKey } from '../../crypto/index.js';
import { parseCheckpoint } from '../../seal/checkpoint.js';
import { decodeEntry } from '../../seal/format/entry.js';
import { EntryKind, SystemType } from '../../seal/format/types.js';
import { emptyRoot } from '../../seal/merkle.js';
import { parseNote } from '../../seal/note.js';
import {
  BUNDLE_FILES,
  EntriesDigest,
  parseProofs,
  parseSigners,
  readNoteFrames,
  type BundleManifest,
  type BundleProofs,
  type SignersFile,
} from '../bundle.js';
import type { LogSource } from '../source.js';
import {
  checkCheckpointOrder,
  checkConsistencyProofs,
  checkpointLocation,
  ConsistencyProofs,
  parseCheckpoints,
  readTrustedCheckpoint,
  verifyCheckpointSignatures,
  type CheckpointInfo,
} from './checkpoints.js';
import { Findings, type VerifyFailure, type VerifyWarning } from './error.js';
import { checkManifestFiles, checkManifestSignature } from './manifest.js';
import { allowedGapUs, RunChecks } from './runs.js';
import { SegmentChecks, type SegmentProvenance, type SourceMode } from './segments.js';
import { readRecordMeta } from './record-meta.js';
import {
  InclusionChecker,
  LeafHasher,
  ParallelRootTracker,
  PARALLEL_MIN_LEAVES,
  RootTracker,
  type RootSource,
} from './tree.js';
import { assertSignerKey, SignerTrust, trustBasis, type TrustBasis } from './trust.js';

export interface VerifyProgress {
  readonly phase: 'entries' | 'signatures';
  readonly done: number;
  readonly total: number;
}

export interface VerifyOptions {
  /** The auditor's pinned signers (`--keys`): the trust root. One of this and `trustBundleSigners` is required. */
  readonly trustedSigners?: readonly PublicKey[];
  /**
   * Take the signers from the bundle's own keys/signers.json (`--trust-bundle-signers`): integrity only,
   * origin not verified. Without it and without `trustedSigners`, verifyLog refuses (TRUST_ROOT_MISSING).
   */
  readonly trustBundleSigners?: boolean;
  /** A signed checkpoint of this log the auditor retained (from the SIEM, an earlier audit); checked against the signers. */
  readonly trustedCheckpoint?: string;
  /** The writer's heartbeat interval; the allowed gap is 2× this + 5 s. Default 60. */
  readonly heartbeatSeconds?: number;
  readonly onProgress?: (p: VerifyProgress) => void;
  /**
   * Hash the tree's interior nodes in a worker thread (openssl backend, complete sources). By default
   * only from PARALLEL_MIN_LEAVES leaves on; true always, false never. The result is the same either way.
   */
  readonly parallel?: boolean;
}

/**
 * The verdict: VERIFIED (no failure, signers pinned), INTEGRITY_ONLY (no failure, but the signers are the
 * bundle's own: unchanged since signed, origin not verified), FAILED (any failure).
 */
export type VerifyResult = 'VERIFIED' | 'INTEGRITY_ONLY' | 'FAILED';

export interface VerifyReport {
  /** No check failed (warnings allowed). Whether the origin was verified too is `trust`; both at once is `result`. */
  readonly ok: boolean;
  /** VERIFIED only when `ok` and `trust` is 'pinned': the one field a script should test. */
  readonly result: VerifyResult;
  readonly source: {
    readonly kind: 'store' | 'bundle';
    readonly path: string;
    readonly origin: string;
    readonly mode: SourceMode;
    /** The size of the last checkpoint. */
    readonly treeSize: number;
    readonly range?: { readonly from: number; readonly to: number };
    readonly sessions?: readonly string[];
  };
  /** What the signers rest on: the auditor's `--keys` ('pinned'), or the bundle's own keys ('bundle-only'). */
  readonly trust: TrustBasis;
  readonly signers: readonly { keyId: string; via: string; validAfter: number; retiredAfter?: number }[];
  /** In the order of FORMAT.md §8. At most 100 per code; `failureCounts` has the totals. */
  readonly failures: readonly VerifyFailure[];
  readonly failureCounts: Readonly<Record<string, number>>;
  readonly warnings: readonly VerifyWarning[];
  readonly counts: {
    readonly entries: number;
    readonly segments: number;
    readonly records: number;
    readonly sessions: number;
    readonly checkpoints: number;
    readonly runs: number;
    readonly heartbeats: number;
  };
  readonly provenance: readonly SegmentProvenance[];
  /** Segment ids whose header does not attest FIPS mode (or whose header is not in the bundle). */
  readonly nonFipsSegments: readonly string[];
  /** "all 12 segments sealed in FIPS mode", or which were not. */
  readonly summary: string;
}

const PROGRESS_EVERY = 8192;
const EMPTY = new Uint8Array(0);

function fipsSummary(provenance: readonly SegmentProvenance[]): { nonFips: string[]; summary: string } {
  const nonFips = provenance.filter((p) => p.fips !== true).map((p) => p.segment);
  const n = provenance.length;
  if (n === 0) return { nonFips, summary: 'no segments' };
  if (nonFips.length === 0)
    return { nonFips, summary: `all ${n} segment${n === 1 ? '' : 's'} sealed in FIPS mode` };
  const unknown = provenance.filter((p) => p.fips === undefined).length;
  const shown =
    nonFips.slice(0, 10).join(', ') + (nonFips.length > 10 ? `, … (${nonFips.length - 10} more)` : '');
  const note = unknown > 0 ? ` (${unknown} with no provenance in this bundle)` : '';
  return { nonFips, summary: `${nonFips.length} of ${n} segments NOT sealed in FIPS mode${note}: ${shown}` };
}

/** What the manifest says the bundle is; for a store, or a bundle whose manifest is broken, a best guess. */
function sourceMode(
  source: LogSource,
  manifest: BundleManifest | undefined,
  proofs: BundleProofs | undefined,
): SourceMode {
  if (source.kind === 'store') return 'complete';
  if (manifest) return manifest.complete ? 'complete' : manifest.sessions ? 'sessions' : 'range';
  return proofs && proofs.inclusion.length > 0 ? 'range' : 'complete';
}

/** The trusted signers: pinned, or (asked for explicitly, and flagged) the bundle's own. */
function signerTrust(
  provider: CryptoProvider,
  origin: string,
  basis: TrustBasis,
  opts: VerifyOptions,
  signersFile: SignersFile | undefined,
  findings: Findings,
): SignerTrust {
  if (basis === 'pinned') return new SignerTrust(provider, origin, opts.trustedSigners ?? [], 'pinned');
  const keys: PublicKey[] = [];
  for (const s of signersFile?.signers ?? []) {
    try {
      const key = provider.importPublicKey(s.spki_pem);
      if (key.algorithm.type === 'ec' && key.algorithm.curve === 'P-384') keys.push(key);
    } catch {
      // Reported by the signers file check.
    }
  }
  findings.warn(
    'SIGNERS_NOT_PINNED',
    BUNDLE_FILES.signers,
    `--trust-bundle-signers: trusting the ${keys.length} signer key(s) the bundle itself carries. This shows the bundle is unchanged since a holder of those keys signed it, not that it comes from your gate: pin the gate's signer keys with --keys`,
  );
  return new SignerTrust(provider, origin, keys, 'bundle');
}

/** keys/signers.json must agree with itself and with the log's SIGNER_ROTATION entries. */
function checkSignersFile(
  provider: CryptoProvider,
  file: SignersFile,
  origin: string,
  rotations: readonly { index: number; body: Record<string, unknown> }[],
  mode: SourceMode,
  findings: Findings,
): void {
  const where = BUNDLE_FILES.signers;
  const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
  if (file.origin !== origin)
    findings.fail(
      'SIGNERS_FILE_INVALID',
      where,
      `origin ${JSON.stringify(file.origin)} is not ${JSON.stringify(origin)}`,
    );
  file.signers.forEach((s, i) => {
    let key: PublicKey;
    try {
      key = provider.importPublicKey(s.spki_pem);
    } catch {
      findings.fail('SIGNERS_FILE_INVALID', where, `signers[${i}].spki_pem is not a public key`);
      return;
    }
    const sha = hex(provider.digest('sha256', key.spkiDer()));
    if (sha !== s.sha256 || sha.slice(0, 8) !== s.key_id) {
      findings.fail(
        'SIGNERS_FILE_INVALID',
        where,
        `signers[${i}]: key_id ${s.key_id} / sha256 ${s.sha256} are not its key's (${sha})`,
      );
    }
  });
  const fields = ['old_key_id', 'new_key_id', 'new_key_spki', 'signature'] as const;
  const same = (a: Record<string, unknown>, b: Record<string, unknown>): boolean =>
    fields.every((f) => a[f] === b[f]);
  for (const r of rotations) {
    const listed = file.rotations.find((x) => x.index === r.index);
    if (!listed || !same(listed as unknown as Record<string, unknown>, r.body)) {
      findings.fail(
        'SIGNERS_FILE_INVALID',
        where,
        `the SIGNER_ROTATION at leaf ${r.index} is not in its rotations list as logged`,
      );
    }
  }
  // Every rotation the file lists must be in the log: a complete or partial bundle carries them all.
  if (mode !== 'sessions' || rotations.length > 0) {
    for (const x of file.rotations) {
      if (!rotations.some((r) => r.index === x.index)) {
        findings.fail(
          'SIGNERS_FILE_INVALID',
          where,
          `rotations lists leaf ${x.index}, which is not a SIGNER_ROTATION entry of the bundle`,
        );
      }
    }
  }
}

/**
 * Verifies a store or a bundle (docs/FORMAT.md §8) and reports every failure with its location. Throws
 * AuditError only for bad input that stops it before it starts: TRUST_ROOT_MISSING (neither pinned
 * signers nor `trustBundleSigners`, or a store without pinned signers), TRUST_INPUT_INVALID (an
 * unusable signer key, or both roots at once).
 */
export function verifyLog(
  provider: CryptoProvider,
  source: LogSource,
  opts: VerifyOptions = {},
): VerifyReport {
  // Whom to trust is settled before anything is read: no report is made without a trust root.
  const basis = trustBasis(opts, source.kind);
  if (basis === 'pinned')
    opts.trustedSigners?.forEach((k, i) => assertSignerKey(k, `trusted signer ${i + 1}`));
  const findings = new Findings();
  const hash = (d: Uint8Array): Uint8Array => provider.digest('sha256', d);
  const bundle = source.bundle;
  const locate = (i: number | undefined): string =>
    i === undefined
      ? `${BUNDLE_FILES.entries} (before the bundle's range)`
      : `${BUNDLE_FILES.entries} leaf ${i}`;

  // 1. The bundle's files (the signature waits for the signers).
  const manifest = bundle ? checkManifestFiles(provider, bundle, findings) : undefined;
  let proofs: BundleProofs | undefined;
  let signersFile: SignersFile | undefined;
  if (bundle) {
    const p = parseProofs(bundle.file(BUNDLE_FILES.proofs));
    if (p.problem !== undefined) {
      if (bundle.file(BUNDLE_FILES.proofs)) findings.fail('PROOFS_MALFORMED', BUNDLE_FILES.proofs, p.problem);
    } else proofs = p.value;
    const s = parseSigners(bundle.file(BUNDLE_FILES.signers));
    if (s.problem !== undefined) {
      if (bundle.file(BUNDLE_FILES.signers))
        findings.fail('SIGNERS_FILE_INVALID', BUNDLE_FILES.signers, s.problem);
    } else signersFile = s.value;
  }
  const mode = sourceMode(source, manifest, proofs);

  // The checkpoints, parsed but not yet verified.
  let notes: (string | Uint8Array)[];
  if (bundle) {
    const frames = readNoteFrames(bundle.file(BUNDLE_FILES.checkpoints) ?? EMPTY);
    if (frames.problem)
      findings.fail('CHECKPOINT_MALFORMED', frames.problem.location, frames.problem.message);
    notes = frames.notes;
  } else {
    notes = source.checkpoints();
  }
  let origin = manifest?.origin ?? (source.kind === 'store' ? source.origin : '');
  if (!origin) {
    for (const n of notes) {
      try {
        origin = parseCheckpoint(parseNote(n).body).origin;
        break;
      } catch {
        // The next one, then.
      }
    }
  }
  const checkpoints = parseCheckpoints(notes, origin, findings);
  if (notes.length === 0)
    findings.fail(
      'CHECKPOINT_MISSING',
      bundle ? BUNDLE_FILES.checkpoints : 'checkpoints.bin',
      'the source holds no checkpoint: nothing in it is signed',
    );
  const last: CheckpointInfo | undefined = checkpoints.at(-1);
  const treeSize = last?.size ?? 0;

  const trust = signerTrust(provider, origin, basis, opts, signersFile, findings);

  let trustedSize: number | undefined;
  if (opts.trustedCheckpoint !== undefined) {
    try {
      trustedSize = Number(parseCheckpoint(parseNote(opts.trustedCheckpoint).body).size);
    } catch {
      // readTrustedCheckpoint reports it.
    }
  }

  // 4 (set up). A complete source recomputes roots at every size something claims one for.
  const consistency = new ConsistencyProofs(proofs?.consistency ?? []);
  const wanted = [
    ...checkpoints.map((c) => c.size),
    ...(trustedSize !== undefined ? [trustedSize] : []),
    ...consistency.all().flatMap((p) => [p.from, p.to]),
  ];
  const info = provider.info();
  const tracker: RootSource | undefined =
    mode !== 'complete'
      ? undefined
      : info.backend === 'openssl' && (opts.parallel ?? treeSize >= PARALLEL_MIN_LEAVES)
        ? new ParallelRootTracker(hash, wanted, info.fipsMode)
        : new RootTracker(hash, wanted);
  const inclusion =
    mode !== 'complete' && last
      ? new InclusionChecker(hash, proofs?.inclusion ?? [], last.size, last.root)
      : undefined;

  // The one pass over the entries: steps 4 to 7.
  const segments = new SegmentChecks(origin, mode, findings, locate);
  const runs =
    mode !== 'sessions'
      ? new RunChecks(origin, mode, allowedGapUs(opts.heartbeatSeconds ?? 60), findings, locate)
      : undefined;
  const rotations: { index: number; body: Record<string, unknown> }[] = [];
  const range = manifest?.range;
  const sessions = manifest?.sessions ? new Set(manifest.sessions) : undefined;
  const leaves = new LeafHasher(hash);
  const digest = bundle ? new EntriesDigest(manifest?.entries) : undefined;
  const total = bundle ? (manifest?.entries ?? 0) : source.entryCount;
  let count = 0;
  let expected = mode === 'complete' ? 0 : (range?.from ?? 0);
  let prevIndex: number | undefined;
  let lastInRange: number | undefined;
  try {
    for (const { index, bytes } of source.entries()) {
      count++;
      if (count % PROGRESS_EVERY === 0) opts.onProgress?.({ phase: 'entries', done: count, total });

      // 5. Leaf indexes.
      const inRange = mode !== 'range' || !range || (index >= range.from && index < range.to);
      if (mode === 'complete') {
        if (index !== expected)
          findings.fail(
            'INDEX_NOT_CONTIGUOUS',
            locate(index),
            `leaf ${index} where leaf ${expected} was due`,
          );
        expected = index + 1;
      } else {
        if (prevIndex !== undefined && index <= prevIndex) {
          findings.fail('INDEX_NOT_INCREASING', locate(index), `leaf ${index} follows leaf ${prevIndex}`);
        }
        if (mode === 'range' && inRange) {
          if (index !== expected)
            findings.fail(
              'INDEX_NOT_CONTIGUOUS',
              locate(index),
              `leaf ${index} where leaf ${expected} of the range was due`,
            );
          expected = index + 1;
          lastInRange = index;
        }
      }

      // 4. The tree, and the manifest's digest of entries.bin (step 1): one hash per leaf for both.
      const leafHash = leaves.leafHash(bytes);
      digest?.add(index, leafHash);
      if (tracker) tracker.append(leafHash);
      else if (inclusion) {
        const problem = inclusion.problem(index, leafHash);
        if (problem) findings.fail('INCLUSION_PROOF_INVALID', locate(index), problem);
      }

      // 6 and 7. The entry itself. Records, nearly every entry, are read in place.
      const record = bytes[0] === EntryKind.SEALED_RECORD ? readRecordMeta(bytes) : undefined;
      if (record) {
        if (!inRange)
          findings.fail(
            'MANIFEST_CONTENT_MISMATCH',
            locate(index),
            `leaf ${index} is outside the manifest's range [${range?.from}, ${range?.to}) and is not a SIGNER_ROTATION`,
          );
        segments.record(index, record);
        runs?.entry(record.timeUs, index);
        prevIndex = index;
        continue;
      }
      let entry;
      try {
        entry = decodeEntry(bytes);
      } catch (err) {
        findings.fail('ENTRY_MALFORMED', locate(index), (err as Error).message);
        prevIndex = index;
        continue;
      }
      // A range carries the headers, from before it, of the segments it starts inside (FORMAT.md §7).
      const carried =
        mode === 'range' &&
        range !== undefined &&
        index < range.from &&
        entry.kind === EntryKind.SEGMENT_HEADER;
      const extra =
        carried ||
        (entry.kind === EntryKind.SYSTEM &&
          (entry.type === SystemType.SIGNER_ROTATION ||
            (mode === 'sessions' && entry.type === SystemType.CRASH_RECOVERY)));
      if (!inRange && !extra) {
        findings.fail(
          'MANIFEST_CONTENT_MISMATCH',
          locate(index),
          `leaf ${index} is outside the manifest's range [${range?.from}, ${range?.to}) and is not a SIGNER_ROTATION${mode === 'range' ? ' or the header, before the range, of a segment it starts inside' : ''}`,
        );
      }
      if (entry.kind === EntryKind.SEGMENT_HEADER) {
        const session = Buffer.from(entry.sessionId).toString('hex');
        if (sessions && !sessions.has(session)) {
          findings.fail(
            'MANIFEST_CONTENT_MISMATCH',
            locate(index),
            `session ${session} is not one the manifest names`,
          );
        }
        segments.header(index, entry, carried);
        if (!carried) runs?.entry(Number(entry.createdUs), index);
      } else if (entry.kind === EntryKind.SEALED_RECORD) {
        // Unreachable: readRecordMeta accepts every record decodeEntry does.
        findings.fail('ENTRY_MALFORMED', locate(index), 'a sealed record that decodes but was not read');
      } else {
        if (entry.type === SystemType.SIGNER_ROTATION) rotations.push({ index, body: entry.body });
        if (mode === 'sessions' && !extra) {
          findings.fail(
            'MANIFEST_CONTENT_MISMATCH',
            locate(index),
            'a system entry that a session export does not carry',
          );
        }
        if (inRange) {
          runs?.system(entry, index, prevIndex);
          if (entry.type === SystemType.LOG_START) segments.runStarted();
          else if (entry.type === SystemType.LOG_STOP) segments.runStopped(index);
          else if (entry.type === SystemType.CRASH_RECOVERY) segments.crashRecovery(index, entry.body);
        }
      }
      prevIndex = index;
    }
  } catch (err) {
    const location = (err as { location?: unknown }).location;
    findings.fail(
      'ENTRY_MALFORMED',
      typeof location === 'string' ? location : BUNDLE_FILES.entries,
      (err as Error).message,
    );
  }
  opts.onProgress?.({ phase: 'entries', done: count, total: count });
  if (bundle && digest && bundle.has(BUNDLE_FILES.entries) && manifest) {
    const got = digest.hex(hash);
    if (got !== manifest.entries_digest) {
      findings.fail(
        'FILE_HASH_MISMATCH',
        BUNDLE_FILES.entries,
        `the digest of its frames is ${got}, the manifest says ${manifest.entries_digest}`,
      );
    }
  }

  // 4. Did the source hold what its last checkpoint covers?
  if (mode === 'complete' && last) {
    if (count < treeSize) {
      findings.fail(
        'ENTRIES_TRUNCATED',
        BUNDLE_FILES.entries,
        `${count} entries, but the last checkpoint covers ${treeSize}`,
      );
    } else if (count > treeSize) {
      const message = `${count - treeSize} entries (leaves ${treeSize}..${count - 1}) after the last checkpoint (size ${treeSize}) are not signed yet`;
      if (source.kind === 'store') findings.warn('ENTRIES_AFTER_LAST_CHECKPOINT', locate(treeSize), message);
      else findings.fail('ENTRIES_AFTER_LAST_CHECKPOINT', locate(treeSize), message);
    }
  }
  if (mode === 'range' && range) {
    const end = lastInRange === undefined ? range.from : lastInRange + 1;
    if (end < range.to)
      findings.fail(
        'ENTRIES_TRUNCATED',
        BUNDLE_FILES.entries,
        `the range ends at leaf ${end}, the manifest's at leaf ${range.to}`,
      );
  }

  // 2. Signers: follow the rotations, then check every signature.
  rotations.sort((a, b) => a.index - b.index);
  for (const r of rotations) {
    const problem = trust.rotate(r.index, r.body);
    if (problem) findings.fail('SIGNER_ROTATION_INVALID', locate(r.index), problem);
  }
  if (signersFile) checkSignersFile(provider, signersFile, origin, rotations, mode, findings);
  opts.onProgress?.({ phase: 'signatures', done: 0, total: checkpoints.length });
  verifyCheckpointSignatures(provider, checkpoints, trust, findings);
  opts.onProgress?.({ phase: 'signatures', done: checkpoints.length, total: checkpoints.length });
  if (bundle) checkManifestSignature(provider, bundle, trust, treeSize, findings);

  // 1. What the manifest says, against what the files hold.
  if (manifest) {
    const mismatch = (message: string): void =>
      findings.fail('MANIFEST_CONTENT_MISMATCH', BUNDLE_FILES.manifest, message);
    if (manifest.entries !== count) mismatch(`entries is ${manifest.entries}, entries.bin holds ${count}`);
    if (manifest.checkpoints !== notes.length)
      mismatch(`checkpoints is ${manifest.checkpoints}, checkpoints.bin holds ${notes.length}`);
    if (last && manifest.tree_size !== treeSize)
      mismatch(`tree_size is ${manifest.tree_size}, the last checkpoint's size is ${treeSize}`);
    if (manifest.complete && (manifest.range.from !== 0 || manifest.range.to !== manifest.tree_size))
      mismatch(
        `a complete bundle's range is [0, tree_size), not [${manifest.range.from}, ${manifest.range.to})`,
      );
    if (manifest.range.to > manifest.tree_size)
      mismatch(`the range ends at ${manifest.range.to}, beyond tree_size ${manifest.tree_size}`);
  }
  if (proofs && last && proofs.tree_size !== treeSize) {
    findings.fail(
      'PROOFS_MALFORMED',
      BUNDLE_FILES.proofs,
      `tree_size is ${proofs.tree_size}, the last checkpoint's size is ${treeSize}`,
    );
  }

  // 3. One history.
  checkCheckpointOrder(checkpoints, findings);
  if (bundle) checkConsistencyProofs(hash, checkpoints, consistency, findings);
  if (tracker) {
    for (const cp of checkpoints) {
      const root = tracker.rootAt(cp.size);
      if (root && !provider.equal(root, cp.root)) {
        findings.fail(
          'ROOT_MISMATCH',
          checkpointLocation(cp),
          `the entries' root at size ${cp.size} is ${Buffer.from(root).toString('hex')}, the checkpoint's ${Buffer.from(cp.root).toString('hex')}`,
        );
      }
    }
    // Proofs that do not join two checkpoints (e.g. from the exporter's trusted checkpoint) are checked against recomputed roots.
    const sizes = new Set(checkpoints.map((c) => c.size));
    for (const p of consistency.all()) {
      if (sizes.has(p.from) && sizes.has(p.to)) continue;
      const [r1, r2] = [tracker.rootAt(p.from), tracker.rootAt(p.to)];
      if (!r1 || !r2) continue;
      const problem = ConsistencyProofs.problem(hash, p, r1, r2);
      if (problem)
        findings.fail('CONSISTENCY_PROOF_INVALID', `${BUNDLE_FILES.proofs} (${p.from} to ${p.to})`, problem);
    }
  }
  if (opts.trustedCheckpoint !== undefined) {
    const tc = readTrustedCheckpoint(provider, opts.trustedCheckpoint, trust, findings);
    const where = `trusted checkpoint (size ${tc?.size})`;
    if (tc && tracker) {
      if (tc.size > count) {
        findings.fail(
          'TAIL_TRUNCATED',
          where,
          `the trusted checkpoint covers ${tc.size} entries; the log holds ${count}${last ? ` (last checkpoint: size ${treeSize})` : ''}`,
        );
      } else {
        const root = tc.size === 0 ? emptyRoot(hash) : tracker.rootAt(tc.size);
        if (root && !provider.equal(root, tc.root)) {
          findings.fail(
            'TRUSTED_CHECKPOINT_INCONSISTENT',
            where,
            `the log's root at size ${tc.size} is not the trusted checkpoint's: the log does not extend it`,
          );
        }
      }
    } else if (tc && last) {
      if (tc.size > treeSize) {
        findings.fail(
          'TAIL_TRUNCATED',
          where,
          `the trusted checkpoint covers ${tc.size} entries; the bundle's last checkpoint only ${treeSize}`,
        );
      } else if (tc.size > 0) {
        const same = checkpoints.find((c) => c.size === tc.size);
        if (same) {
          if (!provider.equal(same.root, tc.root))
            findings.fail(
              'TRUSTED_CHECKPOINT_INCONSISTENT',
              where,
              `${checkpointLocation(same)} has another root at the same size`,
            );
        } else {
          const target = [...checkpoints].reverse().find((c) => consistency.get(tc.size, c.size));
          const p = target && consistency.get(tc.size, target.size);
          if (!target || !p) {
            findings.fail(
              'TRUSTED_CHECKPOINT_UNPROVEN',
              where,
              `proofs.json has no consistency proof from size ${tc.size} to a checkpoint of the bundle (export with --trusted-checkpoint)`,
            );
          } else {
            const problem = ConsistencyProofs.problem(hash, p, tc.root, target.root);
            if (problem)
              findings.fail(
                'TRUSTED_CHECKPOINT_INCONSISTENT',
                where,
                `the proof from size ${tc.size} to ${target.size} does not verify: ${problem}`,
              );
          }
        }
      }
    }
  }

  // 5. A header carried from before a range must be of a segment the range starts inside.
  for (const h of segments.carriedWithoutRecords()) {
    findings.fail(
      'MANIFEST_CONTENT_MISMATCH',
      locate(h.headerIndex),
      `segment ${h.id}: its header, before the range, is carried, but none of its records is in the range`,
    );
  }

  // 6. What is still open at the end.
  for (const s of segments.stillOpen()) {
    const why =
      mode === 'complete'
        ? 'its run is still going (a live log), so its session may still be open'
        : 'its end may lie outside this partial bundle';
    findings.warn(
      'SEGMENT_OPEN',
      locate(s.headerIndex),
      `segment ${s.id} has no FINAL record (last seq ${s.lastSeq}): ${why}`,
    );
  }
  if (mode !== 'complete') {
    findings.warn(
      'PARTIAL_CHECKS',
      BUNDLE_FILES.manifest,
      mode === 'sessions'
        ? 'a session export: run and heartbeat checks (§8 step 7) need every entry and were skipped; entries are proven by inclusion proofs'
        : 'a range export: runs and segments that cross the range edges are checked only inside it; entries are proven by inclusion proofs',
    );
  }

  const provenance = segments.provenance();
  const { nonFips, summary } = fipsSummary(provenance);
  const failures = findings.sortedFailures();
  const ok = failures.length === 0;
  return {
    ok,
    result: !ok ? 'FAILED' : basis === 'pinned' ? 'VERIFIED' : 'INTEGRITY_ONLY',
    source: {
      kind: source.kind,
      path: source.path,
      origin,
      mode,
      treeSize,
      ...(range ? { range: { from: range.from, to: range.to } } : {}),
      ...(manifest?.sessions ? { sessions: manifest.sessions } : {}),
    },
    trust: basis,
    signers: trust.signers.map((s) => ({
      keyId: s.keyId,
      via: s.via,
      validAfter: s.validAfter,
      ...(s.retiredAfter !== undefined ? { retiredAfter: s.retiredAfter } : {}),
    })),
    failures,
    failureCounts: findings.failureCounts(),
    warnings: findings.warnings,
    counts: {
      entries: count,
      segments: segments.segmentCount,
      records: segments.records,
      sessions: segments.sessionCount,
      checkpoints: notes.length,
      runs: runs?.runs ?? 0,
      heartbeats: runs?.heartbeats ?? 0,
    },
    provenance,
    nonFipsSegments: nonFips,
    summary,
  };
}
