/**
 * The provider's contract, checked against real consumers where they exist (ssh-keygen, openssl CLI).
 * Registered in a normal Node (provider.test.ts) and a FIPS-mode Node (provider.fips.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import {
  CryptoError,
  OpenSslProvider,
  parseKeyRef,
  RoutingProvider,
  type CryptoErrorCode,
} from '../../src/crypto/index.js';

const sh = (cmd: string, args: string[], input?: Uint8Array) =>
  execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });

function code(c: CryptoErrorCode, text?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (text) assert.match(e.message, text);
    return true;
  };
}

export function registerProviderTests(mode: 'normal' | 'fips'): void {
  const p = new OpenSslProvider();
  const dir = mkdtempSync(join(tmpdir(), `sealgate-provider-${mode}-`));

  it(`policy mode matches the Node (${mode})`, () => assert.equal(p.policy.fips, mode === 'fips'));

  for (const [type, bits] of [
    ['ecdsa', '256'],
    ['ecdsa', '384'],
    ['rsa', '3072'],
  ] as const) {
    it(`imports an OpenSSH ${type}-${bits} public key made by ssh-keygen, and exports the same SPKI`, () => {
      const file = join(dir, `id_${type}${bits}`);
      sh('ssh-keygen', ['-q', '-t', type, '-b', bits, '-N', '', '-C', 'test@sealgate', '-f', file]);
      const line = readFileSync(`${file}.pub`, 'utf8').trim();
      const key = p.importPublicKey(line);
      // ssh-keygen's own SPKI export is the reference.
      const reference = sh('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', `${file}.pub`]).toString();
      assert.equal(key.spkiPem().trim(), reference.trim());
      assert.equal(key.openssh('test@sealgate'), line);
    });
  }

  it('rejects malformed OpenSSH lines with INVALID_INPUT', () => {
    assert.throws(
      () => p.importPublicKey('ecdsa-sha2-nistp256 AAAA!!!'),
      code('INVALID_INPUT', /invalid base64/),
    );
    assert.throws(
      () => p.importPublicKey('ecdsa-sha2-nistp256 AAAAB3NzaC1yc2EAAAADAQAB'),
      code('INVALID_INPUT'),
    );
    assert.throws(() => p.importPublicKey('garbage'), code('INVALID_INPUT'));
    assert.throws(() => p.importPublicKey(new Uint8Array([1, 2, 3])), code('INVALID_INPUT'));
  });

  it('RSA-OAEP wrap uses SHA-256 and MGF1-SHA-256: openssl pkeyutl decrypts it with exactly those', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 3072 });
    const pemFile = join(dir, 'recipient.pem');
    writeFileSync(pemFile, p.exportPrivateKey(key), { mode: 0o600 });
    const dek = p.randomBytes(32);
    const wrapped = p.oaepEncrypt(key.publicKey, dek);
    const opts = [
      '-pkeyopt',
      'rsa_padding_mode:oaep',
      '-pkeyopt',
      'rsa_oaep_md:sha256',
      '-pkeyopt',
      'rsa_mgf1_md:sha256',
    ];
    const out = sh('openssl', ['pkeyutl', '-decrypt', '-inkey', pemFile, ...opts], wrapped);
    assert.deepEqual(new Uint8Array(out), dek);
    // And Node's SHA-1 default would not decrypt it: proves the hash is really not SHA-1.
    assert.throws(() =>
      sh('openssl', ['pkeyutl', '-decrypt', '-inkey', pemFile, '-pkeyopt', 'rsa_padding_mode:oaep'], wrapped),
    );
  });

  it('RSA-OAEP unwrap with the wrong key fails with AUTHENTICATION_FAILED', async () => {
    const a = await p.generateKey({ type: 'rsa', bits: 2048 });
    const b = await p.generateKey({ type: 'rsa', bits: 2048 });
    await assert.rejects(
      p.oaepDecrypt(b, p.oaepEncrypt(a.publicKey, p.randomBytes(32))),
      code('AUTHENTICATION_FAILED'),
    );
  });

  it('OAEP on an EC key is WRONG_KEY_TYPE', async () => {
    const ec = await p.generateKey({ type: 'ec', curve: 'P-384' });
    assert.throws(() => p.oaepEncrypt(ec.publicKey, new Uint8Array(32)), code('WRONG_KEY_TYPE'));
  });

  it('ECDSA P-384 signatures verify in OpenSSL (DER) and as raw r||s (P1363)', async () => {
    const key = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const msg = new TextEncoder().encode('checkpoint body');
    const der = await p.sign(key, msg, { scheme: 'ecdsa', encoding: 'der' });
    const pub = join(dir, 'p384.pub.pem');
    const sigFile = join(dir, 'p384.sig');
    writeFileSync(pub, key.publicKey.spkiPem());
    writeFileSync(sigFile, der);
    const ok = sh('openssl', ['dgst', '-sha384', '-verify', pub, '-signature', sigFile], msg).toString();
    assert.match(ok, /Verified OK/);
    const raw = await p.sign(key, msg, { scheme: 'ecdsa', encoding: 'p1363' });
    assert.equal(raw.length, 96);
    assert.ok(p.verify(key.publicKey, msg, raw, { scheme: 'ecdsa', encoding: 'p1363' }));
    const tampered = Uint8Array.from(msg);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    assert.equal(p.verify(key.publicKey, tampered, raw, { scheme: 'ecdsa', encoding: 'p1363' }), false);
    assert.equal(
      p.verify(key.publicKey, msg, raw.subarray(1), { scheme: 'ecdsa', encoding: 'p1363' }),
      false,
    );
  });

  it('private keys are exported as PBES2 (PBKDF2-HMAC-SHA-256, 600k iterations) + AES-256-CBC and load back', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 3072 });
    const pass = new TextEncoder().encode('correct horse battery staple');
    const pem = p.exportPrivateKey(key, pass);
    assert.match(pem, /BEGIN ENCRYPTED PRIVATE KEY/);
    const file = join(dir, 'enc.pem');
    writeFileSync(file, pem, { mode: 0o600 });
    const asn1 = sh('openssl', ['asn1parse', '-in', file]).toString();
    assert.match(asn1, /PBES2/);
    assert.match(asn1, /PBKDF2/);
    assert.match(asn1, /hmacWithSHA256/);
    assert.match(asn1, /aes-256-cbc/);
    // 600,000 iterations (0x0927c0) and a 16-byte salt, not OpenSSL's defaults of 2,048 and 8 bytes.
    assert.match(asn1, /INTEGER\s+:0927C0/);
    assert.match(asn1, /OCTET STRING\s+\[HEX DUMP\]:[0-9A-F]{32}\n/);
    // A real consumer reads it: the openssl CLI decrypts it with the passphrase.
    const clear = sh('openssl', [
      'pkey',
      '-in',
      file,
      '-passin',
      'pass:correct horse battery staple',
    ]).toString();
    assert.match(clear, /BEGIN PRIVATE KEY/);
    const loaded = await p.loadPrivateKey(`file:${file}`, pass);
    assert.deepEqual(loaded.publicKey.spkiDer(), key.publicKey.spkiDer());
    await assert.rejects(
      p.loadPrivateKey(`file:${file}`, new TextEncoder().encode('wrong')),
      code('KEY_REFERENCE', /wrong passphrase/),
    );
    await assert.rejects(
      p.loadPrivateKey(`file:${file}`),
      code('KEY_REFERENCE', /encrypted and no passphrase/),
    );
  });

  it('unusable key files give clear errors', async () => {
    await assert.rejects(
      p.loadPrivateKey(`file:${join(dir, 'missing.pem')}`),
      code('KEY_REFERENCE', /cannot read key file .*ENOENT/),
    );
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a key');
    await assert.rejects(p.loadPrivateKey(`file:${garbage}`), code('KEY_REFERENCE', /not a PEM private key/));
    const sshKey = join(dir, 'id_ecdsa256');
    await assert.rejects(p.loadPrivateKey(`file:${sshKey}`), code('UNSUPPORTED', /ssh-keygen -p -m PKCS8/));
    const legacy = join(dir, 'legacy.pem');
    writeFileSync(
      legacy,
      '-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n',
    );
    await assert.rejects(
      p.loadPrivateKey(`file:${legacy}`),
      code('UNSUPPORTED', /legacy PEM encryption \(MD5-based\)/),
    );
    await assert.rejects(
      p.loadPrivateKey('pkcs11:token=x;object=y'),
      code('KEY_REFERENCE', /provider: pkcs11/),
    );
    await assert.rejects(p.loadPrivateKey('/etc/key.pem'), code('KEY_REFERENCE', /must start with "file:"/));
  });

  it('AES-256-GCM: tampered ciphertext, AAD or tag releases nothing', () => {
    const params = { key: p.randomBytes(32), iv: p.randomBytes(12), aad: new Uint8Array([1, 2, 3]) };
    const sealed = p.aesGcmSeal(params, new TextEncoder().encode('ls -la /etc'));
    assert.equal(sealed.length, 11 + 16);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i] = (bad[i] ?? 0) ^ 0x80;
      assert.throws(() => p.aesGcmOpen(params, bad), code('AUTHENTICATION_FAILED'));
    }
    assert.throws(
      () => p.aesGcmOpen({ ...params, aad: new Uint8Array([1, 2, 4]) }, sealed),
      code('AUTHENTICATION_FAILED'),
    );
    assert.throws(() => p.aesGcmOpen(params, sealed.subarray(0, 10)), code('AUTHENTICATION_FAILED'));
  });

  it('AES-256-GCM can seal straight into a caller buffer, with the same bytes', () => {
    const params = { key: p.randomBytes(32), iv: p.randomBytes(12), aad: new Uint8Array([9]) };
    const msg = p.randomBytes(1000);
    const plain = p.aesGcmSeal(params, msg);
    const buffer = new Uint8Array(7 + 1016 + 3);
    const view = p.aesGcmSeal(params, msg, { buffer, offset: 7 });
    assert.deepEqual(new Uint8Array(view), new Uint8Array(plain));
    assert.equal(view.buffer, buffer.buffer);
    assert.deepEqual(buffer.subarray(0, 7), new Uint8Array(7));
    assert.throws(
      () => p.aesGcmSeal(params, msg, { buffer: new Uint8Array(1015), offset: 0 }),
      code('INVALID_INPUT'),
    );
  });

  it('digestParts is the digest of the joined parts, for small and large inputs', () => {
    const big = p.randomBytes(40_000);
    const cases: Uint8Array[][] = [
      [],
      [new Uint8Array(0)],
      [new Uint8Array([0]), p.randomBytes(100)],
      [new Uint8Array([0]), big.subarray(0, 39), new Uint8Array(0), big.subarray(39), p.randomBytes(16)],
      [big],
    ];
    for (const hash of ['sha256', 'sha384', 'sha512'] as const) {
      for (const parts of cases) {
        const want = p.digest(hash, new Uint8Array(Buffer.concat(parts)));
        assert.deepEqual(p.digestParts(hash, parts), want, `${hash} over ${parts.length} parts`);
      }
    }
    assert.throws(() => p.digestParts('md5' as 'sha256', [big]), CryptoError);
  });

  it('AES-256-GCM in parts: the joined output is aesGcmSeal of the joined plaintext, and opens', () => {
    const params = { key: p.randomBytes(32), iv: p.randomBytes(12), aad: new Uint8Array([7, 7]) };
    const data = p.randomBytes(33_000);
    for (const parts of [[data], [data.subarray(0, 4), data.subarray(4)], [new Uint8Array(0), data], []]) {
      const joined = new Uint8Array(Buffer.concat(parts));
      const out = p.aesGcmSealParts(params, parts);
      assert.equal(out.at(-1)?.length, 16, 'the tag comes last');
      const sealed = new Uint8Array(Buffer.concat(out));
      assert.deepEqual(sealed, p.aesGcmSeal(params, joined));
      assert.deepEqual(p.aesGcmOpen(params, sealed), joined);
    }
    assert.throws(
      () => p.aesGcmSealParts({ key: params.key, iv: new Uint8Array(8) }, [data]),
      code('POLICY_REFUSED'),
    );
  });

  it('the routing provider passes digestParts, sealing in parts and sealing into a buffer through', () => {
    const r = new RoutingProvider(p);
    const params = { key: p.randomBytes(32), iv: p.randomBytes(12) };
    const msg = p.randomBytes(5000);
    const buffer = new Uint8Array(3 + 5016);
    const view = r.aesGcmSeal(params, msg, { buffer, offset: 3 });
    assert.equal(view.buffer, buffer.buffer, 'sealed straight into the buffer');
    assert.deepEqual(new Uint8Array(Buffer.concat(r.aesGcmSealParts(params, [msg]))), new Uint8Array(view));
    assert.deepEqual(
      r.digestParts('sha256', [msg, msg]),
      p.digest('sha256', new Uint8Array(Buffer.concat([msg, msg]))),
    );
  });

  it('constant-time equal is false for different lengths and contents', () => {
    assert.equal(p.equal(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(p.equal(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(p.equal(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])), false);
  });

  it('key references: file paths and RFC 7512 URIs', () => {
    assert.deepEqual(parseKeyRef('file:/etc/sealgate/k.pem'), {
      scheme: 'file',
      path: '/etc/sealgate/k.pem',
      text: 'file:/etc/sealgate/k.pem',
    });
    const uri = parseKeyRef('pkcs11:token=sealgate;object=checkpoint%20signer;id=%01%02?pin-source=file:/x');
    assert.equal(uri.scheme, 'pkcs11');
    assert.deepEqual(uri.scheme === 'pkcs11' && uri.attributes, {
      token: 'sealgate',
      object: 'checkpoint signer',
      id: '\x01\x02',
    });
    assert.throws(() => parseKeyRef('file:'), code('KEY_REFERENCE'));
    assert.throws(() => parseKeyRef('pkcs11:token'), code('KEY_REFERENCE', /not attr=value/));
    assert.throws(() => parseKeyRef('pkcs11:object=%zz'), code('KEY_REFERENCE', /percent-encoding/));
  });
}
