/**
 * The log's Merkle tree as the writer keeps it: the compact tree of every leaf (O(log n)), plus an
 * *anchor* (the compact tree at the last signed size) and the leaf hashes appended since. That is all a
 * consistency proof from the last checkpoint needs (extension.ts), so nothing grows with the log.
 */
import { CompactTree } from './compact.js';
import { consistencyProofFromBorder } from './extension.js';
import { hashLeaf, hashLeafParts, type HashFn, type HashPartsFn } from './merkle.js';

export class LogTree {
  #tree: CompactTree;
  #anchor: CompactTree;
  #sinceAnchor: Uint8Array[] = [];

  private constructor(
    private readonly hash: HashFn,
    anchor: CompactTree,
    private readonly hashParts: HashPartsFn,
  ) {
    this.#anchor = anchor;
    this.#tree = CompactTree.decode(hash, anchor.encode());
  }

  /**
   * Starts from a saved anchor state (or the empty tree); replay the entries after it with `append`.
   * `hashParts` hashes entries given in parts (by default: joined, then `hash`).
   */
  static fromAnchor(hash: HashFn, anchorState?: Uint8Array, hashParts?: HashPartsFn): LogTree {
    const anchor = anchorState ? CompactTree.decode(hash, anchorState) : new CompactTree(hash);
    return new LogTree(hash, anchor, hashParts ?? ((parts) => hash(Buffer.concat(parts))));
  }

  get size(): number {
    return this.#tree.size;
  }

  get anchorSize(): number {
    return this.#anchor.size;
  }

  root(): Uint8Array {
    return this.#tree.root();
  }

  /**
   * Appends one entry (the stored bytes, whole or as parts to be joined) as a leaf; returns its RFC 6962
   * leaf hash.
   */
  append(entry: Uint8Array | readonly Uint8Array[]): Uint8Array {
    const leafHash =
      entry instanceof Uint8Array ? hashLeaf(this.hash, entry) : hashLeafParts(this.hashParts, entry);
    this.#tree.append(leafHash);
    this.#sinceAnchor.push(leafHash);
    return leafHash;
  }

  /** PROOF(anchorSize, D[size]); empty when nothing was appended or the anchor is the empty tree. */
  consistencyFromAnchor(): Uint8Array[] {
    if (this.#anchor.size === 0 || this.#sinceAnchor.length === 0) return [];
    return consistencyProofFromBorder(this.hash, this.#anchor, this.#sinceAnchor);
  }

  /** The root at `size` (≤ current size, ≥ anchor size) and a tree state for it, without changing anything. */
  snapshot(size: number): { root: Uint8Array; state: Uint8Array; proof: Uint8Array[] } {
    const t = CompactTree.decode(this.hash, this.#anchor.encode());
    const extra = this.#sinceAnchor.slice(0, size - this.#anchor.size);
    for (const h of extra) t.append(h);
    const proof =
      this.#anchor.size === 0 || extra.length === 0
        ? []
        : consistencyProofFromBorder(this.hash, this.#anchor, extra);
    return { root: t.root(), state: t.encode(), proof };
  }

  /**
   * Moves the anchor to `size` after a checkpoint at that size was signed. `state` is the tree state
   * at `size` that snapshot() returned, so the leaves are not hashed a second time.
   */
  advanceAnchor(size: number, state?: Uint8Array): void {
    const moved = size - this.#anchor.size;
    let t: CompactTree;
    if (state) {
      t = CompactTree.decode(this.hash, state);
      if (t.size !== size) throw new Error(`anchor state is for size ${t.size}, not ${size}`);
    } else {
      t = CompactTree.decode(this.hash, this.#anchor.encode());
      for (const h of this.#sinceAnchor.slice(0, moved)) t.append(h);
    }
    this.#anchor = t;
    this.#sinceAnchor = this.#sinceAnchor.slice(moved);
  }

  anchorState(): Uint8Array {
    return this.#anchor.encode();
  }
}
