/**
 * The tree (docs/FORMAT.md §8 step 4): a complete source's root is recomputed from its leaves; a
 * partial bundle's leaves are proven by inclusion proofs (RFC 9162 §2.1.3.2) to its last checkpoint.
 *
 * Recomputing streams: each leaf is hashed once and folded into a compact range (O(log n) state, as
 * compact.ts), and the root is taken at every size asked for (each checkpoint's, the trusted one's,
 * each proof's end), so that one pass checks every checkpoint and builds no proof.
 */
import { Worker } from 'node:worker_threads';
import {
  emptyRoot,
  HASH_SIZE,
  LEAF_HASH_PREFIX,
  NODE_HASH_PREFIX,
  verifyInclusion,
  type HashFn,
} from '../../seal/merkle.js';
import type { InclusionProofJson } from '../bundle.js';
import { decodeProof } from './checkpoints.js';

/**
 * RFC 6962 §2.1 leaf hashes, HASH(0x00 || entry), through one reused buffer: no allocation per leaf
 * but the digest itself (merkle.ts `hashLeaf` allocates the prefixed copy each time).
 */
export class LeafHasher {
  #scratch = new Uint8Array(64 * 1024);

  constructor(private readonly hash: HashFn) {}

  leafHash(entry: Uint8Array): Uint8Array {
    if (entry.length + 1 > this.#scratch.length) this.#scratch = new Uint8Array(2 * (entry.length + 1));
    this.#scratch[0] = LEAF_HASH_PREFIX;
    this.#scratch.set(entry, 1);
    return this.hash(this.#scratch.subarray(0, entry.length + 1));
  }
}

/**
 * Roots of the prefixes of a stream of leaf hashes, at the sizes asked for: a compact range over
 * [0, size) (as compact.ts, and transparency-dev/merkle `compact.Range`), folded right to left for a
 * root. Interior nodes are hashed through one reused 65-byte buffer.
 */
export class RootTracker implements RootSource {
  readonly #hash: HashFn;
  readonly #wanted: Set<number>;
  readonly #roots = new Map<number, Uint8Array>();
  /** The border: roots of the perfect subtrees the bits of `size` cut [0, size) into, largest first. */
  readonly #border: Uint8Array[] = [];
  readonly #node = new Uint8Array(1 + 2 * HASH_SIZE);
  #size = 0;

  constructor(hash: HashFn, sizes: Iterable<number>) {
    this.#hash = hash;
    this.#wanted = new Set(sizes);
    this.#node[0] = NODE_HASH_PREFIX;
    if (this.#wanted.has(0)) this.#roots.set(0, emptyRoot(hash));
  }

  get size(): number {
    return this.#size;
  }

  #children(left: Uint8Array, right: Uint8Array): Uint8Array {
    this.#node.set(left, 1);
    this.#node.set(right, 1 + HASH_SIZE);
    return this.#hash(this.#node);
  }

  append(leafHash: Uint8Array): void {
    // Each trailing 1 bit of the old size is a border subtree as tall as `node`: merge, like a carry.
    let node = leafHash;
    for (let s = this.#size; s % 2 === 1; s = (s - 1) / 2) node = this.#children(this.#border.pop()!, node);
    this.#border.push(node);
    this.#size++;
    if (this.#wanted.has(this.#size)) this.#roots.set(this.#size, this.#root());
  }

  #root(): Uint8Array {
    let root = this.#border[this.#border.length - 1]!;
    for (let i = this.#border.length - 2; i >= 0; i--) root = this.#children(this.#border[i]!, root);
    return root;
  }

  /** The root at `size`, if it was asked for and the stream reached it. */
  rootAt(size: number): Uint8Array | undefined {
    return this.#roots.get(size);
  }
}

/** What a root tracker offers the verifier, whichever thread does the hashing. */
export interface RootSource {
  append(leafHash: Uint8Array): void;
  /** The root at `size`, if it was asked for and the stream reached it. Call after every append. */
  rootAt(size: number): Uint8Array | undefined;
}

/** Below this many leaves a worker costs more to start than it saves. */
export const PARALLEL_MIN_LEAVES = 16_384;
const BATCH = 4096;
const WAIT_MS = 120_000;

/**
 * A RootTracker whose interior nodes are hashed in a worker thread (tree-worker.ts) while this thread
 * reads, hashes and checks the leaves: on a verify of a large bundle the node hashes are about half of
 * all hashing. Leaf hashes go over in batches of 4096; `rootAt` waits (Atomics.wait: verifyLog stays
 * synchronous) for the worker's roots in shared memory. If the worker fails or stalls, the batches kept
 * here are folded in this thread instead, so the result never depends on the worker.
 */
export class ParallelRootTracker implements RootSource {
  readonly #hash: HashFn;
  readonly #sizes: number[];
  readonly #shared: SharedArrayBuffer;
  readonly #worker: Worker;
  readonly #batches: Uint8Array[] = [];
  #batch = new Uint8Array(BATCH * HASH_SIZE);
  #used = 0;
  #roots: Map<number, Uint8Array> | undefined;

  constructor(hash: HashFn, sizes: Iterable<number>, fips: boolean) {
    this.#hash = hash;
    this.#sizes = [...new Set(sizes)];
    this.#shared = new SharedArrayBuffer(8 + this.#sizes.length * (1 + HASH_SIZE));
    this.#worker = new Worker(new URL('./tree-worker.js', import.meta.url), {
      workerData: { sizes: this.#sizes, fips, shared: this.#shared },
    });
    this.#worker.unref();
    this.#worker.on('error', () => undefined); // it reports failure through the shared status
  }

  append(leafHash: Uint8Array): void {
    this.#batch.set(leafHash, this.#used);
    this.#used += HASH_SIZE;
    if (this.#used === this.#batch.length) this.#send();
  }

  #send(): void {
    const full = this.#used === this.#batch.length ? this.#batch : this.#batch.slice(0, this.#used);
    this.#batches.push(full);
    this.#worker.postMessage({ leaves: full });
    this.#batch = new Uint8Array(BATCH * HASH_SIZE);
    this.#used = 0;
  }

  #finish(): Map<number, Uint8Array> {
    if (this.#used > 0) this.#send();
    this.#worker.postMessage({ end: true });
    const status = new Int32Array(this.#shared, 0, 1);
    Atomics.wait(status, 0, 0, WAIT_MS);
    const roots = new Map<number, Uint8Array>();
    if (Atomics.load(status, 0) === 1) {
      const bytes = new Uint8Array(this.#shared, 8);
      this.#sizes.forEach((size, i) => {
        if (bytes[i * 33] === 1) roots.set(size, bytes.slice(i * 33 + 1, i * 33 + 1 + HASH_SIZE));
      });
    } else {
      const tracker = new RootTracker(this.#hash, this.#sizes);
      for (const b of this.#batches)
        for (let at = 0; at < b.length; at += HASH_SIZE) tracker.append(b.subarray(at, at + HASH_SIZE));
      for (const size of this.#sizes) {
        const root = tracker.rootAt(size);
        if (root) roots.set(size, root);
      }
    }
    void this.#worker.terminate();
    return roots;
  }

  rootAt(size: number): Uint8Array | undefined {
    this.#roots ??= this.#finish();
    return this.#roots.get(size);
  }
}

/** Checks leaves against one tree head through proofs.json's inclusion proofs. */
export class InclusionChecker {
  readonly #hash: HashFn;
  readonly #proofs = new Map<number, readonly string[]>();

  constructor(
    hash: HashFn,
    proofs: readonly InclusionProofJson[],
    readonly size: number,
    readonly root: Uint8Array,
  ) {
    this.#hash = hash;
    for (const p of proofs) this.#proofs.set(p.index, p.proof);
  }

  /** Why the leaf at `index` is not proven in the tree, or undefined if it is. */
  problem(index: number, leafHash: Uint8Array): string | undefined {
    if (index >= this.size) return `leaf ${index} is beyond the last checkpoint (size ${this.size})`;
    const hashes = this.#proofs.get(index);
    if (!hashes) return `proofs.json has no inclusion proof for leaf ${index}`;
    const proof = decodeProof(hashes);
    if (!proof) return 'a proof hash is not canonical base64 of 32 bytes';
    try {
      verifyInclusion(this.#hash, index, this.size, leafHash, proof, this.root);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
