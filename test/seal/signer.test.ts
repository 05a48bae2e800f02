import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSslProvider, type CryptoProvider, type PrivateKey } from '../../src/crypto/index.js';
import { parseCheckpoint } from '../../src/seal/checkpoint.js';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';
import { hashLeaf, SubtreeRoots } from '../../src/seal/merkle.js';
import { verifyNote } from '../../src/seal/note.js';
import {
  CheckpointSigner,
  decodeSignedState,
  readSignedState,
  rotationMessage,
  verifyRotation,
  type TreeHead,
} from '../../src/seal/signer.js';
import { decodeStateFile } from '../../src/seal/format/state-file.js';
import { nodeStoreFs } from '../../src/seal/store.js';
import { sha256 } from './sha256.js';

const provider = new OpenSslProvider();
const ORIGIN = 'test.sealgate/log';
const isSealError =
  (code: SealErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof SealError, `expected SealError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };

/** A log whose leaves are `${tag}-${i}`: different tags give different (inconsistent) trees. */
class TestTree {
  readonly #roots: SubtreeRoots;
  constructor(
    readonly size: number,
    tag: string | ((index: number) => string) = 'a',
  ) {
    const tagOf = typeof tag === 'string' ? () => tag : tag;
    const leaves = Array.from({ length: size }, (_, i) => hashLeaf(sha256, Buffer.from(`${tagOf(i)}-${i}`)));
    this.#roots = new SubtreeRoots(sha256, leaves);
  }
  get head(): TreeHead {
    return { size: BigInt(this.size), root: this.#roots.mth() };
  }
  readonly prove = (from: bigint): Uint8Array[] => this.#roots.consistencyProof(Number(from), this.size);
}

let key: PrivateKey;
let work: string;
let n = 0;
const freshState = (): string => join(work, `signed-${++n}.state`);
const open = (statePath: string, p: CryptoProvider = provider, k = key): Promise<CheckpointSigner> =>
  CheckpointSigner.open(p, { key: k, origin: ORIGIN, statePath });

before(async () => {
  key = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  work = mkdtempSync(join(tmpdir(), 'sealgate-signer-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

function assertSignedState(path: string, head: TreeHead): void {
  const state = readSignedState(path);
  assert.ok(state, `${path} holds a state`);
  assert.equal(state.size, head.size);
  assert.deepEqual(state.root, head.root);
}

describe('CheckpointSigner (FORMAT.md §5.2)', () => {
  test('signs growing trees, each consistent with the last, and records each in signed.state', async () => {
    const statePath = freshState();
    const signer = await open(statePath);
    assert.equal(signer.lastSigned(), undefined);
    for (const size of [1, 2, 3, 5, 8, 13, 64, 100, 1000]) {
      const tree = new TestTree(size);
      const note = await signer.sign(tree.head, tree.prove);
      const { body } = verifyNote(provider, note, [{ name: ORIGIN, key: key.publicKey }]);
      const cp = parseCheckpoint(body);
      assert.equal(cp.origin, ORIGIN);
      assert.equal(cp.size, BigInt(size));
      assert.deepEqual(cp.root, tree.head.root);
      assertSignedState(statePath, tree.head);
    }
    // The same size and root again: allowed (a re-sign changes nothing).
    const same = new TestTree(1000);
    const note = await signer.sign(same.head, () => assert.fail('no proof needed for the same size'));
    assert.ok(verifyNote(provider, note, [{ name: ORIGIN, key: key.publicKey }]));
  });

  test('needs no proof from the empty tree', async () => {
    const signer = await open(freshState());
    const empty = { size: 0n, root: sha256(new Uint8Array(0)) };
    await signer.sign(empty, () => assert.fail('no proof from size 0'));
    const tree = new TestTree(7);
    await signer.sign(tree.head, () => assert.fail('no proof from size 0'));
    assert.equal(signer.lastSigned()?.size, 7n);
  });

  test('refuses a smaller size, the same size with another root, and a forged tree; state unchanged', async () => {
    const statePath = freshState();
    const signer = await open(statePath);
    const good = new TestTree(10);
    await signer.sign(good.head, good.prove);
    const before = readFileSync(statePath);

    const smaller = new TestTree(9);
    const sameSizeOtherRoot = new TestTree(10, 'b');
    const forged = new TestTree(20, 'b'); // valid proofs within itself, but not an extension of `good`
    const cases: [string, TreeHead, (from: bigint) => Uint8Array[]][] = [
      ['smaller', smaller.head, smaller.prove],
      ['same size, other root', sameSizeOtherRoot.head, sameSizeOtherRoot.prove],
      ['forged', forged.head, forged.prove],
      ['forged root with the real proof', { size: 20n, root: forged.head.root }, new TestTree(20).prove],
      ['empty proof', new TestTree(20).head, () => []],
      [
        'proof that cannot be made',
        new TestTree(20).head,
        () => {
          throw new Error('no leaves');
        },
      ],
    ];
    for (const [what, head, prove] of cases) {
      await assert.rejects(signer.sign(head, prove), isSealError('CHECKPOINT_INCONSISTENT'), what);
      assert.deepEqual(readFileSync(statePath), before, `${what}: state changed`);
    }
    // The real extension is still fine.
    const grown = new TestTree(20);
    await signer.sign(grown.head, grown.prove);
    assertSignedState(statePath, grown.head);
  });

  test('the state survives a restart: a new signer on the same file refuses an inconsistent tree', async () => {
    const statePath = freshState();
    const first = await open(statePath);
    const tree = new TestTree(33);
    await first.sign(tree.head, tree.prove);

    const second = await open(statePath);
    assert.equal(second.lastSigned()?.size, 33n);
    const forged = new TestTree(40, 'b');
    await assert.rejects(second.sign(forged.head, forged.prove), isSealError('CHECKPOINT_INCONSISTENT'));
    const same = new TestTree(33, 'b');
    await assert.rejects(second.sign(same.head, same.prove), isSealError('CHECKPOINT_INCONSISTENT'));
    const grown = new TestTree(40);
    await second.sign(grown.head, grown.prove);
    // ... and the first signer, still alive, sees what the second signed.
    await assert.rejects(first.sign(tree.head, tree.prove), isSealError('CHECKPOINT_INCONSISTENT'));
  });

  test('concurrent signs of inconsistent trees on one state file: exactly one is signed', async () => {
    const statePath = freshState();
    const [a, b] = [await open(statePath), await open(statePath)];
    const base = new TestTree(5);
    await a.sign(base.head, base.prove);
    // Two different extensions of the same signed tree: each consistent with it, not with each other.
    const ta = new TestTree(9, 'a');
    const tb = new TestTree(9, (i) => (i < 5 ? 'a' : 'b'));
    const results = await Promise.allSettled([a.sign(ta.head, ta.prove), b.sign(tb.head, tb.prove)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected'],
    );
    assertSignedState(statePath, ta.head);
  });

  test('persists the new state before signing; a signing failure is CHECKPOINT_SIGN_FAILED', async () => {
    // Safe order (see signer.ts): if the state were written after the signature, a crash in between could
    // let a restarted signer sign a different tree of the same size. Written first, a failed signature
    // only leaves a state that the log's durable tree extends anyway.
    const statePath = freshState();
    let seenAtSign: Buffer | undefined;
    const spy: CryptoProvider = Object.assign(Object.create(provider) as CryptoProvider, {
      sign: (k: PrivateKey, data: Uint8Array, scheme: Parameters<CryptoProvider['sign']>[2]) => {
        seenAtSign = readFileSync(statePath);
        return provider.sign(k, data, scheme);
      },
    });
    const signer = await open(statePath, spy);
    const tree = new TestTree(4);
    await signer.sign(tree.head, tree.prove);
    assert.ok(seenAtSign, 'sign was called');
    assert.deepEqual(
      decodeSignedState(
        decodeStateFile(new Uint8Array(seenAtSign), 'signed.state', 'CHECKPOINT_STATE_INVALID').payload!,
      ).size,
      4n,
      'state was written before signing',
    );

    // A token that is gone: the provider's sign throws.
    const broken: CryptoProvider = Object.assign(Object.create(provider) as CryptoProvider, {
      sign: () => Promise.reject(new Error('CKR_DEVICE_REMOVED')),
    });
    const brokenSigner = await open(statePath, broken);
    const grown = new TestTree(6);
    await assert.rejects(brokenSigner.sign(grown.head, grown.prove), (err: unknown) => {
      isSealError('CHECKPOINT_SIGN_FAILED')(err);
      assert.match(((err as SealError).cause as Error).message, /CKR_DEVICE_REMOVED/);
      return true;
    });
    assertSignedState(statePath, grown.head); // already advanced
    // A key handle whose backend cannot sign here (made by another backend).
    const foreign: PrivateKey = { ...key, ref: 'pkcs11:token=gone;object=signer', backend: 'pkcs11' };
    const foreignSigner = await open(statePath, provider, foreign);
    const grown2 = new TestTree(8);
    await assert.rejects(
      foreignSigner.sign(grown2.head, grown2.prove),
      isSealError('CHECKPOINT_SIGN_FAILED'),
    );
    assertSignedState(statePath, grown2.head);
    // The advanced state still binds: the next checkpoint must extend size 8.
    const forged = new TestTree(8, 'b');
    await assert.rejects(signer.sign(forged.head, forged.prove), isSealError('CHECKPOINT_INCONSISTENT'));
    await signer.sign(grown2.head, grown2.prove);
  });

  test('a state that cannot be persisted is CHECKPOINT_SIGN_FAILED and nothing is signed', async () => {
    const statePath = freshState();
    let signed = 0;
    const counting: CryptoProvider = Object.assign(Object.create(provider) as CryptoProvider, {
      sign: (k: PrivateKey, data: Uint8Array, scheme: Parameters<CryptoProvider['sign']>[2]) => {
        signed++;
        return provider.sign(k, data, scheme);
      },
    });
    let failing = false;
    const failingFs = {
      ...nodeStoreFs,
      fdatasync: (fd: number) => (failing ? Promise.reject(new Error('EIO')) : nodeStoreFs.fdatasync(fd)),
    };
    const signer = await CheckpointSigner.open(counting, { key, origin: ORIGIN, statePath, fs: failingFs });
    failing = true; // the state file exists now (made at open); its write at signing time fails
    const tree = new TestTree(3);
    await assert.rejects(signer.sign(tree.head, tree.prove), isSealError('CHECKPOINT_SIGN_FAILED'));
    assert.equal(signed, 0);
    assert.ok(existsSync(statePath));
  });

  test('open refuses a damaged state file, a non-P-384 key and an origin that is not a key name', async () => {
    const statePath = freshState();
    writeFileSync(statePath, new Uint8Array(39));
    await assert.rejects(open(statePath), isSealError('CHECKPOINT_STATE_INVALID'));
    const p256 = await provider.generateKey({ type: 'ec', curve: 'P-256' });
    await assert.rejects(open(freshState(), provider, p256), isSealError('INVALID_ARGUMENT'));
    for (const origin of ['', 'a b', 'a+b']) {
      await assert.rejects(
        CheckpointSigner.open(provider, { key, origin, statePath: freshState() }),
        isSealError('INVALID_ARGUMENT'),
      );
    }
  });

  test('refuses a tree head that is not a u64 size and a 32-byte root', async () => {
    const signer = await open(freshState());
    await assert.rejects(
      signer.sign({ size: -1n, root: new Uint8Array(32) }, () => []),
      isSealError('INVALID_ARGUMENT'),
    );
    await assert.rejects(
      signer.sign({ size: 1n, root: new Uint8Array(31) }, () => []),
      isSealError('INVALID_ARGUMENT'),
    );
  });
});

describe('signer rotation (FORMAT.md §5.3)', () => {
  test('the old key signs the new SPKI; verifyRotation checks it', async () => {
    const signer = await open(freshState());
    const next = await provider.generateKey({ type: 'ec', curve: 'P-384' });
    const spki = Buffer.from(next.publicKey.spkiDer()).toString('base64');
    const sig = await signer.rotationSignature(next.publicKey);
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, spki, sig), true);
    // The signature is over exactly the documented message.
    const message = Buffer.from(`sealgate/v1 signer rotation\n${ORIGIN}\n${spki}\n`);
    assert.deepEqual(Buffer.from(rotationMessage(ORIGIN, spki)), message);
    assert.equal(
      provider.verify(key.publicKey, message, Buffer.from(sig, 'base64'), {
        scheme: 'ecdsa',
        encoding: 'der',
      }),
      true,
    );

    const other = await provider.generateKey({ type: 'ec', curve: 'P-384' });
    const otherSpki = Buffer.from(other.publicKey.spkiDer()).toString('base64');
    const flipped = Buffer.from(sig, 'base64');
    flipped[flipped.length - 1] ^= 1;
    assert.equal(
      verifyRotation(provider, key.publicKey, 'other.example/log', spki, sig),
      false,
      'other origin',
    );
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, otherSpki, sig), false, 'other new key');
    assert.equal(verifyRotation(provider, other.publicKey, ORIGIN, spki, sig), false, 'other old key');
    assert.equal(
      verifyRotation(provider, key.publicKey, ORIGIN, spki, flipped.toString('base64')),
      false,
      'bit flip',
    );
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, spki, 'not base64!'), false, 'bad base64');
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, 'AAAA', sig), false, 'not a key');
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, spki, ''), false, 'empty signature');

    const p256 = await provider.generateKey({ type: 'ec', curve: 'P-256' });
    await assert.rejects(signer.rotationSignature(p256.publicKey), isSealError('INVALID_ARGUMENT'));
  });
});
