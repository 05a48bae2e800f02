/**
 * The auditor-side index's files (docs/AUDITOR.md §9.3). One directory per (log, recipient key):
 *
 * | file | content |
 * |---|---|
 * | `INDEX.json` | `IndexMeta`: what the index covers (tree size, the tree's compact state there, the roots it computed at the source's checkpoint sizes, the last leaf's hash) and how long `commands.jsonl` is; written last, by rename |
 * | `sessions.jsonl` | one `SessionSummary` per line, every session seen (rewritten at each update) |
 * | `commands.jsonl` | one `CommandLine` per line, of the sessions that are done (ended, or accounted for by a crash recovery); appended |
 * | `open-commands.jsonl` | the same, for sessions still open: derived again at each update (rewritten) |
 * | `index.lock` | `{pid}` while a run updates the index |
 *
 * Plaintext derived from sealed sessions: the directory is 0700, the files 0600.
 */
import type { Derivation } from '../commands/types.js';

export const INDEX_FORMAT = 'sealgate-index-v1';

export const INDEX_FILES = {
  meta: 'INDEX.json',
  sessions: 'sessions.jsonl',
  commands: 'commands.jsonl',
  openCommands: 'open-commands.jsonl',
  lock: 'index.lock',
} as const;

/** A command as the index and `sealgate commands --json` give it: Command, plus who and where. */
export interface CommandLine {
  readonly session: string;
  readonly gate_user: string;
  readonly target: string;
  readonly channel: number;
  /** Leaf index of the record the command starts at. */
  readonly index: number;
  /** ISO 8601, microseconds. */
  readonly time: string;
  readonly derivation: Derivation;
  readonly text: string;
  readonly confident: boolean;
  readonly note?: string;
}

export interface IndexMeta {
  readonly format: typeof INDEX_FORMAT;
  readonly origin: string;
  /** Hex leaf hash (RFC 6962) of entry 0: the log's identity, with the origin. */
  readonly first_leaf: string;
  /** Hex key id (FORMAT.md §3.1) of the recipient key the index was derived with. */
  readonly key_id: string;
  /** Entries covered: leaves [0, size). */
  readonly size: number;
  /**
   * Hex compact tree state (src/seal/compact.ts) at the anchor: the last source checkpoint size ≤ size
   * when the index was written (0: none). With `tail` it gives the root at any size up to `size`, and
   * extends to the roots of later checkpoints.
   */
  readonly anchor: string;
  /** Hex leaf hashes of the leaves from the anchor up to size. */
  readonly tail: string[];
  /** Hex leaf hash of entry size − 1. */
  readonly last_leaf: string;
  /** The root this index computed at each source checkpoint size ≤ size: `[size, hex root]`. */
  readonly roots: [number, string][];
  /** The first leaf of the earliest session still open: an update decrypts again from here. */
  readonly resume_from: number;
  /** Whether every run that derived this index verified the log first (verify before read). */
  readonly verified?: boolean;
  /** Bytes of commands.jsonl that belong to the index (a torn append beyond them is dropped). */
  readonly commands_bytes: number;
  readonly commands: number;
  readonly sessions: number;
  readonly created: string;
  readonly updated: string;
}
