/**
 * RFC 6962 / RFC 9162 Merkle trees for the tamper-evident log: hashing, proof generation, proof
 * verification. Pure functions, bytes in and values out, no I/O.
 *
 * Verification follows transparency-dev/merkle `proof/verify.go` function for function (and sigstore-js
 * `tlog/merkle.ts`), including its edge cases. The hash is injected (SHA-256, from the crypto provider:
 * `(d) => provider.digest('sha256', d)`), because nothing outside src/crypto may touch a crypto library.
 */
import { SealError, type SealErrorCode } from './errors.js';

/** The tree hash: SHA-256 (RFC 9162 §2.1.1 allows others; sealgate uses SHA-256 only). */
export type HashFn = (data: Uint8Array) => Uint8Array;
/** A tree size or leaf index: a bigint, or a number that is a safe integer. */
export type U64 = number | bigint;
/** Proof hashes, ordered from the leaf (or subtree) up to the root. */
export type Proof = readonly Uint8Array[];

/** Bytes in a SHA-256 node or leaf hash. */
export const HASH_SIZE = 32;
/** RFC 6962 §2.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
export const LEAF_HASH_PREFIX = 0x00;
/** RFC 6962 §2.1: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])). */
export const NODE_HASH_PREFIX = 0x01;

const U64_MAX = (1n << 64n) - 1n;

function fail(code: SealErrorCode, message: string): never {
  throw new SealError(code, message);
}

function u64(v: U64, name: string, code: SealErrorCode): bigint {
  const ok = typeof v === 'bigint' ? v >= 0n && v <= U64_MAX : Number.isSafeInteger(v) && v >= 0;
  if (!ok) fail(code, `${name} ${String(v)} is not a u64`);
  return BigInt(v);
}

const bitLen = (x: bigint): number => (x === 0n ? 0 : x.toString(2).length);
const onesCount = (x: bigint): number => x.toString(2).replace(/0/g, '').length;
const trailingZeros = (x: bigint): number => x.toString(2).length - 1 - x.toString(2).lastIndexOf('1');

/** RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string, MTH({}) = HASH(). */
export function emptyRoot(hash: HashFn): Uint8Array {
  return hash(new Uint8Array(0));
}

/** RFC 9162 §2.1.1 / RFC 6962 §2.1: MTH({d(0)}) = HASH(0x00 || d(0)). */
export function hashLeaf(hash: HashFn, leaf: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + leaf.length);
  buf[0] = LEAF_HASH_PREFIX;
  buf.set(leaf, 1);
  return hash(buf);
}

/** The hash of the concatenation of some parts, computed without joining them. */
export type HashPartsFn = (parts: readonly Uint8Array[]) => Uint8Array;

const LEAF_PREFIX_BYTES = new Uint8Array([LEAF_HASH_PREFIX]);

/** `hashLeaf` of the concatenation of `parts`, without copying them (a large entry sealed in parts). */
export function hashLeafParts(hashParts: HashPartsFn, parts: readonly Uint8Array[]): Uint8Array {
  return hashParts([LEAF_PREFIX_BYTES, ...parts]);
}

/** RFC 9162 §2.1.1 / RFC 6962 §2.1: an interior node is HASH(0x01 || left || right). */
export function hashChildren(hash: HashFn, left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = NODE_HASH_PREFIX;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return hash(buf);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function verifyMatch(calculated: Uint8Array, given: Uint8Array, what: string): void {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex') || '<empty>';
  if (!bytesEqual(calculated, given)) fail('ROOT_MISMATCH', `${what}: ${hex(calculated)} != ${hex(given)}`);
}

function checkProof(code: SealErrorCode, proof: Proof, want: number): void {
  if (proof.length !== want) fail(code, `proof has ${proof.length} hashes, want ${want}`);
  for (const [i, h] of proof.entries()) {
    if (h.length !== HASH_SIZE) fail(code, `proof[${i}] has ${h.length} bytes, want ${HASH_SIZE}`);
  }
}

/**
 * Splits the inclusion proof of leaf `index` in a tree of `size` into its inner part (below the point
 * where the paths to `index` and `size - 1` diverge) and its border part (left siblings on the right
 * border above it). The sum is the proof length. RFC 9162 §2.1.3.2 computes the same while iterating.
 */
export function decompInclProof(index: bigint, size: bigint): [inner: number, border: number] {
  const inner = bitLen(index ^ (size - 1n));
  return [inner, onesCount(index >> BigInt(inner))];
}

/** Chains proof hashes up from `seed` at `index`, lower levels first (RFC 9162 §2.1.3.2 step 5). */
export function chainInner(hash: HashFn, seed: Uint8Array, proof: Proof, index: bigint): Uint8Array {
  return proof.reduce(
    (acc, h, i) => ((index >> BigInt(i)) & 1n ? hashChildren(hash, h, acc) : hashChildren(hash, acc, h)),
    seed,
  );
}

/** Like chainInner, but uses only left siblings: the hash of the earlier version of the subtree (§2.1.4.2). */
export function chainInnerRight(hash: HashFn, seed: Uint8Array, proof: Proof, index: bigint): Uint8Array {
  return proof.reduce((acc, h, i) => ((index >> BigInt(i)) & 1n ? hashChildren(hash, h, acc) : acc), seed);
}

/** Chains the border part of a proof: every hash there is a left sibling (RFC 9162 §2.1.3.2). */
export function chainBorderRight(hash: HashFn, seed: Uint8Array, proof: Proof): Uint8Array {
  return proof.reduce((acc, h) => hashChildren(hash, h, acc), seed);
}

/** RFC 9162 §2.1.3.2: the root implied by an inclusion proof. Requires 0 <= index < size. */
export function rootFromInclusionProof(
  hash: HashFn,
  index: U64,
  size: U64,
  leafHash: Uint8Array,
  proof: Proof,
): Uint8Array {
  const code = 'INCLUSION_PROOF_INVALID';
  const [i, n] = [u64(index, 'index', code), u64(size, 'size', code)];
  if (i >= n) fail(code, `index ${i} is beyond size ${n}`);
  if (leafHash.length !== HASH_SIZE) fail(code, `leaf hash has ${leafHash.length} bytes, want ${HASH_SIZE}`);
  const [inner, border] = decompInclProof(i, n);
  checkProof(code, proof, inner + border);
  const res = chainInner(hash, leafHash, proof.slice(0, inner), i);
  return chainBorderRight(hash, res, proof.slice(inner));
}

/** RFC 9162 §2.1.3.2: throws a SealError unless `proof` proves `leafHash` at `index` under `root`. */
export function verifyInclusion(
  hash: HashFn,
  index: U64,
  size: U64,
  leafHash: Uint8Array,
  proof: Proof,
  root: Uint8Array,
): void {
  const calculated = rootFromInclusionProof(hash, index, size, leafHash, proof);
  verifyMatch(calculated, root, `calculated root does not match the given root (size ${size})`);
}

/**
 * RFC 9162 §2.1.4.2: throws a SealError unless `proof` shows the tree of `size1` (`root1`) is a prefix
 * of the tree of `size2` (`root2`). Equal sizes need an empty proof and equal roots. size1 = 0 is
 * refused, as by transparency-dev/merkle since PR #236: RFC 6962 §2.1.2 defines proofs for 0 < m only.
 */
export function verifyConsistency(
  hash: HashFn,
  size1: U64,
  size2: U64,
  proof: Proof,
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  const code = 'CONSISTENCY_PROOF_INVALID';
  const [m, n] = [u64(size1, 'size1', code), u64(size2, 'size2', code)];
  if (m > n) fail(code, `size1 ${m} > size2 ${n}`);
  if (m === 0n) fail(code, 'size1 is 0: a consistency proof from the empty tree is meaningless');
  if (m === n) {
    if (proof.length !== 0) fail(code, `size1 = size2 = ${m}, but proof has ${proof.length} hashes, want 0`);
    return verifyMatch(root1, root2, `sizes are equal (${m}) but root1 does not match root2`);
  }
  if (proof.length === 0) fail(code, 'empty proof'); // §2.1.4.2 step 1

  // The proof is the inclusion proof of the perfect subtree of 2^shift leaves that ends at size1, in the
  // tree of size2. That subtree's hash leads the proof, unless size1 = 2^shift and the verifier has it.
  const shift = trailingZeros(m);
  const [inner0, border] = decompInclProof(m - 1n, n);
  const inner = inner0 - shift;
  const start = m === 1n << BigInt(shift) ? 0 : 1;
  checkProof(code, proof, start + inner + border);
  const seed = start === 0 ? root1 : proof[0];
  const [innerProof, borderProof] = [proof.slice(start, start + inner), proof.slice(start + inner)];
  const mask = (m - 1n) >> BigInt(shift); // Start chaining from level `shift`.

  // Verify the first root with left siblings only, then the second root with all of them.
  const hash1 = chainBorderRight(hash, chainInnerRight(hash, seed, innerProof, mask), borderProof);
  verifyMatch(hash1, root1, `calculated root1 does not match the given root1 (size ${m})`);
  const hash2 = chainBorderRight(hash, chainInner(hash, seed, innerProof, mask), borderProof);
  verifyMatch(hash2, root2, `calculated root2 does not match the given root2 (size ${n})`);
}

/** The largest power of two strictly below n, for n > 1: RFC 6962 §2.1's `k`. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Every perfect-subtree root over a list of leaf hashes, built bottom-up once (n - 1 hashes, one flat
 * buffer per level). After that, MTH, PATH and PROOF over any prefix cost O(log n) hashes each: build
 * one per export and ask it for every proof. The leaf hashes must not be modified afterwards.
 */
export class SubtreeRoots {
  readonly #hash: HashFn;
  readonly #leaves: readonly Uint8Array[];
  readonly #levels: Uint8Array[] = []; // #levels[k]: roots of the floor(n / 2^k) subtrees of 2^k leaves.

  constructor(hash: HashFn, leafHashes: readonly Uint8Array[]) {
    this.#hash = hash;
    this.#leaves = [...leafHashes];
    this.#leaves.forEach((h, i) => check(h.length === HASH_SIZE, `leafHashes[${i}] has ${h.length} bytes`));
    for (let k = 1, count = Math.floor(this.size / 2); count > 0; k++, count = Math.floor(count / 2)) {
      const level = new Uint8Array(count * HASH_SIZE);
      for (let i = 0; i < count; i++) {
        const h = hashChildren(hash, this.#node(k - 1, 2 * i), this.#node(k - 1, 2 * i + 1));
        check(h.length === HASH_SIZE, `hash output has ${h.length} bytes, want ${HASH_SIZE}`);
        level.set(h, i * HASH_SIZE);
      }
      this.#levels[k] = level;
    }
  }

  get size(): number {
    return this.#leaves.length;
  }

  /** The root of the perfect subtree of 2^level leaves that starts at leaf index * 2^level. */
  #node(level: number, index: number): Uint8Array {
    if (level === 0) return this.#leaves[index].slice();
    return this.#levels[level].slice(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** RFC 6962 §2.1: MTH(D[start:end]); the empty list's is HASH() (RFC 9162 §2.1.1). */
  mth(start = 0, end = this.size): Uint8Array {
    check(isIndex(start) && isIndex(end) && start <= end && end <= this.size, `no range ${start}..${end}`);
    const n = end - start;
    if (n === 0) return emptyRoot(this.#hash);
    if (n === 1) return this.#node(0, start);
    const k = splitPoint(n);
    if (2 * k === n && start % n === 0) return this.#node(Math.log2(n), start / n); // A perfect subtree.
    return hashChildren(this.#hash, this.mth(start, start + k), this.mth(start + k, end));
  }

  /** RFC 6962 §2.1.1 PATH(index, D[0:size]), ordered leaf to root. Requires 0 <= index < size. */
  inclusionProof(index: number, size = this.size): Uint8Array[] {
    check(isIndex(size) && size <= this.size, `size ${size} is beyond the ${this.size} leaves`);
    check(isIndex(index) && index < size, `index ${index} is beyond size ${size}`);
    const out: Uint8Array[] = [];
    const path = (m: number, start: number, end: number): void => {
      if (end - start <= 1) return;
      const k = splitPoint(end - start);
      if (m < k) path(m, start, start + k);
      else path(m - k, start + k, end);
      out.push(m < k ? this.mth(start + k, end) : this.mth(start, start + k));
    };
    path(index, 0, size);
    return out;
  }

  /** RFC 6962 §2.1.2 PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true). Needs 0 < size1. */
  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    check(isIndex(size2) && size2 <= this.size, `size2 ${size2} is beyond the ${this.size} leaves`);
    check(isIndex(size1) && size1 <= size2, `size1 ${size1} > size2 ${size2}`);
    check(size1 > 0, 'size1 is 0: a consistency proof from the empty tree is meaningless');
    const out: Uint8Array[] = [];
    const subproof = (m: number, start: number, end: number, b: boolean): void => {
      if (m === end - start) {
        if (!b) out.push(this.mth(start, end));
        return;
      }
      const k = splitPoint(end - start);
      if (m <= k) subproof(m, start, start + k, b);
      else subproof(m - k, start + k, end, false);
      out.push(m <= k ? this.mth(start + k, end) : this.mth(start, start + k));
    };
    subproof(size1, 0, size2, true);
    return out;
  }
}

const isIndex = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;

function check(ok: boolean, message: string): void {
  if (!ok) fail('INVALID_ARGUMENT', message);
}

/** RFC 6962 §2.1 MTH(D[n]) over leaf hashes (not leaf data). The empty tree's root is HASH(). */
export function rootOf(hash: HashFn, leafHashes: readonly Uint8Array[]): Uint8Array {
  return new SubtreeRoots(hash, leafHashes).mth();
}

/** RFC 6962 §2.1.1 PATH(index, D[n]) for n = leafHashes.length. */
export function inclusionProof(hash: HashFn, leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  return new SubtreeRoots(hash, leafHashes).inclusionProof(index);
}

/** RFC 6962 §2.1.2 PROOF(size1, D[size2]) over the first size2 of leafHashes. */
export function consistencyProof(
  hash: HashFn,
  leafHashes: readonly Uint8Array[],
  size1: number,
  size2: number,
): Uint8Array[] {
  return new SubtreeRoots(hash, leafHashes.slice(0, size2)).consistencyProof(size1, size2);
}
