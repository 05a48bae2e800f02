import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';
import {
  SubtreeRoots,
  consistencyProof,
  decompInclProof,
  hashChildren,
  hashLeaf,
  inclusionProof,
  rootFromInclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../../src/seal/merkle.js';
import { CompactTree } from '../../src/seal/compact.js';
import { sha256 } from './sha256.js';
import { vectorsDir } from '../helpers/paths.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const flipBit = (b: Uint8Array, mask = 8): Uint8Array => b.map((x, i) => (i === 0 ? x ^ mask : x));

const EMPTY_ROOT = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Runs `fn`; returns the SealError it throws, or undefined. Any other exception is a bug: rethrown. */
function rejection(fn: () => void): SealError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof SealError) return err;
    throw err;
  }
}

function assertSealError(fn: () => void, code: SealErrorCode, message?: RegExp): void {
  const err = rejection(fn);
  assert.ok(err, `expected ${code}, but it succeeded`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
}

// --- Vectors: transparency-dev/merkle testdata, shared at ../shared/vectors/rfc6962 ---------------------

const VECTORS = path.join(vectorsDir(), 'rfc6962');

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

type Vector = Record<string, unknown> & { file: string };

/**
 * Every file under rfc6962/<kind>. Sizes and indices are u64 (one is 2^64 - 1), so they are quoted
 * before JSON.parse and read as bigint. A non-JSON file must be one of the known placeholders: the
 * snapshot holds `git show` output of a tree (a listing of the upstream directory) in place of
 * inclusion/additional/{0..3}/; the probes those directories hold upstream are rebuilt in a test below.
 */
function loadVectors(kind: 'inclusion' | 'consistency'): { vectors: Vector[]; placeholders: string[] } {
  const vectors: Vector[] = [];
  const placeholders: string[] = [];
  for (const file of walk(path.join(VECTORS, kind))) {
    const rel = path.relative(VECTORS, file);
    const text = fs.readFileSync(file, 'utf8');
    if (!file.endsWith('.json')) {
      assert.match(text, /^tree HEAD:testdata\//, `${rel} is neither a vector nor a known placeholder`);
      placeholders.push(rel);
      continue;
    }
    const quoted = text.replace(
      /"(leafIdx|leafIndex|treeSize|size1|size2)"(\s*):(\s*)(\d+)/g,
      '"$1"$2:$3"$4"',
    );
    vectors.push({ ...(JSON.parse(quoted) as Record<string, unknown>), file: rel });
  }
  return { vectors, placeholders };
}

const u64 = (v: unknown): bigint => BigInt(v as string);
const bytes = (v: unknown): Uint8Array => b64(v as string);
const proofOf = (v: unknown): Uint8Array[] => ((v as string[] | null) ?? []).map(b64);

function runVectors(
  t: { diagnostic(msg: string): void },
  kind: 'inclusion' | 'consistency',
  verify: (v: Vector) => void,
): void {
  const { vectors, placeholders } = loadVectors(kind);
  assert.ok(vectors.length > 0, `no ${kind} vectors under ${VECTORS}`);
  const wrong: string[] = [];
  const codes = new Map<string, number>();
  let accepted = 0;
  for (const v of vectors) {
    assert.equal(typeof v.wantErr, 'boolean', `${v.file}: wantErr`);
    const err = rejection(() => verify(v));
    if (err) codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    else accepted++;
    if (v.wantErr && !err) wrong.push(`${v.file} (${String(v.desc)}): accepted, want an error`);
    if (!v.wantErr && err) wrong.push(`${v.file} (${String(v.desc)}): ${err.code}: ${err.message}`);
  }
  const byCode = [...codes].map(([c, n]) => `${c} ${n}`).join(', ');
  t.diagnostic(
    `${kind}: ${vectors.length} files, ${accepted} accept, ${vectors.length - accepted} reject (${byCode})`,
  );
  if (placeholders.length > 0) {
    t.diagnostic(`${kind}: skipped ${placeholders.length} placeholder files: ${placeholders.join(', ')}`);
  }
  assert.deepEqual(wrong, []);
}

test('rfc6962 inclusion vectors: every wantErr=true rejected, every wantErr=false accepted', (t) => {
  runVectors(t, 'inclusion', (v) =>
    verifyInclusion(
      sha256,
      u64(v.leafIdx ?? v.leafIndex),
      u64(v.treeSize),
      bytes(v.leafHash),
      proofOf(v.proof),
      bytes(v.root),
    ),
  );
});

test('rfc6962 consistency vectors: every wantErr=true rejected, every wantErr=false accepted', (t) => {
  runVectors(t, 'consistency', (v) =>
    verifyConsistency(sha256, u64(v.size1), u64(v.size2), proofOf(v.proof), bytes(v.root1), bytes(v.root2)),
  );
});

test('inclusion probes of upstream testdata/inclusion/additional/{0..3} (placeholders in the snapshot)', () => {
  // transparency-dev/merkle TestVerifyInclusion: empty proof, bad (index, size), empty or wrong hashes.
  const someHash = hex('abacaba000000000000000000000000000000000000000000060061e00123456');
  const cases = [
    { leaf: someHash, root: new Uint8Array(0) }, // random-leaf
    { leaf: new Uint8Array(0), root: hex(EMPTY_ROOT) }, // empty-root
    { leaf: someHash, root: hex(EMPTY_ROOT) }, // empty-root-and-random-leaf
  ];
  for (const [index, size] of [
    [0, 0],
    [0, 1],
    [1, 0],
    [2, 1],
  ]) {
    for (const c of cases)
      assert.ok(rejection(() => verifyInclusion(sha256, index, size, c.leaf, [], c.root)));
  }
});

// --- Known answers: the 8-leaf test tree of transparency-dev/merkle (proof/verify_test.go) -------------

const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(hex);
const LEAF_HASHES = LEAVES.map((d) => hashLeaf(sha256, d));
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION_PROOFS: [leaf: number, size: number, proof: string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']], // prettier-ignore
  [6, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']], // prettier-ignore
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [2, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']], // prettier-ignore
];
const CONSISTENCY_PROOFS: [size1: number, size2: number, proof: string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']], // prettier-ignore
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']], // prettier-ignore
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']], // prettier-ignore
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']], // prettier-ignore
];

test('known roots: empty tree and the 8-leaf RFC 6962 test tree', () => {
  assert.equal(toHex(rootOf(sha256, [])), EMPTY_ROOT);
  ROOTS.forEach((want, i) => assert.equal(toHex(rootOf(sha256, LEAF_HASHES.slice(0, i + 1))), want));
  assert.equal(
    toHex(rootOf(sha256, LEAF_HASHES)),
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  );
});

test('known proofs: generation matches transparency-dev/merkle and verifies', () => {
  for (const [leaf, size, want] of INCLUSION_PROOFS) {
    const proof = inclusionProof(sha256, LEAF_HASHES.slice(0, size), leaf - 1);
    assert.deepEqual(proof.map(toHex), want, `PATH(${leaf - 1}, D[${size}])`);
    verifyInclusion(sha256, leaf - 1, size, LEAF_HASHES[leaf - 1], proof, hex(ROOTS[size - 1]));
  }
  for (const [size1, size2, want] of CONSISTENCY_PROOFS) {
    const proof = consistencyProof(sha256, LEAF_HASHES, size1, size2);
    assert.deepEqual(proof.map(toHex), want, `PROOF(${size1}, D[${size2}])`);
    verifyConsistency(sha256, size1, size2, proof, hex(ROOTS[size1 - 1]), hex(ROOTS[size2 - 1]));
  }
});

// --- Round trips over generated trees -----------------------------------------------------------------

const N = 64;
const leafHashes = Array.from({ length: 200 }, (_, i) =>
  hashLeaf(sha256, new TextEncoder().encode(`leaf ${i}`)),
);
const tree = new SubtreeRoots(sha256, leafHashes.slice(0, N));

/** MTH straight from RFC 6962 §2.1, as the reference for SubtreeRoots. */
function referenceMth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha256(new Uint8Array(0));
  if (d.length === 1) return d[0];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return hashChildren(sha256, referenceMth(d.slice(0, k)), referenceMth(d.slice(k)));
}

test('SubtreeRoots.mth matches the RFC 6962 recursion for every range up to 40 leaves', () => {
  for (let start = 0; start <= 40; start++) {
    for (let end = start; end <= 40; end++) {
      assert.deepEqual(
        tree.mth(start, end),
        referenceMth(leafHashes.slice(start, end)),
        `[${start}, ${end})`,
      );
    }
  }
  assert.deepEqual(tree.mth(), referenceMth(leafHashes.slice(0, N)));
});

test(`inclusion round trip: every (index, size) up to size ${N}`, () => {
  for (let size = 1; size <= N; size++) {
    const root = tree.mth(0, size);
    for (let index = 0; index < size; index++) {
      const proof = tree.inclusionProof(index, size);
      assert.deepEqual(proof, inclusionProof(sha256, leafHashes.slice(0, size), index));
      assert.deepEqual(rootFromInclusionProof(sha256, index, size, leafHashes[index], proof), root);
      verifyInclusion(sha256, BigInt(index), BigInt(size), leafHashes[index], proof, root);
      for (let i = 0; i < proof.length; i++) {
        const bad = proof.map((h, j) => (j === i ? flipBit(h) : h));
        assertSealError(
          () => verifyInclusion(sha256, index, size, leafHashes[index], bad, root),
          'ROOT_MISMATCH',
        );
      }
      if (size > 1) {
        const other = index === 0 ? 1 : index - 1;
        assert.ok(rejection(() => verifyInclusion(sha256, other, size, leafHashes[index], proof, root)));
      }
    }
  }
});

test(`consistency round trip: every 0 < size1 <= size2 <= ${N}`, () => {
  for (let size2 = 1; size2 <= N; size2++) {
    const root2 = tree.mth(0, size2);
    for (let size1 = 1; size1 <= size2; size1++) {
      const root1 = tree.mth(0, size1);
      const proof = tree.consistencyProof(size1, size2);
      assert.deepEqual(proof, consistencyProof(sha256, leafHashes, size1, size2));
      verifyConsistency(sha256, size1, size2, proof, root1, root2);
      for (let i = 0; i < proof.length; i++) {
        const bad = proof.map((h, j) => (j === i ? flipBit(h, 16) : h));
        assertSealError(() => verifyConsistency(sha256, size1, size2, bad, root1, root2), 'ROOT_MISMATCH');
      }
      if (size1 < size2) {
        assertSealError(
          () => verifyConsistency(sha256, size1, size2, [], root1, root2),
          'CONSISTENCY_PROOF_INVALID',
        );
        assert.ok(rejection(() => verifyConsistency(sha256, size1, size2, proof, root2, root1)));
      }
    }
  }
});

test('verification errors are typed, with precise messages', () => {
  const [leaf, root] = [LEAF_HASHES[0], hex(ROOTS[7])];
  const proof = inclusionProof(sha256, LEAF_HASHES, 0);
  const incl = 'INCLUSION_PROOF_INVALID';
  assertSealError(() => verifyInclusion(sha256, 8, 8, leaf, proof, root), incl, /^index 8 is beyond size 8$/);
  assertSealError(() => verifyInclusion(sha256, 0, 0, leaf, [], root), incl, /^index 0 is beyond size 0$/);
  assertSealError(() => verifyInclusion(sha256, -1, 8, leaf, proof, root), incl, /^index -1 is not a u64$/);
  assertSealError(() => verifyInclusion(sha256, 0.5, 8, leaf, proof, root), incl, /not a u64/);
  assertSealError(() => verifyInclusion(sha256, 0, 2n ** 64n, leaf, proof, root), incl, /not a u64/);
  assertSealError(() => verifyInclusion(sha256, 0, 8, leaf, [...proof, leaf], root), incl, /^proof has 4 hashes, want 3$/); // prettier-ignore
  assertSealError(
    () => verifyInclusion(sha256, 0, 8, leaf.subarray(1), proof, root),
    incl,
    /leaf hash has 31 bytes/,
  );
  assertSealError(() => verifyInclusion(sha256, 0, 8, leaf, proof, hex(ROOTS[6])), 'ROOT_MISMATCH', /^calculated root does not match the given root/); // prettier-ignore

  const cons = 'CONSISTENCY_PROOF_INVALID';
  const [r6, r8] = [hex(ROOTS[5]), hex(ROOTS[7])];
  assertSealError(() => verifyConsistency(sha256, 8, 6, [], r8, r6), cons, /^size1 8 > size2 6$/);
  assertSealError(() => verifyConsistency(sha256, 0, 8, [], hex(EMPTY_ROOT), r8), cons, /^size1 is 0/);
  assertSealError(
    () => verifyConsistency(sha256, 0, 0, [], hex(EMPTY_ROOT), hex(EMPTY_ROOT)),
    cons,
    /^size1 is 0/,
  );
  assertSealError(() => verifyConsistency(sha256, 6, 6, [r6], r6, r6), cons, /proof has 1 hashes, want 0$/);
  assertSealError(() => verifyConsistency(sha256, 6, 6, [], r6, r8), 'ROOT_MISMATCH', /^sizes are equal/);
  assertSealError(() => verifyConsistency(sha256, 6, 8, [], r6, r8), cons, /^empty proof$/);
  assertSealError(() => verifyConsistency(sha256, 6, 8, [r6], r6, r8), cons, /^proof has 1 hashes, want 3$/);
  verifyConsistency(sha256, 6, 6, [], r6, r6);

  assertSealError(
    () => inclusionProof(sha256, LEAF_HASHES, 8),
    'INVALID_ARGUMENT',
    /index 8 is beyond size 8/,
  );
  assertSealError(() => consistencyProof(sha256, LEAF_HASHES, 0, 8), 'INVALID_ARGUMENT', /size1 is 0/);
  assertSealError(() => consistencyProof(sha256, LEAF_HASHES, 7, 6), 'INVALID_ARGUMENT', /size1 7 > size2 6/);
  assertSealError(
    () => consistencyProof(sha256, LEAF_HASHES, 1, 9),
    'INVALID_ARGUMENT',
    /beyond the 8 leaves/,
  );
  assertSealError(
    () => rootOf(sha256, [new Uint8Array(31)]),
    'INVALID_ARGUMENT',
    /leafHashes\[0\] has 31 bytes/,
  );
});

test('sizes beyond 32 bits keep full u64 precision', () => {
  // index ^ (size - 1) = 3: two inner hashes, then one border hash for the 2^40-leaf subtree on the left.
  const [index, size] = [2 ** 40 + 1, 2 ** 40 + 3];
  assert.deepEqual(decompInclProof(BigInt(index), BigInt(size)), [2, 1]);
  const proof = LEAF_HASHES.slice(0, 3);
  assert.deepEqual(
    rootFromInclusionProof(sha256, index, size, LEAF_HASHES[3], proof),
    rootFromInclusionProof(sha256, BigInt(index), BigInt(size), LEAF_HASHES[3], proof),
  );
  assertSealError(
    () => rootFromInclusionProof(sha256, index, size, LEAF_HASHES[3], proof.slice(1)),
    'INCLUSION_PROOF_INVALID',
    /^proof has 2 hashes, want 3$/,
  );
  assertSealError(
    () => verifyInclusion(sha256, 2n ** 64n - 1n, 1, LEAF_HASHES[0], [], LEAF_HASHES[0]),
    'INCLUSION_PROOF_INVALID',
    /^index 18446744073709551615 is beyond size 1$/,
  );
});

// --- Compact tree --------------------------------------------------------------------------------------

const popcount = (n: number): number => n.toString(2).replace(/0/g, '').length;

test('compact tree root equals rootOf for sizes 0..200, and survives encode/decode at every size', () => {
  const all = new SubtreeRoots(sha256, leafHashes);
  let compact = new CompactTree(sha256);
  for (let size = 0; size <= 200; size++) {
    assert.equal(compact.size, size);
    assert.deepEqual(compact.root(), all.mth(0, size), `root at size ${size}`);
    const state = compact.encode();
    assert.equal(state.length, 8 + 32 * popcount(size));
    compact = CompactTree.decode(sha256, state); // As after a restart: continue from the decoded state.
    assert.deepEqual(compact.encode(), state);
    if (size < 200) compact.append(leafHashes[size]);
  }
  assert.deepEqual(compact.root(), rootOf(sha256, leafHashes));
});

test('compact tree reproduces the known roots, and decodes from a Buffer view', () => {
  const compact = new CompactTree(sha256);
  assert.equal(toHex(compact.root()), EMPTY_ROOT);
  LEAF_HASHES.forEach((h, i) => {
    compact.append(h);
    assert.equal(toHex(compact.root()), ROOTS[i]);
  });
  const padded = Buffer.concat([Buffer.alloc(3, 0xee), compact.encode()]).subarray(3);
  assert.equal(toHex(CompactTree.decode(sha256, padded).root()), ROOTS[7]);
  assertSealError(() => compact.append(new Uint8Array(31)), 'INVALID_ARGUMENT', /31 bytes, want 32/);
});

test('compact tree decode rejects garbage and truncated state with INVALID_TREE_STATE', () => {
  const header = (size: bigint, hashes: number): Uint8Array => {
    const out = new Uint8Array(8 + 32 * hashes);
    new DataView(out.buffer).setBigUint64(0, size);
    return out;
  };
  const compact = new CompactTree(sha256);
  leafHashes.slice(0, 200).forEach((h) => compact.append(h));
  const valid = compact.encode();
  const garbage: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['7 bytes', new Uint8Array(7)],
    ['size 1, no hash', header(1n, 0)],
    ['size 3, one hash', header(3n, 1)],
    ['size 0, trailing hash', header(0n, 1)],
    ['size 2^64 - 1', header(2n ** 64n - 1n, 64)],
    ['size 2^53', header(2n ** 53n, 1)],
    ['all 0xff', new Uint8Array(40).fill(0xff)],
    ['truncated', valid.subarray(0, valid.length - 1)],
    ['extended', Buffer.concat([valid, new Uint8Array(1)])],
    ['text', new TextEncoder().encode('{"size": 3, "hashes": []}')],
  ];
  for (const [name, state] of garbage) {
    const err = rejection(() => CompactTree.decode(sha256, state));
    assert.equal(err?.code, 'INVALID_TREE_STATE', `${name}: ${err?.message ?? 'decoded'}`);
  }
  assertSealError(
    () => CompactTree.decode(sha256, header(3n, 1)),
    'INVALID_TREE_STATE',
    /has 40 bytes, want 72/,
  );
});
