/**
 * Derives what the auditor-side index holds (docs/AUDITOR.md §9.3) from a log: session summaries
 * (sessions.ts) and commands (commands/reconstruct.ts), and the Merkle tree over the leaves it read,
 * which binds the index to the log it came from.
 *
 * Incremental: given what an earlier run derived up to size N, it decrypts from `resume_from` (the first
 * leaf of the earliest session still open at N; N when none was), hashes only the leaves from N on,
 * keeps the rows and commands of sessions already done and derives every open session again from its
 * start. A session is done once it has ended, or once a CRASH_RECOVERY accounted for it.
 */
import type { CryptoProvider, PrivateKey } from '../../crypto/index.js';
import { CompactTree } from '../../seal/compact.js';
import { LeafHasher } from '../verify/tree.js';
import { CommandReconstructor } from '../commands/reconstruct.js';
import type { Command } from '../commands/types.js';
import { decryptLog, DecryptError, type DecryptSummary, type EntryInput } from '../decrypt.js';
import { isoMicros } from '../decrypt-event.js';
import { SessionSummarizer, type SessionSummary } from '../sessions.js';
import type { CommandLine } from './format.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** What an earlier run derived: the starting point of an update. */
export interface DerivedState {
  /** Leaves [0, size) were read. */
  readonly size: number;
  /** The compact tree (CompactTree.encode()) at the last checkpoint size ≤ size: the anchor. */
  readonly anchor: Uint8Array;
  /** The leaf hashes after the anchor, up to size. */
  readonly tail: readonly Uint8Array[];
  readonly resumeFrom: number;
  /** Every session seen (the done ones are kept; the open ones are derived again). */
  readonly sessions: readonly SessionSummary[];
  /** Whether anything was ever addressed to the key (an update that finds no new segment is fine then). */
  readonly anySegment: boolean;
}

export interface DeriveOptions {
  readonly provider: CryptoProvider;
  /** The log's entries from `from` on, in leaf order (LogSource.entries(from)). */
  readonly entries: (from: number) => Iterable<EntryInput>;
  readonly key: PrivateKey;
  /** The source's checkpoint sizes: the roots at these sizes are computed for the index. */
  readonly checkpointSizes: ReadonlySet<number>;
  readonly previous?: DerivedState;
  /** Entries read so far, about every 1024 (decrypt's onProgress). */
  readonly onProgress?: (entries: number) => void;
}

export interface Derived {
  readonly keyId: string;
  /** Leaves [0, size) are covered. */
  readonly size: number;
  /** As DerivedState: the compact tree at the last checkpoint size reached, and the leaf hashes after it. */
  readonly anchor: Uint8Array;
  readonly tail: Uint8Array[];
  /** Hex leaf hashes of entry 0 and entry size − 1 (empty strings for an empty log). */
  readonly firstLeaf: string;
  readonly lastLeaf: string;
  /** The roots computed at checkpoint sizes among the leaves hashed in this run. */
  readonly roots: [number, string][];
  readonly resumeFrom: number;
  /** Every session, done and open, in the order of their first entry. */
  readonly sessions: SessionSummary[];
  /** Commands of sessions that became done in this run (the earlier ones are not repeated). */
  readonly doneCommands: CommandLine[];
  /** Commands of the sessions still open. */
  readonly openCommands: CommandLine[];
  readonly anySegment: boolean;
  readonly summary: DecryptSummary;
  /** Bytes of the entries read in this run. */
  readonly bytesRead: number;
}

function commandLine(c: Command, row: SessionSummary | undefined): CommandLine {
  return {
    session: c.session,
    gate_user: row?.gate_user ?? '',
    target: row?.target ?? '',
    channel: c.channel,
    index: c.index,
    time: isoMicros(c.timeUs),
    derivation: c.derivation,
    text: c.text,
    confident: c.confident,
    ...(c.note !== undefined ? { note: c.note } : {}),
  };
}

/**
 * Runs one derivation. Throws DecryptError at the first failure (as decrypt does: nothing from a
 * failing entry on is trusted), and NO_SEGMENT_FOR_KEY when no segment, in this run or an earlier one,
 * was addressed to the key.
 */
export async function derive(opts: DeriveOptions): Promise<Derived> {
  const { provider, key, checkpointSizes, previous } = opts;
  const hash = (d: Uint8Array): Uint8Array => provider.digest('sha256', d);
  const leaves = new LeafHasher(hash);
  const roots: [number, string][] = [];
  const tree = previous ? CompactTree.decode(hash, previous.anchor) : new CompactTree(hash);
  let anchor = tree.encode();
  const tail: Uint8Array[] = [];
  for (const leaf of previous?.tail ?? []) {
    tree.append(leaf);
    tail.push(leaf);
    if (checkpointSizes.has(tree.size)) {
      // A checkpoint signed after the earlier run, inside what it covered: its root is checked too.
      roots.push([tree.size, hex(tree.root())]);
      anchor = tree.encode();
      tail.length = 0;
    }
  }
  if (previous && tree.size !== previous.size) {
    throw new Error(`index state: anchor and tail make ${tree.size} leaves, not ${previous.size}`);
  }
  const hashFrom = tree.size;
  const from = previous ? previous.resumeFrom : 0;
  let firstLeaf = '';
  let lastLeaf = '';
  let bytesRead = 0;

  function* hashed(): Generator<EntryInput> {
    for (const entry of opts.entries(from)) {
      bytesRead += entry.bytes.length;
      if (entry.index >= hashFrom) {
        if (entry.index !== tree.size) {
          throw new Error(`leaf ${entry.index} where leaf ${tree.size} was due (a partial source)`);
        }
        const leaf = leaves.leafHash(entry.bytes);
        tree.append(leaf);
        if (entry.index === 0) firstLeaf = hex(leaf);
        lastLeaf = hex(leaf);
        if (checkpointSizes.has(tree.size)) {
          roots.push([tree.size, hex(tree.root())]);
          anchor = tree.encode();
          tail.length = 0;
        } else {
          tail.push(leaf);
        }
      }
      yield entry;
    }
  }

  const kept = new Map<string, SessionSummary>();
  for (const row of previous?.sessions ?? []) {
    if (row.state === 'ended' || row.crashed) kept.set(row.session, row);
  }
  const summarizer = new SessionSummarizer();
  const reconstructor = new CommandReconstructor();
  const commands: Command[] = [];
  const run = decryptLog(provider, hashed(), key, {
    keepGoing: false,
    onSegment: (s) => {
      if (!kept.has(s.session)) summarizer.segment(s);
    },
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  let anySegment = previous?.anySegment ?? false;
  try {
    for await (const entry of run.opened()) {
      if (entry.kind === 'record') {
        if (kept.has(entry.session)) continue;
        summarizer.push(entry);
        for (const c of reconstructor.push(entry)) commands.push(c);
      } else {
        summarizer.push(entry);
      }
    }
    anySegment ||= run.summary.segmentsOpened > 0;
  } catch (err) {
    if (!(err instanceof DecryptError && err.code === 'NO_SEGMENT_FOR_KEY' && anySegment)) throw err;
  }
  for (const c of reconstructor.finish()) commands.push(c);

  const doneCommands: CommandLine[] = [];
  const openCommands: CommandLine[] = [];
  for (const c of commands) {
    if (kept.has(c.session)) continue;
    summarizer.countCommands(c.session, 1);
    const line = commandLine(c, summarizer.get(c.session));
    (summarizer.isDone(c.session) ? doneCommands : openCommands).push(line);
  }
  const byIndex = (a: CommandLine, b: CommandLine): number => a.index - b.index;
  doneCommands.sort(byIndex);
  openCommands.sort(byIndex);

  // Sessions in the order of their first entry: the kept ones, then the new (a kept session always
  // started before every session derived here).
  const fresh = summarizer.rows();
  const sessions = [...(previous?.sessions ?? []).filter((r) => kept.has(r.session)), ...fresh];
  sessions.sort((a, b) => a.first_index - b.first_index);
  const open = fresh.filter((r) => !summarizer.isDone(r.session));
  const resumeFrom = open.length > 0 ? Math.min(...open.map((r) => r.first_index)) : tree.size;

  return {
    keyId: run.keyId,
    size: tree.size,
    anchor,
    tail,
    firstLeaf,
    lastLeaf,
    roots,
    resumeFrom,
    sessions,
    doneCommands,
    openCommands,
    anySegment,
    summary: run.summary,
    bytesRead,
  };
}
