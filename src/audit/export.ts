/**
 * Export (docs/FORMAT.md §7): a bundle an auditor can verify away from the gate, with public keys only.
 *
 * - Reads the store read-only (a gate may be writing it) and exports up to its last checkpoint: what
 *   lies beyond is not signed yet.
 * - Complete when nothing is selected (every leaf from 0; the verifier recomputes the root); otherwise
 *   partial (a leaf range, or whole sessions) with an inclusion proof per entry to the last checkpoint.
 *   A partial bundle also carries every SIGNER_ROTATION entry (the signer chain, proven by the tree) and,
 *   for a session export, the CRASH_RECOVERY entries that account for its segments; a range export also
 *   carries the header of every segment it starts inside (a header before the range whose segment has
 *   a record in it), so that those records can be decrypted.
 * - Consistency proofs join consecutive checkpoints, and the auditor's trusted checkpoint if given.
 * - manifest.json lists every file's SHA-256 (entries.bin's as a digest of its leaf hashes); manifest.sig
 *   signs it with the log's signer key.
 * - The export is itself logged: an audit event goes into `<store>/audit-spool` (FORMAT.md §6.1) before
 *   the bundle is moved into place, so that no bundle exists whose export was not recorded.
 *
 * The bundle is written to a temporary directory beside the target and renamed into place at the end.
 */
import fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CryptoProvider, PrivateKey, PublicKey } from '../crypto/index.js';
import { auditEvent, spoolAuditEvent, SPOOL_DIR } from '../seal/audit-spool.js';
import { encodeBase64, parseCheckpoint } from '../seal/checkpoint.js';
import { SealError } from '../seal/errors.js';
import { decodeEntry } from '../seal/format/entry.js';
import { EntryKind, SystemType } from '../seal/format/types.js';
import { hashLeaf, SubtreeRoots } from '../seal/merkle.js';
import { noteKeyId, parseNote, signNote } from '../seal/note.js';
import { LocalStore } from '../seal/store.js';
import { readRecordMeta } from './verify/record-meta.js';
import {
  BUNDLE_FILES,
  BUNDLE_FORMAT,
  encodeEntryFrames,
  encodeNoteFrames,
  EntriesDigest,
  HASHED_FILES,
  manifestNoteBody,
  PROOFS_FORMAT,
  SIGNERS_FORMAT,
  writeBundleFiles,
  type BundleManifest,
  type BundleProofs,
  type RotationJson,
  type SignersFile,
} from './bundle.js';
import { AuditError } from './errors.js';
import type { LogEntry } from './source.js';

export interface ExportProgress {
  readonly phase: 'entries' | 'proofs' | 'writing';
  readonly done: number;
  readonly total: number;
}

export interface ExportOptions {
  readonly provider: CryptoProvider;
  /** The store directory (it has a LOG file). */
  readonly storeDir: string;
  /** The bundle directory to create; it must not exist, or be empty. */
  readonly outDir: string;
  /** Signs manifest.sig: the log's (current) checkpoint signer key, ECDSA P-384. */
  readonly signer: PrivateKey;
  /** First leaf index of a range export (inclusive). */
  readonly from?: number;
  /** End of a range export (exclusive); at most the last checkpoint's size. */
  readonly to?: number;
  /** Session ids (32 hex digits): export these sessions' segments only. */
  readonly sessions?: readonly string[];
  /** A signed checkpoint the auditor retained: the bundle carries a consistency proof from it. */
  readonly trustedCheckpoint?: string;
  /** More signer public keys for keys/signers.json (e.g. the key that signed before a rotation). */
  readonly signers?: readonly PublicKey[];
  readonly onProgress?: (p: ExportProgress) => void;
}

export interface ExportResult {
  readonly outDir: string;
  readonly manifest: BundleManifest;
  /** Hex SHA-256 of manifest.json. */
  readonly manifestSha256: string;
  /** The audit-spool file recording this export. */
  readonly auditSpoolFile: string;
  /** Things the auditor should know (e.g. a trusted checkpoint beyond the log: tail truncation). */
  readonly warnings: readonly string[];
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const b64 = (hashes: readonly Uint8Array[]): string[] => hashes.map((h) => encodeBase64(h));
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const PROGRESS_EVERY = 8192;

function invalid(message: string): never {
  throw new AuditError('EXPORT_INVALID', message);
}

function openStore(dir: string): LocalStore {
  if (!fs.existsSync(dir)) throw new AuditError('SOURCE_NOT_FOUND', `${dir}: no such directory`);
  try {
    return LocalStore.openReadOnly(dir);
  } catch (err) {
    if (err instanceof SealError) throw new AuditError('SOURCE_UNRECOGNISED', err.message, { cause: err });
    throw err;
  }
}

function checkOutDir(outDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(outDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AuditError('OUTPUT_EXISTS', `${outDir} exists and is not a readable directory`);
  }
  if (names.length > 0)
    throw new AuditError('OUTPUT_EXISTS', `${outDir} exists and is not empty; refusing to overwrite it`);
}

interface StoreCheckpoint {
  readonly note: string;
  readonly size: number;
  readonly root: Uint8Array;
}

/** The store's checkpoints up to what it holds (a live writer may add one beyond what we opened). */
function storeCheckpoints(store: LocalStore): StoreCheckpoint[] {
  const out: StoreCheckpoint[] = [];
  store.checkpoints().forEach((note, i) => {
    let size: number;
    let root: Uint8Array;
    try {
      const cp = parseCheckpoint(parseNote(note).body);
      size = Number(cp.size);
      root = cp.root;
    } catch (err) {
      invalid(
        `checkpoint ${i} in the store does not parse (${(err as Error).message}); run \`sealgate verify\` on the store`,
      );
    }
    if (size <= store.size) out.push({ note, size, root });
  });
  return out;
}

/** Checkpoints a partial bundle carries: those signed while its range was written, the first after it, and the last. */
function selectCheckpoints(
  all: readonly StoreCheckpoint[],
  from: number,
  to: number,
  complete: boolean,
): StoreCheckpoint[] {
  if (complete) return [...all];
  const lastIdx = all.length - 1;
  const firstAfter = all.findIndex((c) => c.size >= to);
  return all.filter((c, i) => (c.size > from && c.size <= to) || i === firstAfter || i === lastIdx);
}

/**
 * A range export's headers from before the range: remembers each header before `from` until its segment
 * closes (FINAL), and moves it to `carried` at its segment's first record inside the range.
 */
function carryHeader(
  index: number,
  bytes: Uint8Array,
  from: number,
  open: Map<string, LogEntry>,
  carried: LogEntry[],
): void {
  const kind = bytes[0];
  if (kind === EntryKind.SEGMENT_HEADER && index < from) {
    let id: string;
    try {
      const entry = decodeEntry(bytes);
      if (entry.kind !== EntryKind.SEGMENT_HEADER) return;
      id = hex(entry.segmentId);
    } catch {
      return; // verify names a header that does not decode
    }
    open.set(id, { index, bytes: bytes.slice() });
    return;
  }
  if (kind !== EntryKind.SEALED_RECORD) return;
  const meta = readRecordMeta(bytes);
  if (!meta) return;
  if (index < from) {
    if (meta.final) open.delete(meta.segment);
    return;
  }
  const header = open.get(meta.segment);
  if (header) {
    carried.push(header);
    open.delete(meta.segment);
  }
}

/** Exports a store into a bundle directory (docs/FORMAT.md §7). */
export async function exportBundle(opts: ExportOptions): Promise<ExportResult> {
  const { provider, signer } = opts;
  const hash = (d: Uint8Array): Uint8Array => provider.digest('sha256', d);
  const outDir = resolve(opts.outDir);
  checkOutDir(outDir);
  if (signer.algorithm.type !== 'ec' || signer.algorithm.curve !== 'P-384') {
    throw new AuditError(
      'EXPORT_INVALID',
      "the signer key must be the log's ECDSA P-384 checkpoint signing key",
    );
  }
  const sessionSet = opts.sessions ? new Set(opts.sessions.map((s) => s.toLowerCase())) : undefined;
  for (const s of sessionSet ?? [])
    if (!/^[0-9a-f]{32}$/.test(s)) invalid(`session id ${JSON.stringify(s)} is not 32 hex digits`);
  if (sessionSet && sessionSet.size === 0) invalid('no session ids given');
  if (sessionSet && (opts.from !== undefined || opts.to !== undefined))
    invalid('select a leaf range or sessions, not both');

  const store = openStore(opts.storeDir);
  try {
    const origin = store.origin;
    const all = storeCheckpoints(store);
    const last = all.at(-1);
    if (!last) invalid(`the store ${opts.storeDir} has no checkpoint yet: nothing in it is signed`);
    const treeSize = last.size;
    const from = opts.from ?? 0;
    const to = opts.to ?? treeSize;
    if (!isIndex(from) || !isIndex(to) || from >= to)
      invalid(`the leaf range [${opts.from}, ${opts.to}) is empty or not integers`);
    if (to > treeSize)
      invalid(
        `the range ends at leaf ${to}, beyond the store's last checkpoint (size ${treeSize}); export up to it`,
      );
    const complete = !sessionSet && from === 0 && to === treeSize;

    // One pass over the signed entries: leaf hashes for the proofs, and what to export.
    const leafHashes: Uint8Array[] = new Array<Uint8Array>(treeSize);
    const selected: LogEntry[] = [];
    const rotations: RotationJson[] = [];
    const rotationKeys: PublicKey[] = [];
    const segmentSelected = new Set<string>();
    const sessionsFound = new Set<string>();
    const rangeOnly = !complete && !sessionSet;
    // Range: headers before `from` of segments not closed yet (by segment id), and those a record in the
    // range needs (exported with the range; FORMAT.md §7).
    const openHeaders = new Map<string, LogEntry>();
    const carriedHeaders: LogEntry[] = [];
    let index = 0;
    for (const bytes of store.entries(0, treeSize)) {
      leafHashes[index] = hashLeaf(hash, bytes);
      let take = complete || (!sessionSet && index >= from && index < to);
      const kind = bytes[0];
      if (kind === EntryKind.SYSTEM || (sessionSet && kind !== undefined)) {
        let entry;
        try {
          entry = decodeEntry(bytes);
        } catch {
          entry = undefined; // exported as is; verify names it
        }
        if (entry?.kind === EntryKind.SYSTEM && entry.type === SystemType.SIGNER_ROTATION) {
          const b = entry.body;
          rotations.push({
            index,
            old_key_id: String(b.old_key_id),
            new_key_id: String(b.new_key_id),
            new_key_spki: String(b.new_key_spki),
            signature: String(b.signature),
          });
          try {
            rotationKeys.push(provider.importPublicKey(Buffer.from(String(b.new_key_spki), 'base64')));
          } catch {
            // verify reports the bad rotation
          }
          take = true; // the signer chain travels with every bundle
        }
        if (sessionSet && entry) {
          if (entry.kind === EntryKind.SEGMENT_HEADER) {
            const session = hex(entry.sessionId);
            if (sessionSet.has(session)) {
              segmentSelected.add(hex(entry.segmentId));
              sessionsFound.add(session);
              take = true;
            }
          } else if (entry.kind === EntryKind.SEALED_RECORD) {
            if (segmentSelected.has(hex(entry.segmentId))) take = true;
          } else if (entry.type === SystemType.CRASH_RECOVERY) {
            const named = Array.isArray(entry.body.open_segments)
              ? (entry.body.open_segments as unknown[])
              : [];
            if (named.some((o) => segmentSelected.has(String((o as { segment_id?: unknown })?.segment_id))))
              take = true;
          }
        }
      }
      if (rangeOnly && index < to) carryHeader(index, bytes, from, openHeaders, carriedHeaders);
      if (take) selected.push({ index, bytes });
      index++;
      if (index % PROGRESS_EVERY === 0) opts.onProgress?.({ phase: 'entries', done: index, total: treeSize });
    }
    if (index !== treeSize)
      invalid(`the store holds ${index} entries, fewer than its last checkpoint covers (${treeSize})`);
    if (sessionSet) {
      const missing = [...sessionSet].filter((s) => !sessionsFound.has(s));
      if (missing.length > 0)
        invalid(`no session ${missing.join(', ')} in the store up to its last checkpoint`);
    }
    opts.onProgress?.({ phase: 'entries', done: treeSize, total: treeSize });
    if (carriedHeaders.length > 0) {
      selected.push(...carriedHeaders);
      selected.sort((a, b) => a.index - b.index);
    }

    const range = sessionSet
      ? { from: selected[0]?.index ?? 0, to: (selected.at(-1)?.index ?? 0) + 1 }
      : { from, to };
    const checkpoints = selectCheckpoints(all, range.from, range.to, complete);

    // Proofs: consistency between consecutive checkpoints (and from the trusted one); inclusion for partial.
    const tree = new SubtreeRoots(hash, leafHashes);
    const consistency: BundleProofs['consistency'][number][] = [];
    for (let i = 1; i < checkpoints.length; i++) {
      const [a, b] = [checkpoints[i - 1].size, checkpoints[i].size];
      if (a > 0 && b > a) consistency.push({ from: a, to: b, proof: b64(tree.consistencyProof(a, b)) });
    }
    const warnings: string[] = [];
    if (opts.trustedCheckpoint !== undefined) {
      let tc;
      try {
        tc = parseCheckpoint(parseNote(opts.trustedCheckpoint).body);
      } catch (err) {
        throw new AuditError(
          'TRUST_INPUT_INVALID',
          `the trusted checkpoint does not parse: ${(err as Error).message}`,
        );
      }
      if (tc.origin !== origin)
        throw new AuditError(
          'TRUST_INPUT_INVALID',
          `the trusted checkpoint is for origin ${JSON.stringify(tc.origin)}, not ${JSON.stringify(origin)}`,
        );
      const size = Number(tc.size);
      if (size > treeSize) {
        warnings.push(
          `the trusted checkpoint (size ${size}) is beyond the store's last checkpoint (size ${treeSize}): the log's tail is missing`,
        );
      } else if (
        size > 0 &&
        size < treeSize &&
        !consistency.some((p) => p.from === size && p.to === treeSize)
      ) {
        consistency.push({ from: size, to: treeSize, proof: b64(tree.consistencyProof(size, treeSize)) });
      }
      if (size <= treeSize && size > 0 && !provider.equal(tree.mth(0, size), tc.root)) {
        warnings.push(
          `the store's root at size ${size} is not the trusted checkpoint's: this log does not extend it`,
        );
      }
    }
    const inclusion = complete
      ? []
      : selected.map((e, i) => {
          if ((i + 1) % PROGRESS_EVERY === 0)
            opts.onProgress?.({ phase: 'proofs', done: i + 1, total: selected.length });
          return { index: e.index, proof: b64(tree.inclusionProof(e.index, treeSize)) };
        });
    const proofs: BundleProofs = { format: PROOFS_FORMAT, tree_size: treeSize, consistency, inclusion };

    // keys/signers.json: the manifest signer, any extra keys, and every key a rotation introduced.
    const keys: PublicKey[] = [];
    for (const k of [signer.publicKey, ...(opts.signers ?? []), ...rotationKeys]) {
      if (!keys.some((x) => provider.equal(x.spkiDer(), k.spkiDer()))) keys.push(k);
    }
    const signersFile: SignersFile = {
      format: SIGNERS_FORMAT,
      origin,
      signers: keys.map((k) => ({
        key_id: hex(noteKeyId(provider, k)),
        sha256: hex(hash(k.spkiDer())),
        spki_pem: k.spkiPem(),
      })),
      rotations,
    };

    const entriesDigest = new EntriesDigest();
    for (const e of selected) entriesDigest.add(e.index, leafHashes[e.index]!);
    opts.onProgress?.({ phase: 'writing', done: 0, total: 1 });
    const files = new Map<string, Uint8Array>([
      [BUNDLE_FILES.entries, encodeEntryFrames(selected)],
      [BUNDLE_FILES.checkpoints, encodeNoteFrames(checkpoints.map((c) => c.note))],
      [BUNDLE_FILES.proofs, Buffer.from(JSON.stringify(proofs))],
      [BUNDLE_FILES.signers, Buffer.from(`${JSON.stringify(signersFile, null, 2)}\n`)],
    ]);
    const manifest: BundleManifest = {
      format: BUNDLE_FORMAT,
      origin,
      complete,
      range,
      ...(sessionSet ? { sessions: [...sessionSet].sort() } : {}),
      tree_size: treeSize,
      entries: selected.length,
      checkpoints: checkpoints.length,
      created: new Date().toISOString(),
      entries_digest: entriesDigest.hex(hash),
      files: Object.fromEntries(HASHED_FILES.map((name) => [name, hex(hash(files.get(name)!))])),
    };
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const manifestSha256 = hex(hash(manifestBytes));
    let sig: string;
    try {
      sig = await signNote(provider, signer, origin, manifestNoteBody(origin, manifestSha256));
    } catch (err) {
      throw new AuditError(
        'EXPORT_INVALID',
        `signing the manifest with ${signer.ref} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    files.set(BUNDLE_FILES.manifest, manifestBytes);
    files.set(BUNDLE_FILES.signature, Buffer.from(sig));

    // Write beside the target, log the export, then move the bundle into place.
    const tmp = join(dirname(outDir), `.${basename(outDir)}.partial-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true, mode: 0o755 });
    let auditSpoolFile: string;
    try {
      writeBundleFiles(tmp, files);
      auditSpoolFile = spoolAuditEvent(
        join(opts.storeDir, SPOOL_DIR),
        auditEvent('export', {
          bundle: outDir,
          complete,
          range,
          ...(sessionSet ? { sessions: manifest.sessions } : {}),
          tree_size: treeSize,
          entries: selected.length,
          checkpoints: checkpoints.length,
          manifest_sha256: manifestSha256,
          signer_key_id: hex(noteKeyId(provider, signer.publicKey)),
        }),
      );
      if (fs.existsSync(outDir)) fs.rmdirSync(outDir); // checked empty above
      fs.renameSync(tmp, outDir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (err instanceof AuditError) throw err;
      throw new AuditError('EXPORT_INVALID', `writing the bundle failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    opts.onProgress?.({ phase: 'writing', done: 1, total: 1 });
    return { outDir, manifest, manifestSha256, auditSpoolFile, warnings };
  } finally {
    void store.close();
  }
}
