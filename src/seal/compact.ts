/**
 * A compact Merkle tree: the log's tree of `size` leaves kept in O(log n) state, as transparency-dev/merkle
 * `compact.Range` does for the range [0, size). The state is the right border: the roots of the perfect
 * subtrees that the binary digits of `size` cut the leaves into, largest (leftmost) first, one per set
 * bit. Appending merges equal-sized subtrees like a binary counter carries; the root folds the border
 * from the right, which is RFC 6962 §2.1's MTH (RFC 9162 §2.1.1).
 *
 * Encoding, for persisting across restarts (all integers big-endian):
 *
 *     size    u64                  leaves in the tree, at most 2^53 - 1
 *     hashes  popcount(size) × 32  the border, largest subtree first
 *
 * `decode` accepts exactly 8 + 32 × popcount(size) bytes and throws INVALID_TREE_STATE otherwise.
 */
import { SealError } from './errors.js';
import { HASH_SIZE, emptyRoot, hashChildren, type HashFn } from './merkle.js';

const SIZE_BYTES = 8;

/** Set bits in a safe integer (not `>>>`, which would cut it to 32 bits). */
function popcount(n: number): number {
  let count = 0;
  for (; n > 0; n = Math.floor(n / 2)) count += n % 2;
  return count;
}

function invalidState(message: string): never {
  throw new SealError('INVALID_TREE_STATE', message);
}

export class CompactTree {
  readonly #hash: HashFn;
  #size = 0;
  #border: Uint8Array[] = [];

  constructor(hash: HashFn) {
    this.#hash = hash;
  }

  /** Restores a tree from `encode()` output. Throws INVALID_TREE_STATE on anything else. */
  static decode(hash: HashFn, state: Uint8Array): CompactTree {
    if (!(state instanceof Uint8Array)) invalidState('tree state is not bytes');
    if (state.length < SIZE_BYTES) invalidState(`tree state has ${state.length} bytes, want at least 8`);
    const size = new DataView(state.buffer, state.byteOffset, SIZE_BYTES).getBigUint64(0);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) invalidState(`tree size ${size} is beyond 2^53 - 1`);
    const count = popcount(Number(size));
    const want = SIZE_BYTES + count * HASH_SIZE;
    if (state.length !== want) {
      invalidState(`tree state for size ${size} has ${state.length} bytes, want ${want} (${count} hashes)`);
    }
    const tree = new CompactTree(hash);
    tree.#size = Number(size);
    for (let i = 0; i < count; i++) {
      const at = SIZE_BYTES + i * HASH_SIZE;
      tree.#border.push(state.slice(at, at + HASH_SIZE));
    }
    return tree;
  }

  /** The number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** Appends one leaf hash (RFC 6962 §2.1 HASH(0x00 || d), not the leaf data). */
  append(leafHash: Uint8Array): void {
    if (leafHash.length !== HASH_SIZE) {
      throw new SealError('INVALID_ARGUMENT', `leaf hash has ${leafHash.length} bytes, want ${HASH_SIZE}`);
    }
    if (this.#size === Number.MAX_SAFE_INTEGER) invalidState('tree is full at 2^53 - 1 leaves');
    // Each trailing 1 bit of the old size is a border subtree as tall as `node`: merge, like a carry.
    let node: Uint8Array = leafHash.slice();
    for (let s = this.#size; s % 2 === 1; s = (s - 1) / 2) {
      node = hashChildren(this.#hash, this.#border.pop() as Uint8Array, node);
    }
    this.#border.push(node);
    this.#size += 1;
  }

  /** RFC 6962 §2.1 MTH of all leaves so far; HASH() for the empty tree (RFC 9162 §2.1.1). */
  root(): Uint8Array {
    if (this.#size === 0) return emptyRoot(this.#hash);
    let root = this.#border[this.#border.length - 1];
    for (let i = this.#border.length - 2; i >= 0; i--) root = hashChildren(this.#hash, this.#border[i], root);
    return root.slice();
  }

  /**
   * The border as subtrees: `[start, start + size)` with its root, leftmost first. These are exactly the
   * nodes left of `size` that an RFC 6962 consistency proof from `size` can need (see extension.ts).
   */
  border(): { start: number; size: number; hash: Uint8Array }[] {
    const out: { start: number; size: number; hash: Uint8Array }[] = [];
    let start = 0;
    let i = 0;
    for (let bit = 2 ** Math.floor(Math.log2(Math.max(this.#size, 1))); bit >= 1; bit /= 2) {
      if (Math.floor(this.#size / bit) % 2 === 1) {
        out.push({ start, size: bit, hash: this.#border[i++].slice() });
        start += bit;
      }
    }
    return out;
  }

  /** The state as bytes, in the format described at the top of this file. */
  encode(): Uint8Array {
    const out = new Uint8Array(SIZE_BYTES + this.#border.length * HASH_SIZE);
    new DataView(out.buffer).setBigUint64(0, BigInt(this.#size));
    this.#border.forEach((h, i) => out.set(h, SIZE_BYTES + i * HASH_SIZE));
    return out;
  }
}
