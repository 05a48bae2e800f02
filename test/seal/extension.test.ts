import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactTree } from '../../src/seal/compact.js';
import { consistencyProofFromBorder } from '../../src/seal/extension.js';
import { hashLeaf, SubtreeRoots, verifyConsistency } from '../../src/seal/merkle.js';
import { sha256 } from './sha256.js';

describe('consistency proofs from the compact border', () => {
  const leaves = Array.from({ length: 70 }, (_, i) => hashLeaf(sha256, new Uint8Array([i, i >> 8, 7])));
  const full = new SubtreeRoots(sha256, leaves);

  it('equal the RFC 6962 proofs from the full leaf list, for every 0 < m <= n <= 70', () => {
    let checked = 0;
    for (let m = 1; m <= 70; m++) {
      const anchor = new CompactTree(sha256);
      for (const h of leaves.slice(0, m)) anchor.append(h);
      for (let n = m; n <= 70; n++) {
        const proof = consistencyProofFromBorder(sha256, anchor, leaves.slice(m, n));
        assert.deepEqual(proof, full.consistencyProof(m, n), `m=${m} n=${n}`);
        verifyConsistency(sha256, m, n, proof, full.mth(0, m), full.mth(0, n));
        checked++;
      }
    }
    assert.equal(checked, (70 * 71) / 2);
  });

  it('refuses the empty anchor', () => {
    assert.throws(() => consistencyProofFromBorder(sha256, new CompactTree(sha256), leaves), /empty tree/);
  });

  it('border() names the perfect subtrees of the binary decomposition of the size', () => {
    const t = new CompactTree(sha256);
    for (const h of leaves.slice(0, 13)) t.append(h);
    assert.deepEqual(
      t.border().map((b) => [b.start, b.size]),
      [
        [0, 8],
        [8, 4],
        [12, 1],
      ],
    );
    for (const b of t.border()) assert.deepEqual(b.hash, full.mth(b.start, b.start + b.size));
  });
});
