/**
 * The gate's pure parts: routing, known_hosts, SSH wire encoding, algorithm lists, the publickey
 * decision, the provider agent's signatures, and the config's `recording.origin`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import type { Config } from '../../src/config/schema.js';
import { OpenSslProvider, Policy, type PrivateKey } from '../../src/crypto/index.js';
import { legAlgorithms, pinnedHostKeyAlgorithms } from '../../src/ssh/algorithms.js';
import { AllowList, decidePublicKey, fingerprint } from '../../src/ssh/auth.js';
import { knownHostsName, matchesHost, parseKnownHosts, pinnedKeys } from '../../src/ssh/known-hosts.js';
import { ProviderAgent } from '../../src/ssh/provider-agent.js';
import { route, splitLogin } from '../../src/ssh/routing.js';
import { blobKeyType, ecdsaSignatureBody, readSshString, sshMpint, sshString } from '../../src/ssh/wire.js';

const p = new OpenSslProvider();
const blobOf = (key: PrivateKey) =>
  new Uint8Array(Buffer.from(key.publicKey.openssh().split(' ')[1]!, 'base64'));

function config(): Config {
  return validateConfig(
    {
      listen: { host_key: 'file:/k' },
      targets: [
        { name: 'web1', host: '10.0.0.1', known_hosts: '/kh/web1' },
        { name: 'db1', host: '10.0.0.2', port: 2200, user: 'postgres', known_hosts: '/kh/db1' },
      ],
      users: [
        { name: 'ops', authorized_keys: ['ecdsa-sha2-nistp256 AAAA ops'], targets: ['*'] },
        { name: 'dev', authorized_keys: ['ecdsa-sha2-nistp256 AAAA dev'], targets: ['web1'] },
      ],
      upstream: { client_key: 'file:/u' },
      recording: { store: '/s', recipients: ['file:/r'], checkpoint_signer: 'file:/c' },
    },
    { source: 'test' },
  );
}

describe('routing', () => {
  const c = config();
  it('splits user+target at the first +', () => {
    assert.deepEqual(splitLogin('ops+web1'), { userName: 'ops', targetName: 'web1' });
    assert.deepEqual(splitLogin('ops'), { userName: 'ops' });
    assert.deepEqual(splitLogin('ops+a+b'), { userName: 'ops', targetName: 'a+b' });
  });
  it('routes user+target, with the remote user from the target or the gate user', () => {
    const a = route(c, 'ops+db1');
    assert.ok(a.ok);
    assert.equal(a.route.target.name, 'db1');
    assert.equal(a.route.remoteUser, 'postgres');
    const b = route(c, 'dev+web1');
    assert.ok(b.ok);
    assert.equal(b.route.remoteUser, 'dev');
  });
  it('routes a plain user to their only target, and asks for one when there are several', () => {
    const a = route(c, 'dev');
    assert.ok(a.ok);
    assert.equal(a.route.target.name, 'web1');
    const b = route(c, 'ops');
    assert.ok(!b.ok);
    assert.equal(b.refusal.code, 'TARGET_REQUIRED');
    assert.match(b.refusal.message, /log in as ops\+TARGET \(one of: web1, db1\)/);
    assert.equal(b.user?.name, 'ops');
  });
  it('refuses unknown targets, denied targets and unknown users with a message for the user', () => {
    const unknown = route(c, 'ops+web9');
    assert.ok(!unknown.ok);
    assert.deepEqual(unknown.refusal, { code: 'UNKNOWN_TARGET', message: 'unknown target web9' });
    const denied = route(c, 'dev+db1');
    assert.ok(!denied.ok);
    assert.deepEqual(denied.refusal, { code: 'TARGET_DENIED', message: 'user dev may not reach db1' });
    assert.equal(denied.user?.name, 'dev');
    const stranger = route(c, 'eve+web1');
    assert.ok(!stranger.ok);
    assert.equal(stranger.refusal.code, 'UNKNOWN_USER');
    assert.equal(stranger.user, undefined);
  });
  it('escapes control characters in names it echoes', () => {
    const r = route(c, 'ops+we\x1b[2Jb');
    assert.ok(!r.ok);
    assert.equal(r.refusal.message, 'unknown target we\\x1b[2Jb');
  });
});

describe('known_hosts', () => {
  const ecdsa = 'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEQIbWEx'; // truncated: type check only
  it('names non-standard ports [host]:port', () => {
    assert.equal(knownHostsName('10.0.0.1', 22), '10.0.0.1');
    assert.equal(knownHostsName('10.0.0.1', 2200), '[10.0.0.1]:2200');
  });
  it('matches patterns with wildcards and negation, case-insensitively', () => {
    assert.ok(matchesHost(['web*.example.com'], 'web1.example.com'));
    assert.ok(matchesHost(['WEB1.example.com'], 'web1.example.com'));
    assert.ok(!matchesHost(['web*.example.com', '!web2.example.com'], 'web2.example.com'));
    assert.ok(matchesHost(['[10.0.0.?]:2200'], '[10.0.0.5]:2200'));
    assert.ok(!matchesHost(['10.0.0.5'], '[10.0.0.5]:2200'));
  });
  it('pins keys by host and port, keeps revoked keys apart, and reports what it cannot use', async () => {
    const k1 = await p.generateKey({ type: 'ec', curve: 'P-256' });
    const k2 = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const line = (k: PrivateKey) => k.publicKey.openssh();
    const text = [
      '# comment',
      `[127.0.0.1]:2200 ${line(k1)}`,
      `other.host ${line(k2)}`,
      `@revoked * ${line(k2)}`,
      `|1|abc=|def= ${line(k1)}`,
      `@cert-authority *.example ${line(k1)}`,
      `host ecdsa-sha2-nistp384 ${line(k1).split(' ')[1]}`,
      `host ssh-ed25519 ${ecdsa}!`,
      '',
    ].join('\n');
    const known = parseKnownHosts(text);
    const { pinned, revoked } = pinnedKeys(known, '127.0.0.1', 2200);
    assert.equal(pinned.length, 1);
    assert.deepEqual(pinned[0]?.blob, blobOf(k1));
    assert.equal(pinned[0]?.keyType, 'ecdsa-sha2-nistp256');
    assert.equal(revoked.length, 1);
    assert.deepEqual(
      known.problems.map((x) => x.line),
      [5, 6, 7, 8],
    );
    assert.match(known.problems[0]!.message, /hashed host names are not supported/);
    assert.match(known.problems[2]!.message, /the line says ecdsa-sha2-nistp384/);
    assert.equal(pinnedKeys(known, '127.0.0.1', 22).pinned.length, 0);
  });
});

describe('SSH wire encoding', () => {
  it('writes strings and minimal mpints (RFC 4251 §5 examples)', () => {
    assert.equal(sshString('abc').toString('hex'), '00000003616263');
    assert.equal(sshMpint(new Uint8Array([0])).toString('hex'), '00000000');
    assert.equal(
      sshMpint(Buffer.from('0009a378f9b2e332a7', 'hex')).toString('hex'),
      '0000000809a378f9b2e332a7',
    );
    assert.equal(sshMpint(Buffer.from('80', 'hex')).toString('hex'), '000000020080');
  });
  it('reads strings and key types, refusing truncated input', () => {
    const blob = Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256')]);
    assert.equal(blobKeyType(blob), 'ecdsa-sha2-nistp256');
    assert.equal(readSshString(blob.subarray(0, 10)), undefined);
    assert.equal(blobKeyType(new Uint8Array([0, 0, 0, 1, 0x0a])), undefined);
  });
  it('turns a P1363 ECDSA signature into mpint r || mpint s', () => {
    const r = Buffer.alloc(32, 0x80);
    const s = Buffer.concat([Buffer.alloc(1), Buffer.alloc(31, 0x01)]);
    const body = ecdsaSignatureBody(Buffer.concat([r, s]));
    assert.equal(body.toString('hex'), `00000021${'00'}${r.toString('hex')}0000001f${'01'.repeat(31)}`);
    assert.throws(() => ecdsaSignatureBody(new Uint8Array(3)), RangeError);
  });
});

describe('algorithm lists', () => {
  it('are the policy defaults, with config lists laid over them', () => {
    const c = config();
    c.ssh = { upstream_leg: { cipher: ['aes256-gcm@openssh.com'] } };
    const fips = new Policy(true);
    const up = legAlgorithms(fips, c, 'upstream_leg');
    assert.deepEqual(up.cipher, ['aes256-gcm@openssh.com']);
    assert.deepEqual(up.kex, fips.defaultSshAlgorithms().kex);
    const client = legAlgorithms(fips, c, 'client_leg');
    assert.deepEqual(client, fips.defaultSshAlgorithms());
    assert.ok(!client.kex.some((k) => k.includes('curve25519')));
    assert.ok(!client.cipher.some((k) => k.includes('chacha20')));
  });
  it('narrow upstream host key algorithms to the pinned key types', () => {
    const allowed = new Policy(false).defaultSshAlgorithms().serverHostKey;
    assert.deepEqual(pinnedHostKeyAlgorithms(allowed, ['ecdsa-sha2-nistp256']), ['ecdsa-sha2-nistp256']);
    assert.deepEqual(pinnedHostKeyAlgorithms(allowed, ['ssh-rsa']), ['rsa-sha2-512', 'rsa-sha2-256']);
    assert.deepEqual(
      pinnedHostKeyAlgorithms(new Policy(true).defaultSshAlgorithms().serverHostKey, ['ssh-ed25519']),
      [],
    );
  });
});

describe('publickey decision', () => {
  it('answers a query with key-ok, accepts only a verified signature, and refuses the rest', async () => {
    const key = await p.generateKey({ type: 'ec', curve: 'P-256' });
    const other = await p.generateKey({ type: 'ec', curve: 'P-256' });
    const list = AllowList.load(p, [
      { name: 'ops', authorized_keys: [key.publicKey.openssh('ops')], targets: ['*'] },
    ]);
    assert.deepEqual(list.problems, []);
    const keys = list.keysFor('ops');
    const blob = blobOf(key);
    const data = new TextEncoder().encode('session id || userauth request');
    const sig = await p.sign(key, data, { scheme: 'ecdsa', encoding: 'der' });
    const algo = 'ecdsa-sha2-nistp256';

    assert.equal(decidePublicKey(p, keys, { algo, blob }).kind, 'key-ok');
    assert.equal(decidePublicKey(p, keys, { algo, blob, signature: sig, signedData: data }).kind, 'accept');
    const tampered = decidePublicKey(p, keys, {
      algo,
      blob,
      signature: sig,
      signedData: new Uint8Array([1, 2]),
    });
    assert.deepEqual(tampered, {
      kind: 'reject',
      reason: 'signature does not verify',
      fingerprint: fingerprint(p, blob),
    });
    const stranger = decidePublicKey(p, keys, { algo, blob: blobOf(other) });
    assert.equal(stranger.kind, 'reject');
    const wrongAlgo = decidePublicKey(p, keys, {
      algo: 'ecdsa-sha2-nistp384',
      blob,
      signature: sig,
      signedData: data,
    });
    assert.equal(wrongAlgo.kind, 'reject');
    assert.equal(decidePublicKey(p, [], { algo, blob }).kind, 'reject');
  });

  it('refuses ssh-rsa (SHA-1) signatures and accepts rsa-sha2-256', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 2048 });
    const keys = AllowList.load(p, [
      { name: 'ops', authorized_keys: [key.publicKey.openssh()], targets: ['*'] },
    ]).keysFor('ops');
    const blob = blobOf(key);
    const data = new TextEncoder().encode('signed');
    const sig = await p.sign(key, data, { scheme: 'rsa-pkcs1v15', hash: 'sha256' });
    const sha1 = decidePublicKey(p, keys, { algo: 'ssh-rsa', blob, signature: sig, signedData: data });
    assert.equal(sha1.kind, 'reject');
    assert.match(sha1.kind === 'reject' ? sha1.reason : '', /SHA-1/);
    assert.equal(
      decidePublicKey(p, keys, {
        algo: 'ssh-rsa',
        blob,
        signature: sig,
        signedData: data,
        hashAlgo: 'sha256',
      }).kind,
      'accept',
    );
    assert.equal(
      decidePublicKey(p, keys, {
        algo: 'ssh-rsa',
        blob,
        signature: sig,
        signedData: data,
        hashAlgo: 'sha512',
      }).kind,
      'reject',
    );
  });

  it('skips authorized_keys lines it cannot honour, and says why', async () => {
    const key = await p.generateKey({ type: 'ec', curve: 'P-256' });
    const small = await p.generateKey({ type: 'ed25519' });
    const list = AllowList.load(p, [
      {
        name: 'ops',
        authorized_keys: [
          `from="10.0.0.1" ${key.publicKey.openssh()}`,
          small.publicKey.openssh(),
          'ssh-rsa AAAA',
        ],
        targets: ['*'],
      },
    ]);
    assert.equal(list.keysFor('ops').length, 1); // Ed25519 is fine in normal mode
    assert.equal(list.problems.length, 2);
    assert.match(list.problems[0]!.message, /options .* are not supported/);
    assert.equal(list.problems[0]!.source, 'users[0].authorized_keys[0]');
  });
});

describe('provider agent', () => {
  it('signs with the provider: ECDSA as mpint r || mpint s that verifies', async () => {
    const key = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const agent = new ProviderAgent(p, key);
    const ids = await new Promise<unknown[]>((resolve, reject) =>
      agent.getIdentities((e, k) => (e ? reject(e) : resolve(k ?? []))),
    );
    assert.deepEqual(ids, [key.publicKey.openssh('sealgate-upstream')]);
    const data = Buffer.from('to be signed');
    const body = await new Promise<Buffer>((resolve, reject) =>
      agent.sign(ids[0] as string, data, {}, (e, s) => (e || !s ? reject(e) : resolve(s))),
    );
    const r = readSshString(body)!;
    const s = readSshString(body, r.next)!;
    assert.equal(s.next, body.length);
    const fixed = (v: Uint8Array) => Buffer.concat([Buffer.alloc(48), v]).subarray(-48);
    const p1363 = Buffer.concat([fixed(r.value), fixed(s.value)]);
    assert.ok(p.verify(key.publicKey, data, p1363, { scheme: 'ecdsa', encoding: 'p1363' }));
  });

  it('signs RSA with SHA-256 or SHA-512 as asked, and never with SHA-1', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 2048 });
    const agent = new ProviderAgent(p, key);
    const data = Buffer.from('to be signed');
    const sign = (hash?: 'sha1' | 'sha256' | 'sha512') =>
      new Promise<Buffer>((resolve, reject) =>
        agent.sign(agent.publicKeyLine, data, hash ? { hash } : {}, (e, s) =>
          e || !s ? reject(e) : resolve(s),
        ),
      );
    assert.ok(
      p.verify(key.publicKey, data, await sign('sha256'), { scheme: 'rsa-pkcs1v15', hash: 'sha256' }),
    );
    assert.ok(
      p.verify(key.publicKey, data, await sign('sha512'), { scheme: 'rsa-pkcs1v15', hash: 'sha512' }),
    );
    await assert.rejects(sign('sha1'), /SHA-1/);
    await assert.rejects(sign(), /SHA-1/);
  });
});

describe('config: recording.origin', () => {
  const base = () => ({
    listen: { host_key: 'file:/k' },
    targets: [{ name: 'web1', host: '10.0.0.1', known_hosts: '/kh' }],
    users: [{ name: 'ops', authorized_keys: ['ecdsa-sha2-nistp256 AAAA'], targets: ['*'] }],
    upstream: { client_key: 'file:/u' },
    recording: { store: '/s', recipients: ['file:/r'], checkpoint_signer: 'file:/c' } as Record<
      string,
      unknown
    >,
  });
  it('is optional, with no default in the schema', () => {
    assert.equal(validateConfig(base(), { source: 't' }).recording.origin, undefined);
    const c = base();
    c.recording.origin = 'gate.example.com/sealgate';
    assert.equal(validateConfig(c, { source: 't' }).recording.origin, 'gate.example.com/sealgate');
  });
  it('refuses white space, + and control characters (a signed-note key name)', () => {
    for (const bad of ['a b', 'a+b', 'a\tb', 'a\u0085b', '']) {
      const c = base();
      c.recording.origin = bad;
      assert.throws(
        () => validateConfig(c, { source: 't' }),
        (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'recording.origin'),
        JSON.stringify(bad),
      );
    }
  });
});
