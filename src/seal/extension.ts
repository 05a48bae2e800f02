/**
 * Consistency proofs for a growing log without keeping every leaf hash: RFC 6962 §2.1.2
 * PROOF(m, D[n]) built from the compact border of the tree at size m plus the leaf hashes of [m, n).
 *
 * Why that suffices: in SUBPROOF, every MTH over a range left of m is either D[0:k] with k < m a power
 * of two, or the final D[start:m] node, and both are perfect subtrees ending on the binary
 * decomposition of m: exactly the border nodes (compact.ts). Every other MTH is over a range inside
 * [m, n), computed from the new leaves. So the writer keeps the border at the last signed size and the
 * leaf hashes appended since, and the signer checks the proof against the root it persisted.
 */
import type { CompactTree } from './compact.js';
import { SealError } from './errors.js';
import { SubtreeRoots, type HashFn } from './merkle.js';

/** The largest power of two smaller than n (RFC 6962 §2.1's k), for n > 1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function consistencyProofFromBorder(
  hash: HashFn,
  anchor: CompactTree,
  newLeafHashes: readonly Uint8Array[],
): Uint8Array[] {
  const m = anchor.size;
  const n = m + newLeafHashes.length;
  if (m === 0) throw new SealError('INVALID_ARGUMENT', 'no consistency proof from the empty tree');
  const border = new Map(anchor.border().map((b) => [`${b.start}+${b.size}`, b.hash]));
  const right = new SubtreeRoots(hash, newLeafHashes);

  const mth = (start: number, end: number): Uint8Array => {
    if (start >= m) return right.mth(start - m, end - m);
    const node = border.get(`${start}+${end - start}`);
    if (!node || end > m) {
      throw new SealError('INVALID_ARGUMENT', `range ${start}..${end} is not a border node of size ${m}`);
    }
    return node;
  };

  const out: Uint8Array[] = [];
  const subproof = (sub: number, start: number, end: number, complete: boolean): void => {
    if (sub === end - start) {
      if (!complete) out.push(mth(start, end));
      return;
    }
    const k = splitPoint(end - start);
    if (sub <= k) {
      subproof(sub, start, start + k, complete);
      out.push(mth(start + k, end));
    } else {
      subproof(sub - k, start + k, end, false);
      out.push(mth(start, start + k));
    }
  };
  if (m < n) subproof(m, 0, n, true);
  return out;
}
