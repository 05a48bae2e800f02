/**
 * Sessions and commands of a log, through the auditor-side index (docs/AUDITOR.md §9.3).
 *
 * The index is trusted only while it is bound to the log: same origin, same leaf 0, same recipient key;
 * the log is at least as long; the hash of the last indexed leaf is unchanged; and every checkpoint
 * the source holds up to the indexed size has the root the index computed at that size (from its own
 * hashes of the leaves it read). When the log grew, only the new entries are decrypted (and the open
 * sessions again), and the roots of the new checkpoints must come out of the index's tree extended by
 * the new leaves: a rewritten prefix cannot. Any mismatch rebuilds the index from scratch; a log whose
 * own entries do not give its checkpoints' roots is not indexed at all (run `sealgate verify`).
 */
import type { CryptoProvider, PrivateKey } from '../../crypto/index.js';
import { parseCheckpoint } from '../../seal/checkpoint.js';
import { CompactTree } from '../../seal/compact.js';
import { parseNote } from '../../seal/note.js';
import { recipientKeyId } from '../../seal/segment-keys.js';
import type { DecryptSummary } from '../decrypt.js';
import type { SessionSummary } from '../sessions.js';
import type { LogSource } from '../source.js';
import { LeafHasher } from '../verify/tree.js';
import type { Derived, DeriveOptions } from './derive.js';
import { assertOutside, defaultIndexRoot, IndexDirectory, keyIndexDir } from './directory.js';
import { INDEX_FORMAT, type CommandLine, type IndexMeta } from './format.js';

/** What became of the index in this run. */
export type IndexUse =
  /** Nothing new in the log: read from the index alone. */
  | 'current'
  /** The log grew: the new entries were derived and added. */
  | 'updated'
  /** No index yet: built. */
  | 'built'
  /** The index no longer matched the log (or --rebuild): built again. */
  | 'rebuilt'
  /** No index (--no-index, a partial bundle, another run holds the lock, the log does not match its checkpoints). */
  | 'none';

export interface IndexedLog {
  readonly sessions: SessionSummary[];
  commands(): Iterable<CommandLine>;
  readonly use: IndexUse;
  /** The index directory, when one was used. */
  readonly dir?: string;
  /** Why the index was rebuilt or not used. */
  readonly reason?: string;
  /** Entries and bytes read from the source in this run (0 for `current`). */
  readonly entriesRead: number;
  readonly bytesRead: number;
  /** The decryption's summary, when one ran. */
  readonly summary?: DecryptSummary;
  /** Whether the read that last wrote the index was verified (`current` runs read no entries). */
  readonly indexVerified?: boolean;
}

export interface IndexedLogOptions {
  readonly provider: CryptoProvider;
  readonly source: LogSource;
  readonly key: PrivateKey;
  /** `false`: no index (--no-index). */
  readonly useIndex: boolean;
  /** --index DIR; otherwise under `root` (default: defaultIndexRoot()). */
  readonly dir?: string;
  readonly root?: string;
  /** Discard the index and build it again. */
  readonly rebuild?: boolean;
  /** Entries read so far in this run, of `total`. */
  readonly onProgress?: (entries: number, total: number) => void;
  /**
   * Called once before any entry is decrypted (verify before read, and the audit event); returns
   * whether the read is verified, which the index records. It may throw to refuse the read.
   */
  readonly beforeRead?: () => boolean;
  /** An index written by an unverified read is not enough: call beforeRead even when it is current. */
  readonly requireVerified?: boolean;
}

/**
 * The derivation (decrypt, reconstructor, xterm) is loaded only when entries are to be read: a run
 * that finds the index current starts without it.
 */
async function derive(opts: DeriveOptions): Promise<Derived> {
  const { derive: run } = await import('./derive.js');
  return run(opts);
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** The source's checkpoints as claims: size → hex root. Notes that do not parse are verify's business. */
function checkpointClaims(source: LogSource): Map<number, string> {
  const claims = new Map<number, string>();
  for (const note of source.checkpoints()) {
    try {
      const cp = parseCheckpoint(parseNote(note).body);
      claims.set(Number(cp.size), hex(cp.root));
    } catch {
      // Not a checkpoint: nothing to compare with.
    }
  }
  return claims;
}

/** The first claim the computed roots contradict, as a sentence; undefined when they agree. */
function contradiction(roots: Iterable<[number, string]>, claims: Map<number, string>): string | undefined {
  for (const [size, root] of roots) {
    const claim = claims.get(size);
    if (claim === undefined) return `the checkpoint at size ${size} the index was checked against is gone`;
    if (claim !== root) {
      return `the checkpoint at size ${size} has root ${claim.slice(0, 16)}…, the leaves give ${root.slice(0, 16)}…`;
    }
  }
  return undefined;
}

function sourceSize(source: LogSource): number | undefined {
  if (source.kind === 'store') return source.entryCount;
  const m = source.bundle?.manifest;
  return m?.complete ? m.tree_size : undefined; // a partial bundle skips leaves: not indexed
}

function firstEntry(source: LogSource, index: number): Uint8Array | undefined {
  for (const e of source.entries(index)) return e.index === index ? Uint8Array.from(e.bytes) : undefined;
  return undefined;
}

export async function openIndexedLog(opts: IndexedLogOptions): Promise<IndexedLog> {
  const { provider, source, key } = opts;
  const hash = (d: Uint8Array): Uint8Array => provider.digest('sha256', d);
  const claims = checkpointClaims(source);
  const sizes = new Set(claims.keys());
  const size = sourceSize(source);
  const progress = (from: number) => (n: number) =>
    opts.onProgress?.(n, Math.max(0, (size ?? source.entryCount) - from));
  let verified: boolean | undefined;
  const before = (): boolean => (verified ??= opts.beforeRead ? opts.beforeRead() : false);
  const fresh = (): Promise<Derived> => {
    before();
    return derive({
      provider,
      entries: (f) => source.entries(f),
      key,
      checkpointSizes: sizes,
      onProgress: progress(0),
    });
  };
  const direct = async (reason: string): Promise<IndexedLog> => {
    const d = await fresh();
    return {
      sessions: d.sessions,
      commands: () => [...d.doneCommands, ...d.openCommands].sort((a, b) => a.index - b.index),
      use: 'none',
      reason,
      entriesRead: d.summary.entries,
      bytesRead: d.bytesRead,
      summary: d.summary,
    };
  };
  if (!opts.useIndex) return direct('--no-index');
  if (size === undefined) return direct('a partial bundle is not indexed');
  const entry0 = firstEntry(source, 0);
  if (!entry0) return direct('the log is empty');
  const leaves = new LeafHasher(hash);
  const firstLeaf = hex(leaves.leafHash(entry0));
  const keyId = hex(recipientKeyId(provider, key.publicKey));
  const dir = opts.dir ?? keyIndexDir(opts.root ?? defaultIndexRoot(), source.origin, firstLeaf, keyId);
  assertOutside(dir, source.path);
  const index = IndexDirectory.open(dir);
  if (!index.lock()) return direct(`another run is updating the index ${dir}`);
  try {
    const meta = opts.rebuild ? undefined : index.readMeta();
    let reason = opts.rebuild ? '--rebuild' : undefined;
    if (meta) {
      reason = mismatch(meta, {
        origin: source.origin,
        firstLeaf,
        keyId,
        size,
        claims,
        hash,
        source,
        leaves,
      });
      if (reason === undefined && meta.size === size) {
        if (opts.requireVerified && meta.verified !== true) before();
        const open = index.readOpenCommands();
        return {
          sessions: index.readSessions(),
          commands: () => index.commands(meta, open),
          use: 'current',
          dir,
          entriesRead: 0,
          bytesRead: 0,
          indexVerified: meta.verified === true || verified === true,
        };
      }
      if (reason === undefined) {
        before();
        const d = await derive({
          provider,
          entries: (f) => source.entries(f),
          key,
          checkpointSizes: sizes,
          previous: {
            size: meta.size,
            anchor: unhex(meta.anchor),
            tail: meta.tail.map(unhex),
            resumeFrom: meta.resume_from,
            sessions: index.readSessions(),
            anySegment: true,
          },
          onProgress: progress(meta.resume_from),
        });
        reason = contradiction(d.roots, claims);
        if (reason === undefined) {
          const written = save(
            index,
            d,
            meta,
            firstLeaf,
            source.origin,
            meta.commands_bytes,
            verified === true,
          );
          return result(index, d, written, 'updated', dir);
        }
      }
    }
    index.clear();
    const d = await fresh();
    const bad = contradiction(d.roots, claims);
    if (bad !== undefined) {
      const why = `not indexed: ${bad} (the log's entries do not match its checkpoints: run sealgate verify)`;
      return {
        sessions: d.sessions,
        commands: () => [...d.doneCommands, ...d.openCommands].sort((a, b) => a.index - b.index),
        use: 'none',
        reason: why,
        entriesRead: d.summary.entries,
        bytesRead: d.bytesRead,
        summary: d.summary,
      };
    }
    const written = save(index, d, undefined, firstLeaf, source.origin, 0, verified === true);
    return result(index, d, written, meta || reason ? 'rebuilt' : 'built', dir, reason);
  } finally {
    index.unlock();
  }
}

function result(
  index: IndexDirectory,
  d: Derived,
  meta: IndexMeta,
  use: IndexUse,
  dir: string,
  reason?: string,
): IndexedLog {
  const open = index.readOpenCommands(); // under the lock: result() runs before unlock
  return {
    sessions: d.sessions,
    commands: () => index.commands(meta, open),
    use,
    dir,
    ...(reason ? { reason } : {}),
    entriesRead: d.summary.entries,
    bytesRead: d.bytesRead,
    summary: d.summary,
    indexVerified: meta.verified === true,
  };
}

function save(
  index: IndexDirectory,
  d: Derived,
  previous: IndexMeta | undefined,
  firstLeaf: string,
  origin: string,
  fromBytes: number,
  verified: boolean,
): IndexMeta {
  const roots = new Map<number, string>(previous?.roots ?? []);
  for (const [s, r] of d.roots) roots.set(s, r);
  const now = new Date().toISOString();
  const commands = (previous?.commands ?? 0) + d.doneCommands.length;
  return index.write(
    {
      format: INDEX_FORMAT,
      origin,
      first_leaf: firstLeaf,
      key_id: d.keyId,
      size: d.size,
      anchor: hex(d.anchor),
      tail: d.tail.map(hex),
      last_leaf: d.lastLeaf || previous?.last_leaf || '',
      roots: [...roots.entries()].sort((a, b) => a[0] - b[0]),
      resume_from: d.resumeFrom,
      // An update keeps "verified" only if every run that wrote the index was verified.
      verified: verified && (previous === undefined || previous.verified === true),
      commands,
      sessions: d.sessions.length,
      created: previous?.created ?? now,
      updated: now,
    },
    d.sessions,
    d.doneCommands,
    fromBytes,
    d.openCommands,
  );
}

interface Binding {
  readonly origin: string;
  readonly firstLeaf: string;
  readonly keyId: string;
  readonly size: number;
  readonly claims: Map<number, string>;
  readonly hash: (d: Uint8Array) => Uint8Array;
  readonly source: LogSource;
  readonly leaves: LeafHasher;
}

/** Why the index no longer describes the log, as a sentence; undefined while it does. */
function mismatch(meta: IndexMeta, b: Binding): string | undefined {
  if (meta.origin !== b.origin || meta.first_leaf !== b.firstLeaf) return 'it was built from another log';
  if (meta.key_id !== b.keyId) return 'it was built with another key';
  if (meta.size > b.size) {
    return `the log has ${b.size} entries, fewer than the ${meta.size} the index covers (truncated or replaced)`;
  }
  if (meta.size > 0) {
    const last = firstEntry(b.source, meta.size - 1);
    if (!last || hex(b.leaves.leafHash(last)) !== meta.last_leaf) return `leaf ${meta.size - 1} has changed`;
  }
  // The roots at the checkpoints up to the indexed size: the index's own, and those a later checkpoint
  // inside the tail gives (anchor + tail).
  const ours = new Map<number, string>(meta.roots);
  let tree: CompactTree;
  try {
    tree = CompactTree.decode(b.hash, unhex(meta.anchor));
  } catch {
    return 'its tree state does not decode';
  }
  for (const leaf of meta.tail) {
    tree.append(unhex(leaf));
    if (b.claims.has(tree.size)) ours.set(tree.size, hex(tree.root()));
  }
  if (tree.size !== meta.size) return 'its tree state does not cover what it says';
  for (const [s, root] of b.claims) {
    if (s > meta.size) continue;
    const mine = ours.get(s);
    if (mine === undefined) return `the log has a checkpoint at size ${s} the index never saw`;
    if (mine !== root) return `the checkpoint at size ${s} is not the one the index was built against`;
  }
  return contradiction(
    [...ours.entries()].filter(([s]) => s <= meta.size),
    b.claims,
  );
}
