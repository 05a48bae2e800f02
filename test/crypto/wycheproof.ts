/**
 * Wycheproof vectors through the provider. Registered twice: by wycheproof.test.ts in a normal Node and
 * by wycheproof.fips.ts in a FIPS-mode Node. `valid` must succeed, `invalid` must fail, `acceptable` may
 * go either way and is counted. Groups outside the suite (AES-GCM with other key, IV or tag sizes) must
 * be refused by our wrapper with the rule that names the reason.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { CryptoError, OpenSslProvider, type CryptoProvider, type HashAlg } from '../../src/crypto/index.js';
import { vectorsDir } from '../helpers/paths.js';

interface WTest {
  tcId: number;
  result: 'valid' | 'invalid' | 'acceptable';
  [k: string]: unknown;
}
interface WGroup {
  tests: WTest[];
  [k: string]: unknown;
}

const hex = (s: unknown) => new Uint8Array(Buffer.from(String(s ?? ''), 'hex'));

function load(file: string): WGroup[] {
  return (
    JSON.parse(readFileSync(join(vectorsDir(), 'wycheproof', file), 'utf8')) as { testGroups: WGroup[] }
  ).testGroups;
}

class Tally {
  valid = 0;
  invalid = 0;
  acceptableAccepted = 0;
  acceptableRejected = 0;
  refusedByPolicy = 0;
  failures: string[] = [];
  /** Records one outcome: `accepted` is whether the provider accepted the input. */
  record(t: WTest, accepted: boolean, why = ''): void {
    if (t.result === 'acceptable') {
      if (accepted) this.acceptableAccepted++;
      else this.acceptableRejected++;
    } else if (t.result === 'valid') {
      if (accepted) this.valid++;
      else this.failures.push(`tcId ${t.tcId} (valid) rejected ${why}`);
    } else if (accepted) {
      this.failures.push(`tcId ${t.tcId} (invalid) accepted`);
    } else {
      this.invalid++;
    }
  }
  report(t: TestContext, file: string, mode: string): void {
    t.diagnostic(
      `${mode} ${file}: valid passed ${this.valid}, invalid rejected ${this.invalid}, acceptable accepted ` +
        `${this.acceptableAccepted}/rejected ${this.acceptableRejected}, refused by policy ${this.refusedByPolicy}`,
    );
    assert.deepEqual(this.failures, []);
    assert.ok(this.valid + this.invalid > 0, 'no vectors ran');
  }
}

/** Runs `op`; returns true on success, false when it throws an expected rejection. */
async function accepts(op: () => unknown): Promise<[boolean, string]> {
  try {
    const r = await op();
    return [r !== false, ''];
  } catch (err) {
    if (err instanceof CryptoError && err.code !== 'POLICY_REFUSED') return [false, err.message];
    throw err;
  }
}

async function aesGcm(p: CryptoProvider, tally: Tally): Promise<void> {
  for (const g of load('aes_gcm_test.json')) {
    const inSuite = g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128;
    for (const t of g.tests) {
      const params = { key: hex(t.key), iv: hex(t.iv), aad: hex(t.aad), tagLength: Number(g.tagSize) / 8 };
      const sealed = new Uint8Array([...hex(t.ct), ...hex(t.tag)]);
      if (!inSuite) {
        assert.throws(
          () => p.aesGcmOpen(params, sealed),
          (e: unknown) =>
            e instanceof CryptoError && e.code === 'POLICY_REFUSED' && /suite\.(gcm|aes)/.test(e.rule ?? ''),
          `tcId ${t.tcId}: key ${String(g.keySize)}, IV ${String(g.ivSize)}, tag ${String(g.tagSize)} must be refused`,
        );
        tally.refusedByPolicy++;
        continue;
      }
      const [ok, why] = await accepts(() => {
        const pt = p.aesGcmOpen(params, sealed);
        if (!p.equal(pt, hex(t.msg))) return false;
        // Sealing must reproduce the ciphertext and tag exactly (same key, IV, AAD).
        return p.equal(p.aesGcmSeal(params, hex(t.msg)), sealed);
      });
      tally.record(t, ok, why);
    }
  }
}

async function hkdf(p: CryptoProvider, tally: Tally): Promise<void> {
  for (const g of load('hkdf_sha512_test.json')) {
    for (const t of g.tests) {
      const [ok, why] = await accepts(() =>
        p.equal(p.hkdf('sha512', hex(t.ikm), hex(t.salt), hex(t.info), Number(t.size)), hex(t.okm)),
      );
      tally.record(t, ok, why);
    }
  }
}

async function oaep(p: CryptoProvider, tally: Tally, file: string): Promise<void> {
  for (const g of load(file)) {
    assert.equal(g.sha, 'SHA-256');
    assert.equal(g.mgfSha, 'SHA-256');
    const key = await p.importPrivateKey(String(g.privateKeyPem), undefined, file);
    for (const t of g.tests) {
      const label = hex(t.label);
      const [ok, why] = await accepts(async () => {
        const pt = await p.oaepDecrypt(key, hex(t.ct), {
          hash: 'sha256',
          ...(label.length ? { label } : {}),
        });
        return p.equal(pt, hex(t.msg));
      });
      tally.record(t, ok, why);
    }
  }
}

async function ecdsa(p: CryptoProvider, tally: Tally, file: string, hash: HashAlg): Promise<void> {
  for (const g of load(file)) {
    const key = p.importPublicKey(hex(g.publicKeyDer));
    for (const t of g.tests) {
      const [ok, why] = await accepts(() =>
        p.verify(key, hex(t.msg), hex(t.sig), { scheme: 'ecdsa', hash, encoding: 'der' }),
      );
      tally.record(t, ok, why);
    }
  }
}

async function pss(p: CryptoProvider, tally: Tally): Promise<void> {
  for (const g of load('rsa_pss_3072_sha256_mgf1_32_test.json')) {
    assert.equal(g.mgfSha, 'SHA-256');
    const key = p.importPublicKey(hex(g.publicKeyDer));
    for (const t of g.tests) {
      const scheme = { scheme: 'rsa-pss', hash: 'sha256', saltLength: Number(g.sLen) } as const;
      const [ok, why] = await accepts(() => p.verify(key, hex(t.msg), hex(t.sig), scheme));
      tally.record(t, ok, why);
    }
  }
}

const SUITES: [string, (p: CryptoProvider, tally: Tally) => Promise<void>][] = [
  ['aes_gcm_test.json', aesGcm],
  ['hkdf_sha512_test.json', hkdf],
  [
    'rsa_oaep_2048_sha256_mgf1sha256_test.json',
    (p, t) => oaep(p, t, 'rsa_oaep_2048_sha256_mgf1sha256_test.json'),
  ],
  [
    'rsa_oaep_3072_sha256_mgf1sha256_test.json',
    (p, t) => oaep(p, t, 'rsa_oaep_3072_sha256_mgf1sha256_test.json'),
  ],
  ['ecdsa_secp256r1_sha256_test.json', (p, t) => ecdsa(p, t, 'ecdsa_secp256r1_sha256_test.json', 'sha256')],
  ['ecdsa_secp384r1_sha384_test.json', (p, t) => ecdsa(p, t, 'ecdsa_secp384r1_sha384_test.json', 'sha384')],
  ['rsa_pss_3072_sha256_mgf1_32_test.json', pss],
];

export function registerWycheproofTests(mode: 'normal' | 'fips'): void {
  const provider = new OpenSslProvider();
  it(`runs in ${mode} mode`, () => {
    assert.equal(provider.policy.fips, mode === 'fips', `provider FIPS state must match the ${mode} pass`);
  });
  for (const [file, run] of SUITES) {
    it(`${file} (${mode} mode)`, async (t) => {
      const tally = new Tally();
      await run(provider, tally);
      tally.report(t, file, mode);
    });
  }
}
