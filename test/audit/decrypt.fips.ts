/**
 * Decrypt in the FIPS pass: the fixture store written and decrypted by a FIPS-mode Node (RSA-OAEP unwrap,
 * HKDF-SHA-512 commitment, AES-256-GCM tags, all through the FIPS provider), and a tampered record refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { decryptLog, DecryptError, type DecryptedEvent } from '../../src/audit/decrypt.js';
import { buildFixture, storeEntries, withoutPosition } from './decrypt-fixture.js';

const p = new OpenSslProvider();

describe('decryptLog, FIPS-mode Node', () => {
  it('runs with the FIPS provider', () => {
    assert.equal(p.info().fipsMode, true);
  });

  it('gives each recipient exactly its records, and refuses a tampered one', async () => {
    const fx = await buildFixture(p);
    for (const name of ['r1', 'r2'] as const) {
      const events: DecryptedEvent[] = [];
      for await (const e of decryptLog(p, storeEntries(fx.dir), fx[name])) events.push(e);
      assert.deepEqual(
        events.filter((e) => e.kind === 'record').map(withoutPosition),
        fx.expected[name],
        name,
      );
    }
    const entries = storeEntries(fx.dir);
    const victim = entries.findIndex((e) => e.bytes[0] === 0x02);
    const tampered = entries.map((e) =>
      e.index === victim
        ? { index: e.index, bytes: Uint8Array.from(e.bytes, (b, i) => (i === 45 ? b ^ 1 : b)) }
        : e,
    );
    const released: DecryptedEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of decryptLog(p, tampered, fx.r1)) released.push(e);
      })(),
      (err: unknown) =>
        err instanceof DecryptError && err.code === 'RECORD_AUTHENTICATION_FAILED' && err.index === victim,
    );
    assert.ok(released.every((e) => e.index < victim));
  });
});
