/**
 * Verify in FIPS mode: a log sealed by a FIPS-mode provider, exported and verified by a FIPS-mode
 * verifier (SHA-256 and ECDSA P-384 verification are approved), whose provenance says every segment
 * was sealed in FIPS mode.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { exportBundle } from '../../src/audit/export.js';
import { openLogSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { makeKeys, tempDir, writeRun } from './helpers.js';

const p = new OpenSslProvider();

test('the FIPS pass runs with the FIPS provider', () => {
  assert.equal(p.info().fipsMode, true);
});

test('export and verify a bundle in FIPS mode: every segment attests FIPS', async () => {
  const keys = await makeKeys(p);
  const store = join(tempDir(), 'store');
  await writeRun(p, store, keys, { create: true });
  await writeRun(p, store, keys, { sessions: 2, records: 7 });
  const out = join(tempDir(), 'bundle');
  await exportBundle({ provider: p, storeDir: store, outDir: out, signer: keys.signer });
  for (const path of [store, out]) {
    const source = openLogSource(path);
    const r = verifyLog(p, source, { trustedSigners: [keys.signer.publicKey] });
    // The tree hashed in a worker thread: the same process, so the same FIPS provider.
    const parallel = verifyLog(p, source, { trustedSigners: [keys.signer.publicKey], parallel: true });
    source.close();
    assert.deepEqual(parallel.failures, r.failures);
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.ok(r.provenance.length > 0);
    assert.ok(r.provenance.every((s) => s.fips === true && s.backend === 'openssl'));
    assert.equal(r.summary, `all ${r.provenance.length} segments sealed in FIPS mode`);
    assert.deepEqual(r.nonFipsSegments, []);
  }
  // A partial export verifies through inclusion proofs in FIPS mode too.
  const partial = join(tempDir(), 'bundle');
  await exportBundle({ provider: p, storeDir: store, outDir: partial, signer: keys.signer, from: 5, to: 20 });
  const source = openLogSource(partial);
  const r = verifyLog(p, source, { trustedSigners: [keys.signer.publicKey] });
  assert.equal(r.ok, true, JSON.stringify(r.failures));
  // Leaves 5..19, and the headers (from before leaf 5) of the segments the range starts inside.
  const carried = [...source.entries()].filter((e) => e.index < 5);
  assert.ok(carried.every((e) => e.bytes[0] === 0x01));
  assert.equal(r.counts.entries, 15 + carried.length);
});
