/**
 * The provider contract against real tokens, made from nothing for this run (test/tokens/):
 * - ECDSA P-256 and P-384 signing in SoftHSM2 and in the NSS softoken, verified by the provider and by
 *   `openssl dgst -verify`;
 * - RSA-OAEP-SHA-256 decryption in NSS of data keys that OpenSSL wrapped (the provider and `openssl
 *   pkeyutl`), by C_Decrypt and by C_UnwrapKey;
 * - the Wycheproof OAEP-SHA-256 vectors with their private keys stored in NSS;
 * - SoftHSM2's refusal of OAEP-SHA-256, reported as UNSUPPORTED, with no fallback to SHA-1.
 * Registered in a normal Node (pkcs11.test.ts) and a FIPS-mode Node (pkcs11.fips.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import {
  createProvider,
  CryptoError,
  type CryptoErrorCode,
  type EcCurve,
  type RoutingProvider,
} from '../../src/crypto/index.js';
import { vectorsDir } from '../helpers/paths.js';
import { makeNss, makeSoftHsm2, type TestToken } from '../tokens/tokens.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (s: unknown) => new Uint8Array(Buffer.from(String(s ?? ''), 'hex'));

export function expectCode(c: CryptoErrorCode, text?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (text) assert.match(e.message, text);
    return true;
  };
}

const sh = (cmd: string, args: string[], input?: Uint8Array) =>
  execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });

interface WTest {
  tcId: number;
  result: 'valid' | 'invalid' | 'acceptable';
  msg: string;
  ct: string;
  label: string;
}
interface WGroup {
  privateKeyPem: string;
  sha: string;
  mgfSha: string;
  tests: WTest[];
}

export function registerPkcs11Contract(mode: 'normal' | 'fips'): void {
  let softhsm: TestToken;
  let nss: TestToken;
  const providers: Record<string, RoutingProvider> = {};

  before(async () => {
    softhsm = makeSoftHsm2();
    nss = makeNss();
    for (const t of [softhsm, nss]) {
      const { provider, report } = await createProvider({ fips: mode === 'fips', pkcs11: t.settings });
      assert.ok(report.ok, JSON.stringify(report));
      providers[t.kind] = provider;
    }
  });
  after(() => {
    for (const p of Object.values(providers)) p.close();
  });

  it(`runs in ${mode} mode`, () => {
    for (const p of Object.values(providers)) assert.equal(p.policy.fips, mode === 'fips');
  });

  for (const kind of ['softhsm2', 'nss'] as const) {
    for (const curve of ['P-256', 'P-384'] as EcCurve[]) {
      it(`${kind}: ECDSA ${curve} signatures made in the token verify in the provider and in openssl`, async () => {
        const t = kind === 'softhsm2' ? softhsm : nss;
        const p = providers[kind] as RoutingProvider;
        const ref = t.uri(`ecdsa-${curve}-${mode}`);
        const generated = await p.generateKeyAt(ref, { type: 'ec', curve });
        assert.equal(generated.backend, 'pkcs11');
        assert.deepEqual(generated.algorithm, { type: 'ec', curve });
        // A fresh handle, loaded by the URI as a config names it.
        const key = await p.loadPrivateKey(ref);
        assert.deepEqual(key.publicKey.spkiDer(), generated.publicKey.spkiDer());

        const msg = utf8(`checkpoint body signed in ${kind}\n`);
        const hash = curve === 'P-384' ? 'sha384' : 'sha256';
        const der = await p.sign(key, msg, { scheme: 'ecdsa', encoding: 'der' });
        const raw = await p.sign(key, msg, { scheme: 'ecdsa', encoding: 'p1363' });
        assert.equal(raw.length, curve === 'P-384' ? 96 : 64);
        assert.ok(p.verify(key.publicKey, msg, der, { scheme: 'ecdsa', encoding: 'der' }));
        assert.ok(p.verify(key.publicKey, msg, raw, { scheme: 'ecdsa', encoding: 'p1363' }));
        const tampered = Uint8Array.from(msg);
        tampered[0] = (tampered[0] ?? 0) ^ 1;
        assert.equal(p.verify(key.publicKey, tampered, der, { scheme: 'ecdsa', encoding: 'der' }), false);

        // A real consumer: the openssl CLI, given only the exported SPKI PEM.
        const pub = join(t.dir, `${kind}-${curve}-${mode}.pub.pem`);
        const sig = join(t.dir, `${kind}-${curve}-${mode}.sig`);
        writeFileSync(pub, key.publicKey.spkiPem());
        writeFileSync(sig, der);
        const out = sh('openssl', ['dgst', `-${hash}`, '-verify', pub, '-signature', sig], msg).toString();
        assert.match(out, /Verified OK/);
      });
    }
  }

  it('nss: RSA-OAEP-SHA-256 unwraps data keys that OpenSSL wrapped (provider and openssl pkeyutl)', async () => {
    const p = providers.nss as RoutingProvider;
    const key = await p.generateKeyAt(nss.uri(`auditor-${mode}`), { type: 'rsa', bits: 3072 });
    assert.deepEqual(key.algorithm, { type: 'rsa', bits: 3072 });
    const dek = p.randomBytes(32);
    assert.deepEqual(await p.oaepDecrypt(key, p.oaepEncrypt(key.publicKey, dek)), dek);
    const label = utf8('sealgate label');
    assert.deepEqual(
      await p.oaepDecrypt(key, p.oaepEncrypt(key.publicKey, dek, { hash: 'sha256', label }), {
        hash: 'sha256',
        label,
      }),
      dek,
    );
    // Wrapped by the openssl CLI with exactly SHA-256 and MGF1-SHA-256, from the exported public key.
    const pub = join(nss.dir, `auditor-${mode}.pub.pem`);
    writeFileSync(pub, key.publicKey.spkiPem());
    const wrapped = sh(
      'openssl',
      [
        'pkeyutl',
        '-encrypt',
        '-pubin',
        '-inkey',
        pub,
        '-pkeyopt',
        'rsa_padding_mode:oaep',
        '-pkeyopt',
        'rsa_oaep_md:sha256',
        '-pkeyopt',
        'rsa_mgf1_md:sha256',
      ],
      dek,
    );
    assert.deepEqual(await p.oaepDecrypt(key, new Uint8Array(wrapped)), dek);
    // A corrupted wrap fails like it does in software: AUTHENTICATION_FAILED, nothing released.
    const bad = new Uint8Array(wrapped);
    bad[10] = (bad[10] ?? 0) ^ 1;
    await assert.rejects(
      p.oaepDecrypt(key, bad),
      expectCode('AUTHENTICATION_FAILED', /wrong key or corrupted/),
    );
  });

  it('nss: an unwrap-only key (CKA_DECRYPT false) unwraps through C_UnwrapKey', async () => {
    const p = providers.nss as RoutingProvider;
    const key = await p.generateKeyAt(nss.uri(`unwrap-only-${mode}`), { type: 'rsa', bits: 3072 }, 'unwrap');
    const dek = p.randomBytes(32);
    assert.deepEqual(await p.oaepDecrypt(key, p.oaepEncrypt(key.publicKey, dek)), dek);
    // The low byte: the ciphertext stays below n, so the token itself must find the bad padding.
    const bad = p.oaepEncrypt(key.publicKey, dek);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    await assert.rejects(p.oaepDecrypt(key, bad), expectCode('AUTHENTICATION_FAILED'));
  });

  for (const file of [
    'rsa_oaep_2048_sha256_mgf1sha256_test.json',
    'rsa_oaep_3072_sha256_mgf1sha256_test.json',
  ]) {
    it(`nss: Wycheproof ${file} with the private key stored in the token`, async (t: TestContext) => {
      const p = providers.nss as RoutingProvider;
      const groups = (
        JSON.parse(readFileSync(join(vectorsDir(), 'wycheproof', file), 'utf8')) as { testGroups: WGroup[] }
      ).testGroups;
      let valid = 0;
      let invalid = 0;
      const failures: string[] = [];
      for (const [gi, g] of groups.entries()) {
        assert.equal(g.sha, 'SHA-256');
        assert.equal(g.mgfSha, 'SHA-256');
        const soft = await p.importPrivateKey(g.privateKeyPem, undefined, file);
        const key = await p.storeKeyAt(nss.uri(`wycheproof-${file}-${gi}-${mode}`), soft);
        assert.equal(key.backend, 'pkcs11');
        assert.deepEqual(key.publicKey.spkiDer(), soft.publicKey.spkiDer());
        for (const v of g.tests) {
          const label = hex(v.label);
          let got: Uint8Array | undefined;
          try {
            got = await p.oaepDecrypt(key, hex(v.ct), { hash: 'sha256', ...(label.length ? { label } : {}) });
          } catch (err) {
            assert.ok(err instanceof CryptoError, String(err));
            assert.equal(err.code, 'AUTHENTICATION_FAILED', `tcId ${v.tcId}: ${err.message}`);
          }
          const ok = got !== undefined && p.equal(got, hex(v.msg));
          if (v.result === 'valid') {
            if (ok) valid++;
            else failures.push(`tcId ${v.tcId} (valid) rejected`);
          } else if (v.result === 'invalid') {
            if (got === undefined) invalid++;
            else failures.push(`tcId ${v.tcId} (invalid) accepted`);
          }
        }
      }
      t.diagnostic(`${mode} NSS ${file}: valid decrypted ${valid}, invalid rejected ${invalid}`);
      assert.deepEqual(failures, []);
      assert.ok(valid > 0 && invalid > 0);
    });
  }

  it('softhsm2: OAEP-SHA-256 is refused as UNSUPPORTED, and nothing falls back to SHA-1', async (t) => {
    const p = providers.softhsm2 as RoutingProvider;
    // Imported, not generated: RSA key generation in SoftHSM2 takes about a second.
    const soft = await p.generateKey({ type: 'rsa', bits: 3072 });
    const key = await p.storeKeyAt(softhsm.uri(`recipient-${mode}`), soft);
    const dek = p.randomBytes(32);
    const unsupported = expectCode(
      'UNSUPPORTED',
      /^mechanism not supported by this token: RSA-OAEP with SHA-256 \(token "sealgate", SoftHSM project SoftHSM v2: CKR_ARGUMENTS_BAD at C_DecryptInit\); sealgate never falls back to SHA-1$/,
    );
    await assert.rejects(p.oaepDecrypt(key, p.oaepEncrypt(key.publicKey, dek)), unsupported);
    // A DEK wrapped with OAEP-SHA-1 (which SoftHSM2 could decrypt) is refused the same way: no request
    // with SHA-1 ever reaches the token.
    const pub = join(softhsm.dir, `recipient-${mode}.pub.pem`);
    writeFileSync(pub, key.publicKey.spkiPem());
    const sha1Wrapped = sh(
      'openssl',
      ['pkeyutl', '-encrypt', '-pubin', '-inkey', pub, '-pkeyopt', 'rsa_padding_mode:oaep'],
      dek,
    );
    await assert.rejects(p.oaepDecrypt(key, new Uint8Array(sha1Wrapped)), unsupported);
    // And asking for SHA-1 is the policy's refusal, before any token is involved.
    await assert.rejects(
      p.oaepDecrypt(key, new Uint8Array(sha1Wrapped), { hash: 'sha1' }),
      expectCode('POLICY_REFUSED', /suite\.oaep-sha256-only/),
    );
    t.diagnostic('SoftHSM2 2.6.1: CKR_ARGUMENTS_BAD at C_DecryptInit for CKM_RSA_PKCS_OAEP with SHA-256');
  });

  it(`token keys follow the ${mode}-mode policy: no Ed25519, no RSA below 2048`, async () => {
    const p = providers.softhsm2 as RoutingProvider;
    await assert.rejects(
      p.generateKeyAt(softhsm.uri(`ed25519-${mode}`), { type: 'ed25519' }),
      mode === 'fips'
        ? expectCode('POLICY_REFUSED', /Ed25519 keys are not FIPS-approved .*\[fips\.no-ed25519\]/)
        : expectCode('UNSUPPORTED', /makes EC P-256\/P-384 and RSA keys, not ed25519/),
    );
    await assert.rejects(
      p.generateKeyAt(softhsm.uri(`rsa1024-${mode}`), { type: 'rsa', bits: 1024 as 2048 }),
      expectCode('POLICY_REFUSED', /\[suite\.rsa-min-2048\]/),
    );
  });

  it('info() names the module and the tokens in use, for segment provenance', () => {
    for (const [kind, model] of [
      ['softhsm2', 'SoftHSM v2'],
      ['nss', 'NSS 3'],
    ] as const) {
      const info = (providers[kind] as RoutingProvider).info();
      assert.equal(info.backend, 'openssl'); // sealing itself is done in software
      assert.equal(info.fipsMode, mode === 'fips');
      assert.equal(info.details.tokenModel, model);
      assert.ok(info.details.tokenSerial !== undefined && info.details.pkcs11Library !== undefined);
      assert.equal(info.details.pkcs11Module, kind === 'nss' ? nss.module : softhsm.module);
    }
  });
}
