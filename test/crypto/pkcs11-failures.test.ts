/**
 * What goes wrong with tokens, and what the operator reads: wrong PIN, missing token, missing key, wrong
 * key type, a missing mechanism, a wrong module path, a key destroyed under a running gate, a closed
 * backend. Each is a CryptoError with a code and a one-line message naming the token or the object.
 * Also: the session pool's repair of sessions and logins that disappear, and keys made by another tool
 * (pkcs11-tool) used through their URIs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createProvider,
  formatPkcs11Uri,
  OpenSslProvider,
  parsePkcs11Uri,
  RoutingProvider,
  type PrivateKey,
} from '../../src/crypto/index.js';
import { makeSoftHsm2, type TestToken } from '../tokens/tokens.js';
import { expectCode } from './pkcs11-contract.js';

const P384 = { scheme: 'ecdsa', encoding: 'der' } as const;
const msg = new TextEncoder().encode('a checkpoint\n');

describe('pkcs11 failures (SoftHSM2)', () => {
  let t: TestToken;
  let p: RoutingProvider;
  let signer: PrivateKey;
  let recipient: PrivateKey;
  const opened: RoutingProvider[] = [];

  async function provider(settings: TestToken['settings'] = t.settings): Promise<RoutingProvider> {
    const { provider: made } = await createProvider({ pkcs11: settings });
    opened.push(made);
    return made;
  }

  function pkcs11Tool(args: string[]): string {
    const pin = execFileSync('cat', [t.pinFile], { encoding: 'utf8' }).trim();
    return execFileSync(
      'pkcs11-tool',
      ['--module', t.module, '--token-label', 'sealgate', '--login', '--pin', pin, ...args],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }

  before(async () => {
    t = makeSoftHsm2(['sealgate', 'spare']);
    p = await provider();
    signer = await p.generateKeyAt(t.uri('signer'), { type: 'ec', curve: 'P-384' });
    recipient = await p.storeKeyAt(t.uri('recipient'), await p.generateKey({ type: 'rsa', bits: 3072 }));
  });
  after(() => {
    for (const made of opened) made.close();
  });

  it('wrong PIN: LOGIN_FAILED naming the token and the PIN source, and never tried twice', async () => {
    const wrong = join(t.dir, 'wrong.pin');
    writeFileSync(wrong, '000000\n', { mode: 0o600 });
    const q = await provider({ ...t.settings, pinFile: wrong });
    const refused = expectCode(
      'LOGIN_FAILED',
      new RegExp(
        `^token "spare" refused the PIN from file ${wrong}: wrong PIN \\(CKR_PIN_INCORRECT\\); sealgate will not try it again`,
      ),
    );
    const first = await q.loadPrivateKey(t.uri('anything', 'spare')).catch((e: unknown) => e);
    const second = await q.loadPrivateKey(t.uri('anything', 'spare')).catch((e: unknown) => e);
    assert.ok(refused(first) && refused(second));
    // The very same error object: the second attempt never reached C_Login.
    assert.equal(second, first);
  });

  it('PIN sources: a missing variable, an unreadable file, none at all', async () => {
    const noVar = await provider({ module: t.module, pinEnv: 'SEALGATE_TEST_NO_SUCH_PIN' });
    await assert.rejects(
      noVar.loadPrivateKey(t.uri('signer')),
      expectCode('INVALID_INPUT', /^PKCS#11 PIN: environment variable SEALGATE_TEST_NO_SUCH_PIN is not set$/),
    );
    const noFile = await provider({ module: t.module, pinFile: join(t.dir, 'absent.pin') });
    await assert.rejects(
      noFile.loadPrivateKey(t.uri('signer')),
      expectCode('INVALID_INPUT', /^PKCS#11 PIN: cannot read .*absent\.pin \(ENOENT\)$/),
    );
    const none = await provider({ module: t.module });
    await assert.rejects(
      none.loadPrivateKey(t.uri('signer')),
      expectCode('LOGIN_FAILED', /^token "sealgate" needs a PIN: set pkcs11.pin_file or pkcs11.pin_env/),
    );
    // Without a PIN the public key object can still be read.
    assert.deepEqual((await none.loadPublicKey(t.uri('signer'))).spkiDer(), signer.publicKey.spkiDer());
    // And a PIN from the environment works like one from a file.
    process.env.SEALGATE_TEST_TOKEN_PIN = execFileSync('cat', [t.pinFile], { encoding: 'utf8' }).trim();
    const fromEnv = await provider({ module: t.module, pinEnv: 'SEALGATE_TEST_TOKEN_PIN' });
    const key = await fromEnv.loadPrivateKey(t.uri('signer'));
    assert.ok(fromEnv.verify(key.publicKey, msg, await fromEnv.sign(key, msg, P384), P384));
  });

  it('a token that is not there: KEY_REFERENCE listing the tokens that are', async () => {
    await assert.rejects(
      p.loadPrivateKey('pkcs11:token=absent;object=signer'),
      expectCode(
        'KEY_REFERENCE',
        /^no token "absent" in PKCS#11 module .*libsofthsm2\.so \(tokens present: "sealgate", "spare"\)$/,
      ),
    );
  });

  it('a key that is not there: KEY_REFERENCE naming the token and the object', async () => {
    await assert.rejects(
      p.loadPrivateKey(t.uri('missing')),
      expectCode(
        'KEY_REFERENCE',
        /^token "sealgate" has no private key object="missing" \[pkcs11:token=sealgate;object=missing\]$/,
      ),
    );
  });

  it('wrong key types: an EC key for OAEP, an RSA key for ECDSA', async () => {
    await assert.rejects(
      p.oaepDecrypt(signer, new Uint8Array(384)),
      expectCode(
        'WRONG_KEY_TYPE',
        /^RSA-OAEP needs an RSA key; pkcs11:token=sealgate;object=signer;id=%[0-9a-f%]+ is an EC P-384 key$/,
      ),
    );
    await assert.rejects(
      p.sign(recipient, msg, P384),
      expectCode(
        'POLICY_REFUSED',
        /^pkcs11:token=sealgate;object=recipient;id=\S+ is an RSA-3072 key; it cannot make ecdsa signatures \[suite\.approved-key-type\]$/,
      ),
    );
    // The key was made for decryption only: CKA_SIGN is false, so RSA signing is refused by the token's
    // own attributes, before any mechanism is tried.
    await assert.rejects(
      p.sign(recipient, msg, { scheme: 'rsa-pss', hash: 'sha256', saltLength: 32 }),
      expectCode('WRONG_KEY_TYPE', /may not sign \(its CKA_SIGN is false\)$/),
    );
  });

  it('a mechanism the token lacks: UNSUPPORTED "mechanism not supported by this token"', async () => {
    await assert.rejects(
      p.oaepDecrypt(recipient, p.oaepEncrypt(recipient.publicKey, new Uint8Array(32))),
      expectCode('UNSUPPORTED', /^mechanism not supported by this token: RSA-OAEP with SHA-256 /),
    );
  });

  it('a module path that is wrong: BACKEND at start-up, naming the path', async () => {
    await assert.rejects(
      createProvider({ pkcs11: { module: '/nonexistent/libnothing.so', pinFile: t.pinFile } }),
      expectCode(
        'BACKEND',
        /^cannot load PKCS#11 module \/nonexistent\/libnothing\.so: cannot open shared object file: No such file or directory/,
      ),
    );
    // Not a PKCS#11 module at all.
    await assert.rejects(
      createProvider({ pkcs11: { module: '/usr/lib/x86_64-linux-gnu/libc.so.6', pinFile: t.pinFile } }),
      expectCode('BACKEND', /^cannot load PKCS#11 module \/usr\/lib\/x86_64-linux-gnu\/libc\.so\.6/),
    );
    // No module configured at all, for a pkcs11: key.
    const software = new RoutingProvider(new OpenSslProvider());
    await assert.rejects(
      software.loadPrivateKey(t.uri('signer')),
      expectCode('KEY_REFERENCE', /is a token key, but no PKCS#11 module is configured/),
    );
  });

  it('key references that do not say enough (or say a PIN) are refused before the token is asked', async () => {
    const bad: [string, RegExp][] = [
      ['pkcs11:object=signer', /names no token; add token=<label>/],
      ['pkcs11:token=sealgate', /names no key; add object=<label>/],
      [
        'pkcs11:token=sealgate;object=signer?pin-value=1234',
        /query attributes \(pin-value\) are not accepted/,
      ],
      ['pkcs11:token=sealgate;object=signer;x-vendor=1', /unsupported attribute\(s\) x-vendor/],
      ['pkcs11:token=sealgate;object=signer;type=cert', /type=cert is not a key type/],
      ['pkcs11:token=sealgate;object=signer;type=public', /names a public key \(type=public\)/],
    ];
    for (const [ref, text] of bad)
      await assert.rejects(p.loadPrivateKey(ref), expectCode('KEY_REFERENCE', text));
  });

  it('URIs: binary ids (any byte) and labels with spaces and semicolons round-trip', () => {
    const id = new Uint8Array([0x00, 0x7f, 0x80, 0xa0, 0xff]);
    const text = formatPkcs11Uri({ token: 'NSS Certificate DB', object: 'a;b c/é', id, type: 'private' });
    assert.equal(
      text,
      'pkcs11:token=NSS%20Certificate%20DB;object=a%3bb%20c%2f%c3%a9;id=%00%7f%80%a0%ff;type=private',
    );
    const uri = parsePkcs11Uri(text);
    assert.equal(uri.token.token, 'NSS Certificate DB');
    assert.equal(uri.object, 'a;b c/é');
    assert.deepEqual(uri.id, id);
    assert.equal(uri.type, 'private');
  });

  it('a new key never replaces an old one of the same name', async () => {
    await assert.rejects(
      p.generateKeyAt(t.uri('signer'), { type: 'ec', curve: 'P-384' }),
      expectCode(
        'KEY_REFERENCE',
        /^token "sealgate" already holds a private key object="signer"; choose another label/,
      ),
    );
  });

  it('token keys do not leave the token, and Ed25519 is not a token key type here', async () => {
    assert.throws(() => p.exportPrivateKey(signer), expectCode('UNSUPPORTED', /cannot be exported/));
    await assert.rejects(
      p.generateKeyAt(t.uri('ed'), { type: 'ed25519' }),
      expectCode('UNSUPPORTED', /makes EC P-256\/P-384 and RSA keys, not ed25519/),
    );
  });

  it('keys made by pkcs11-tool are used by URI; two with one label need the id', async () => {
    pkcs11Tool(['--keypairgen', '--key-type', 'EC:secp384r1', '--label', 'dup', '--id', '01']);
    pkcs11Tool(['--keypairgen', '--key-type', 'EC:secp384r1', '--label', 'dup', '--id', '02']);
    await assert.rejects(
      p.loadPrivateKey(t.uri('dup')),
      expectCode('KEY_REFERENCE', /^2 private keys in token "sealgate" match object="dup"; add id=… to /),
    );
    const one = await p.loadPrivateKey('pkcs11:token=sealgate;object=dup;id=%01');
    const two = await p.loadPrivateKey('pkcs11:token=sealgate;id=%02');
    assert.notDeepEqual(one.publicKey.spkiDer(), two.publicKey.spkiDer());
    assert.ok(p.verify(one.publicKey, msg, await p.sign(one, msg, P384), P384));
  });

  it('a key destroyed under a running gate: the next signature fails with KEY_REFERENCE', async () => {
    const doomed = await p.generateKeyAt(t.uri('doomed'), { type: 'ec', curve: 'P-384' });
    assert.ok(p.verify(doomed.publicKey, msg, await p.sign(doomed, msg, P384), P384));
    pkcs11Tool(['--delete-object', '--type', 'privkey', '--label', 'doomed']);
    await assert.rejects(
      p.sign(doomed, msg, P384),
      expectCode(
        'KEY_REFERENCE',
        /^pkcs11:token=sealgate;object=doomed;id=\S+ no longer exists in token "sealgate"/,
      ),
    );
  });

  it('sessions and logins that vanish (closed by another user of the module) are repaired once', async () => {
    const a = await provider();
    const b = await provider();
    const key = await a.loadPrivateKey(t.uri('signer'));
    assert.ok(a.verify(key.publicKey, msg, await a.sign(key, msg, P384), P384));
    await b.loadPrivateKey(t.uri('signer'));
    // C_CloseAllSessions from b ends a's sessions too, and with the last session the login: a's next
    // operation meets CKR_SESSION_HANDLE_INVALID, opens a session, logs in again, and succeeds.
    b.resetTokens();
    assert.ok(a.verify(key.publicKey, msg, await a.sign(key, msg, P384), P384));
    // Many at once, more than the pool's four sessions.
    const sigs = await Promise.all(Array.from({ length: 12 }, () => a.sign(key, msg, P384)));
    for (const s of sigs) assert.ok(a.verify(key.publicKey, msg, s, P384));
  });

  it('after close, token operations fail with BACKEND "closed"; software operations go on', async () => {
    const c = await provider();
    const key = await c.loadPrivateKey(t.uri('signer'));
    c.close();
    await assert.rejects(
      c.sign(key, msg, P384),
      expectCode('BACKEND', /^the PKCS#11 backend for .*libsofthsm2\.so is closed$/),
    );
    await assert.rejects(c.loadPrivateKey(t.uri('signer')), expectCode('BACKEND', /is closed$/));
    assert.equal(c.digest('sha256', msg).length, 32);
    // Other users of the same module are not affected by one closing.
    assert.ok(p.verify(signer.publicKey, msg, await p.sign(signer, msg, P384), P384));
  });
});
