/**
 * Start-up known-answer tests (KATs) of every operation sealgate uses, run through the provider so the
 * backend that will do the work is the one tested. Randomised operations (ECDSA signing, RSA-OAEP
 * encryption) get a pairwise-consistency test after a KAT of their deterministic half.
 */
import { CryptoError } from './errors.js';
import type { CryptoProvider } from './provider.js';
import * as V from './selftest-vectors.js';

export interface SelfTestResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

type Check = [name: string, run: (p: CryptoProvider) => Promise<string> | string];

function expectEqual(
  p: CryptoProvider,
  got: Uint8Array,
  want: Uint8Array,
  what: string,
  ok = 'known answer matches',
): string {
  if (!p.equal(got, want))
    throw new Error(`${what}: got ${toHex(got).slice(0, 32)}…, want ${toHex(want).slice(0, 32)}…`);
  return ok;
}

function expectRefused(run: () => unknown, rule: string): string {
  try {
    run();
  } catch (err) {
    if (err instanceof CryptoError && err.rule === rule) return `refused [${rule}]`;
    throw new Error(`expected refusal by ${rule}, got ${(err as Error).message}`);
  }
  throw new Error(`expected refusal by ${rule}, but the operation succeeded`);
}

async function expectRefusedAsync(run: () => Promise<unknown>, rule: string): Promise<string> {
  try {
    await run();
  } catch (err) {
    return expectRefused(() => {
      throw err;
    }, rule);
  }
  throw new Error(`expected refusal by ${rule}, but the operation succeeded`);
}

const CHECKS: Check[] = [
  ['SHA-256', (p) => expectEqual(p, p.digest('sha256', utf8('abc')), hex(V.SHA_ABC.sha256), 'SHA-256')],
  ['SHA-384', (p) => expectEqual(p, p.digest('sha384', utf8('abc')), hex(V.SHA_ABC.sha384), 'SHA-384')],
  ['SHA-512', (p) => expectEqual(p, p.digest('sha512', utf8('abc')), hex(V.SHA_ABC.sha512), 'SHA-512')],
  [
    'HMAC-SHA-256',
    (p) => {
      const v = V.HMAC_SHA256_RFC4231_2;
      return expectEqual(p, p.hmac('sha256', hex(v.key), hex(v.data)), hex(v.mac), 'HMAC-SHA-256');
    },
  ],
  [
    'HKDF-SHA-512',
    (p) => {
      const v = V.HKDF_SHA512;
      return expectEqual(
        p,
        p.hkdf('sha512', hex(v.ikm), hex(v.salt), hex(v.info), v.size),
        hex(v.okm),
        'HKDF',
      );
    },
  ],
  [
    'AES-256-GCM seal',
    (p) => {
      const v = V.AES_256_GCM;
      const sealed = p.aesGcmSeal({ key: hex(v.key), iv: hex(v.iv), aad: hex(v.aad) }, hex(v.msg));
      return expectEqual(p, sealed, hex(v.ct + v.tag), 'AES-256-GCM seal');
    },
  ],
  [
    'AES-256-GCM open',
    (p) => {
      const v = V.AES_256_GCM;
      const params = { key: hex(v.key), iv: hex(v.iv), aad: hex(v.aad) };
      const opened = p.aesGcmOpen(params, hex(v.ct + v.tag));
      expectEqual(p, opened, hex(v.msg), 'AES-256-GCM open');
      const tampered = hex(v.ct + v.tag);
      tampered[0] = (tampered[0] ?? 0) ^ 1;
      try {
        p.aesGcmOpen(params, tampered);
      } catch (err) {
        if (err instanceof CryptoError && err.code === 'AUTHENTICATION_FAILED')
          return 'known answer; bad tag refused';
      }
      throw new Error('AES-256-GCM accepted a tampered ciphertext');
    },
  ],
  [
    'RSA-OAEP-SHA-256 decrypt',
    async (p) => {
      const v = V.RSA_OAEP_2048_SHA256;
      const pem = pkcs8Pem(v.privateKeyPkcs8);
      const key = await p.importPrivateKey(pem);
      return expectEqual(p, await p.oaepDecrypt(key, hex(v.ct)), hex(v.msg), 'RSA-OAEP decrypt');
    },
  ],
  [
    'RSA-OAEP-SHA-256 encrypt (pairwise)',
    async (p) => {
      const key = await p.importPrivateKey(pkcs8Pem(V.RSA_OAEP_2048_SHA256.privateKeyPkcs8));
      const dek = p.randomBytes(32);
      return expectEqual(
        p,
        await p.oaepDecrypt(key, p.oaepEncrypt(key.publicKey, dek)),
        dek,
        'OAEP round trip',
        'round trip consistent',
      );
    },
  ],
  ['ECDSA P-256 verify', (p) => ecdsaVerifyKat(p, V.ECDSA_P256_SHA256)],
  ['ECDSA P-384 verify', (p) => ecdsaVerifyKat(p, V.ECDSA_P384_SHA384)],
  [
    'ECDSA P-384 sign (pairwise)',
    async (p) => {
      const key = await p.generateKey({ type: 'ec', curve: 'P-384' });
      const msg = utf8('sealgate self-test');
      const sig = await p.sign(key, msg, { scheme: 'ecdsa', encoding: 'p1363' });
      if (!p.verify(key.publicKey, msg, sig, { scheme: 'ecdsa', encoding: 'p1363' })) {
        throw new Error('a fresh P-384 signature does not verify');
      }
      return 'sign/verify consistent';
    },
  ],
  [
    'RSA-PSS-SHA-256 verify',
    (p) => {
      const v = V.RSA_PSS_3072_SHA256;
      const key = p.importPublicKey(hex(v.publicKeyDer));
      const scheme = { scheme: 'rsa-pss', hash: 'sha256', saltLength: v.saltLength } as const;
      if (!p.verify(key, hex(v.msg), hex(v.sig), scheme))
        throw new Error('known-good RSA-PSS signature rejected');
      return 'known answer verifies';
    },
  ],
  [
    'Random bytes',
    (p) =>
      new Set([toHex(p.randomBytes(32)), toHex(p.randomBytes(32))]).size === 2 ? 'distinct' : fail('repeat'),
  ],
];

/** Policy checks that only apply in FIPS mode: the OpenSSL FIPS provider would allow these. */
const FIPS_POLICY_CHECKS: Check[] = [
  [
    'Policy refuses Ed25519',
    (p) => expectRefusedAsync(() => p.generateKey({ type: 'ed25519' }), 'fips.no-ed25519'),
  ],
  [
    'Policy refuses X25519',
    (p) => expectRefusedAsync(() => p.generateKey({ type: 'x25519' }), 'fips.no-x25519'),
  ],
];

function fail(why: string): never {
  throw new Error(why);
}

function ecdsaVerifyKat(p: CryptoProvider, v: { publicKeyDer: string; msg: string; sig: string }): string {
  const key = p.importPublicKey(hex(v.publicKeyDer));
  if (!p.verify(key, hex(v.msg), hex(v.sig), { scheme: 'ecdsa', encoding: 'der' })) {
    throw new Error('known-good ECDSA signature rejected');
  }
  const bad = hex(v.sig);
  bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
  if (p.verify(key, hex(v.msg), bad, { scheme: 'ecdsa', encoding: 'der' }))
    throw new Error('altered signature accepted');
  return 'known answer verifies; altered one fails';
}

function pkcs8Pem(derHex: string): string {
  const b64 = Buffer.from(derHex, 'hex')
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

export async function runSelfTests(p: CryptoProvider): Promise<SelfTestResult[]> {
  const checks = p.policy.fips ? [...CHECKS, ...FIPS_POLICY_CHECKS] : CHECKS;
  const results: SelfTestResult[] = [];
  for (const [name, run] of checks) {
    try {
      results.push({ name, ok: true, detail: await run(p) });
    } catch (err) {
      results.push({ name, ok: false, detail: (err as Error).message });
    }
  }
  return results;
}
