import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { formatCheckpoint, parseCheckpoint } from '../../src/seal/checkpoint.js';
import { SealError } from '../../src/seal/errors.js';
import { hashLeaf, SubtreeRoots } from '../../src/seal/merkle.js';
import { noteKeyId, signNote, verifyNote } from '../../src/seal/note.js';
import { CheckpointSigner, verifyRotation } from '../../src/seal/signer.js';

const provider = new OpenSslProvider();
const ORIGIN = 'test.sealgate/log';
const sha256 = (d: Uint8Array): Uint8Array => provider.digest('sha256', d);

test('the FIPS pass runs with the FIPS provider', () => {
  assert.equal(provider.info().fipsMode, true);
});

test('signed notes: sign and verify with ECDSA P-384 in FIPS mode', async () => {
  const key = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  const body = formatCheckpoint({ origin: ORIGIN, size: 42n, root: new Uint8Array(32).fill(1) });
  const note = await signNote(provider, key, ORIGIN, body);
  const trusted = [{ name: ORIGIN, key: key.publicKey }];
  assert.equal(verifyNote(provider, note, trusted).body, body);
  assert.equal(noteKeyId(provider, key.publicKey).length, 4);
  const tampered = note.replace('\n42\n', '\n43\n');
  assert.throws(
    () => verifyNote(provider, tampered, trusted),
    (err: unknown) => err instanceof SealError && err.code === 'NOTE_SIGNATURE_INVALID',
  );
});

test('the checkpoint signer and signer rotation work in FIPS mode', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sealgate-note-fips-'));
  try {
    const key = await provider.generateKey({ type: 'ec', curve: 'P-384' });
    const signer = await CheckpointSigner.open(provider, {
      key,
      origin: ORIGIN,
      statePath: join(work, 'signed.state'),
    });
    const leaves = Array.from({ length: 20 }, (_, i) => hashLeaf(sha256, Buffer.from(`leaf ${i}`)));
    const tree = new SubtreeRoots(sha256, leaves);
    for (const size of [3, 20]) {
      const note = await signer.sign({ size: BigInt(size), root: tree.mth(0, size) }, (from) =>
        tree.consistencyProof(Number(from), size),
      );
      const cp = parseCheckpoint(verifyNote(provider, note, [{ name: ORIGIN, key: key.publicKey }]).body);
      assert.equal(cp.size, BigInt(size));
    }
    const next = await provider.generateKey({ type: 'ec', curve: 'P-384' });
    const sig = await signer.rotationSignature(next.publicKey);
    const spki = Buffer.from(next.publicKey.spkiDer()).toString('base64');
    assert.equal(verifyRotation(provider, key.publicKey, ORIGIN, spki, sig), true);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
