/**
 * The policy's refusals, each in a FIPS-mode Node (this file runs only in the FIPS pass). Several of
 * these the OpenSSL FIPS provider itself would allow (X25519, Ed25519), which is the point of the layer.
 */
import assert from 'node:assert/strict';
// eslint-disable-next-line no-restricted-imports -- the test proves what raw OpenSSL allows under the provider
import { generateKeyPairSync, getFips } from 'node:crypto';
import { describe, it } from 'node:test';
import { CryptoError, OpenSslProvider, Policy, type PolicyRule } from '../../src/crypto/index.js';

const p = new OpenSslProvider();

/** Made with `openssl genrsa 1024 | openssl rsa -pubout` outside FIPS mode. */
const RSA_1024_PUBLIC = `-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDM7MkrXM8iQd/fpO2iIUqmWsHo
kowhxMRNae/XtBt0sSDGOSitrK7TCG4YNxeVoCWwU2njS56r6TBTgK4VItrwA9+3
gpbwrXsD8gxKUmY2aBAAA2hnH0aoNbBHzLrR58sZwpWHn8UEuHAh9anTFKlhhEU4
KreWlZTasWVlqrT0dwIDAQAB
-----END PUBLIC KEY-----
`;

function refusedBy(rule: PolicyRule) {
  return (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError, got ${String(e)}`);
    assert.equal(e.code, 'POLICY_REFUSED');
    assert.equal(e.rule, rule);
    assert.match(e.message, new RegExp(`\\[${rule.replace('.', '\\.')}\\]$`));
    return true;
  };
}

describe('policy refusals in FIPS mode', () => {
  it('runs in a FIPS-mode Node with the policy in FIPS mode', () => {
    assert.equal(getFips(), 1);
    assert.equal(p.policy.fips, true);
  });

  it('X25519: the provider would generate it; the policy refuses', async () => {
    assert.equal(generateKeyPairSync('x25519').publicKey.asymmetricKeyType, 'x25519');
    await assert.rejects(p.generateKey({ type: 'x25519' }), refusedBy('fips.no-x25519'));
    const pem = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => p.importPublicKey(pem), refusedBy('fips.no-x25519'));
  });

  it('Ed25519: the provider would generate it; the policy refuses generation, import and signing', async () => {
    const pair = generateKeyPairSync('ed25519');
    await assert.rejects(p.generateKey({ type: 'ed25519' }), refusedBy('fips.no-ed25519'));
    const pub = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => p.importPublicKey(pub), refusedBy('fips.no-ed25519'));
    const priv = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await assert.rejects(p.importPrivateKey(priv), refusedBy('fips.no-ed25519'));
    const line = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEGq0KcbHmI7wbbNsZ0cIVKlbzR5jlPhRKUYmSyLFRzZ test';
    assert.throws(() => p.importPublicKey(line), refusedBy('fips.no-ed25519'));
  });

  it('ChaCha20: refused wherever an SSH cipher is named', () => {
    const v = new Policy(true).sshAlgorithmViolations('ssh.client_leg', {
      cipher: ['chacha20-poly1305@openssh.com'],
    });
    assert.deepEqual(
      v.map((x) => [x.path, x.rule]),
      [['ssh.client_leg.cipher[0]', 'fips.no-chacha20']],
    );
  });

  it('MD5: the policy refuses it, and so does OpenSSL underneath', () => {
    assert.throws(() => p.digest('md5' as never, new Uint8Array(1)), refusedBy('fips.no-md5'));
    assert.throws(
      () => p.hmac('md5' as never, new Uint8Array(16), new Uint8Array(1)),
      refusedBy('fips.no-md5'),
    );
    const v = new Policy(true).sshAlgorithmViolations('ssh.upstream_leg', { hmac: ['hmac-md5'] });
    assert.equal(v[0]?.rule, 'fips.no-md5');
  });

  it('SHA-1 signatures: refused for verify and sign, and in SSH lists', async () => {
    const key = await p.generateKey({ type: 'ec', curve: 'P-256' });
    const scheme = { scheme: 'ecdsa', hash: 'sha1', encoding: 'der' } as never;
    assert.throws(
      () => p.verify(key.publicKey, new Uint8Array(1), new Uint8Array(64), scheme),
      refusedBy('fips.no-sha1-signatures'),
    );
    await assert.rejects(p.sign(key, new Uint8Array(1), scheme), refusedBy('fips.no-sha1-signatures'));
    const rsa = await p.generateKey({ type: 'rsa', bits: 2048 });
    await assert.rejects(
      p.sign(rsa, new Uint8Array(1), { scheme: 'rsa-pkcs1v15', hash: 'sha1' as never }),
      refusedBy('fips.no-sha1-signatures'),
    );
    const v = new Policy(true).sshAlgorithmViolations('ssh.client_leg', {
      serverHostKey: ['ssh-rsa'],
      kex: ['diffie-hellman-group14-sha1'],
    });
    assert.deepEqual(v.map((x) => x.rule).sort(), ['fips.no-sha1-signatures', 'fips.no-ssh-rsa']);
  });

  it('OAEP with SHA-1: refused for encrypt and decrypt (never Node’s SHA-1 default)', async () => {
    const rsa = await p.generateKey({ type: 'rsa', bits: 2048 });
    assert.throws(
      () => p.oaepEncrypt(rsa.publicKey, new Uint8Array(32), { hash: 'sha1' }),
      refusedBy('suite.oaep-sha256-only'),
    );
    await assert.rejects(
      p.oaepDecrypt(rsa, new Uint8Array(256), { hash: 'sha1' }),
      refusedBy('suite.oaep-sha256-only'),
    );
  });

  it('RSA below 2048 bits: refused for generation and import', async () => {
    await assert.rejects(
      p.generateKey({ type: 'rsa', bits: 1024 as never }),
      refusedBy('suite.rsa-min-2048'),
    );
    // A 1024-bit key made elsewhere (the FIPS provider would not make one) still cannot come in.
    assert.throws(() => p.importPublicKey(RSA_1024_PUBLIC), refusedBy('suite.rsa-min-2048'));
  });

  it('GCM with another IV or tag size: refused', () => {
    const key = new Uint8Array(32);
    assert.throws(
      () => p.aesGcmSeal({ key, iv: new Uint8Array(16) }, new Uint8Array(1)),
      refusedBy('suite.gcm-96-bit-iv'),
    );
    assert.throws(
      () => p.aesGcmSeal({ key, iv: new Uint8Array(8) }, new Uint8Array(1)),
      refusedBy('suite.gcm-96-bit-iv'),
    );
    assert.throws(
      () => p.aesGcmSeal({ key, iv: new Uint8Array(12), tagLength: 12 }, new Uint8Array(1)),
      refusedBy('suite.gcm-128-bit-tag'),
    );
    assert.throws(
      () => p.aesGcmOpen({ key, iv: new Uint8Array(12), tagLength: 8 }, new Uint8Array(24)),
      refusedBy('suite.gcm-128-bit-tag'),
    );
  });

  it('SSH lists: curve25519, Ed25519 host keys, group exchange and compression are refused', () => {
    const v = new Policy(true).sshAlgorithmViolations('ssh.client_leg', {
      kex: ['curve25519-sha256', 'diffie-hellman-group-exchange-sha256', 'ecdh-sha2-nistp256'],
      serverHostKey: ['ssh-ed25519'],
      compress: ['zlib@openssh.com'],
    });
    assert.deepEqual(
      v.map((x) => `${x.path}:${x.rule}`),
      [
        'ssh.client_leg.kex[0]:fips.no-x25519',
        'ssh.client_leg.kex[1]:fips.no-dh-group-exchange',
        'ssh.client_leg.serverHostKey[0]:fips.no-ed25519',
        'ssh.client_leg.compress[0]:fips.no-compression',
      ],
    );
  });

  it('approved CTR ciphers are refused in FIPS mode because this build cannot run them', () => {
    const v = new Policy(true).sshAlgorithmViolations('ssh.upstream_leg', { cipher: ['aes256-ctr'] });
    assert.equal(v.length, 1);
    assert.match(v[0]?.message ?? '', /ssh2 native binding cannot run AES-CTR/);
  });

  it('the default FIPS lists pass the policy', () => {
    const policy = new Policy(true);
    assert.deepEqual(policy.sshAlgorithmViolations('default', policy.defaultSshAlgorithms()), []);
  });
});
