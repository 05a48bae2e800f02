/**
 * The `openssl` backend: Node's crypto on OpenSSL 3 (with the OpenSSL FIPS provider in FIPS mode).
 * Every operation asks the policy first, so a refusal names the rule rather than surfacing as an
 * OpenSSL error string.
 */
import {
  constants,
  createCipheriv,
  createHash,
  createDecipheriv,
  hash as oneShotHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  getFips,
  hkdfSync,
  publicEncrypt,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CryptoError } from '../errors.js';
import { parseKeyRef } from '../keyref.js';
import { parseOpenSshLine } from '../openssh-key.js';
import { hashForCurve, Policy, SEAL_SUITE_1 } from '../policy.js';
import type {
  AeadParams,
  CryptoProvider,
  HashAlg,
  KeySpec,
  OaepParams,
  PrivateKey,
  ProviderInfo,
  PublicKey,
  SignatureScheme,
} from '../provider.js';
import { encryptPkcs8 } from './pbes2.js';
import { describeKey, makePrivateKey, OpenSslPublicKey, privateKeyObject, publicKeyObject } from './keys.js';

const OAEP_SHA256: OaepParams = { hash: 'sha256' };
/** digestParts joins inputs up to this many bytes and hashes them in one shot. */
const SMALL_DIGEST_INPUT = 4096;

/** A plain Uint8Array view of a Buffer (no copy), so callers see one type whatever made the bytes. */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length);

export interface OpenSslProviderOptions {
  /** Extra facts for info().details, e.g. the FIPS module's name, version and checksum. */
  readonly details?: Readonly<Record<string, string>>;
}

/** One WebCrypto key per private key object, for RSA-OAEP-SHA-256 decryption only (not extractable). */
const oaepKeys = new WeakMap<KeyObject, Promise<webcrypto.CryptoKey>>();

function oaepDecryptionKey(obj: KeyObject): Promise<webcrypto.CryptoKey> {
  let pending = oaepKeys.get(obj);
  if (!pending) {
    const der = obj.export({ type: 'pkcs8', format: 'der' });
    pending = webcrypto.subtle
      .importKey('pkcs8', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt'])
      .catch((err: unknown) => {
        throw new CryptoError('WRONG_KEY_TYPE', `the key cannot decrypt RSA-OAEP: ${(err as Error).message}`);
      })
      .finally(() => der.fill(0));
    oaepKeys.set(obj, pending);
  }
  return pending;
}

export class OpenSslProvider implements CryptoProvider {
  readonly policy: Policy;
  private readonly details: Readonly<Record<string, string>>;

  /** FIPS mode is read from the running Node, never asserted by the caller: `getFips()` is the truth. */
  constructor(options: OpenSslProviderOptions = {}) {
    this.policy = new Policy(getFips() === 1);
    this.details = options.details ?? {};
  }

  info(): ProviderInfo {
    return {
      backend: 'openssl',
      fipsMode: this.policy.fips,
      library: `OpenSSL ${process.versions.openssl}`,
      details: this.details,
    };
  }

  randomBytes(length: number): Uint8Array {
    return new Uint8Array(randomBytes(length));
  }

  digest(hash: HashAlg, data: Uint8Array): Uint8Array {
    this.policy.checkHash(hash, 'digest');
    // One-shot EVP digest (Node ≥ 20.12): about 40% cheaper than a Hash object per call, and the Merkle
    // tree calls this once per leaf and per node.
    return new Uint8Array(oneShotHash(hash, data, 'buffer'));
  }

  digestParts(hash: HashAlg, parts: readonly Uint8Array[]): Uint8Array {
    this.policy.checkHash(hash, 'digest');
    // Small inputs: one copy and the one-shot digest are cheaper than a Hash object.
    let total = 0;
    for (const p of parts) total += p.length;
    if (total <= SMALL_DIGEST_INPUT)
      return new Uint8Array(oneShotHash(hash, Buffer.concat(parts, total), 'buffer'));
    const h = createHash(hash);
    for (const p of parts) h.update(p);
    return plain(h.digest());
  }

  hmac(hash: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array {
    this.policy.checkHash(hash, 'hmac');
    return new Uint8Array(createHmac(hash, key).update(data).digest());
  }

  hkdf(hash: HashAlg, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    this.policy.checkHash(hash, 'kdf');
    try {
      return new Uint8Array(hkdfSync(hash, ikm, salt, info, length));
    } catch (err) {
      throw new CryptoError('INVALID_INPUT', `HKDF-${hash}: ${(err as Error).message}`, undefined, {
        cause: err,
      });
    }
  }

  equal(a: Uint8Array, b: Uint8Array): boolean {
    return a.length === b.length && timingSafeEqual(a, b);
  }

  aesGcmSeal(
    params: AeadParams,
    plaintext: Uint8Array,
    into?: { buffer: Uint8Array; offset: number },
  ): Uint8Array {
    const tagLength = params.tagLength ?? SEAL_SUITE_1.tagBytes;
    this.policy.checkAesGcm(params.key, params.iv, tagLength);
    const cipher = createCipheriv('aes-256-gcm', params.key, params.iv, { authTagLength: tagLength });
    if (params.aad) cipher.setAAD(params.aad);
    const body = cipher.update(plaintext);
    const tail = cipher.final(); // empty for GCM, but part of the API contract
    const tag = cipher.getAuthTag();
    const length = body.length + tail.length + tag.length;
    if (!into) return plain(Buffer.concat([body, tail, tag], length));
    if (into.offset + length > into.buffer.length) {
      throw new CryptoError('INVALID_INPUT', `AES-GCM output needs ${length} bytes at offset ${into.offset}`);
    }
    into.buffer.set(body, into.offset);
    into.buffer.set(tail, into.offset + body.length);
    into.buffer.set(tag, into.offset + body.length + tail.length);
    return into.buffer.subarray(into.offset, into.offset + length);
  }

  aesGcmSealParts(params: AeadParams, plaintext: readonly Uint8Array[]): Uint8Array[] {
    const tagLength = params.tagLength ?? SEAL_SUITE_1.tagBytes;
    this.policy.checkAesGcm(params.key, params.iv, tagLength);
    const cipher = createCipheriv('aes-256-gcm', params.key, params.iv, { authTagLength: tagLength });
    if (params.aad) cipher.setAAD(params.aad);
    // GCM is a stream mode: OpenSSL returns each part's ciphertext at once, whatever its length.
    const out = plaintext.map((p) => plain(cipher.update(p)));
    const tail = cipher.final(); // empty for GCM, but part of the API contract
    if (tail.length) out.push(plain(tail));
    out.push(plain(cipher.getAuthTag()));
    return out;
  }

  aesGcmOpen(params: AeadParams, sealed: Uint8Array): Uint8Array {
    const tagLength = params.tagLength ?? SEAL_SUITE_1.tagBytes;
    this.policy.checkAesGcm(params.key, params.iv, tagLength);
    if (sealed.length < tagLength)
      throw new CryptoError('AUTHENTICATION_FAILED', 'AES-GCM input is shorter than the tag');
    const decipher = createDecipheriv('aes-256-gcm', params.key, params.iv, { authTagLength: tagLength });
    decipher.setAuthTag(sealed.subarray(sealed.length - tagLength));
    if (params.aad) decipher.setAAD(params.aad);
    const head = decipher.update(sealed.subarray(0, sealed.length - tagLength));
    try {
      const tail = decipher.final();
      return new Uint8Array(Buffer.concat([head, tail]));
    } catch {
      // Release nothing: the plaintext computed so far is unauthenticated.
      head.fill(0);
      throw new CryptoError('AUTHENTICATION_FAILED', 'AES-GCM tag does not verify');
    }
  }

  oaepEncrypt(recipient: PublicKey, plaintext: Uint8Array, params: OaepParams = OAEP_SHA256): Uint8Array {
    this.policy.checkOaep(params);
    this.checkRsa(recipient.algorithm, 'RSA-OAEP');
    return new Uint8Array(
      publicEncrypt(
        {
          key: publicKeyObject(recipient),
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: 'sha256', // never Node's SHA-1 default; MGF1 follows the OAEP hash in OpenSSL 3
          ...(params.label ? { oaepLabel: params.label } : {}),
        },
        plaintext,
      ),
    );
  }

  async oaepDecrypt(
    key: PrivateKey,
    ciphertext: Uint8Array,
    params: OaepParams = OAEP_SHA256,
  ): Promise<Uint8Array> {
    this.policy.checkOaep(params);
    this.checkRsa(key.algorithm, 'RSA-OAEP');
    const cryptoKey = await oaepDecryptionKey(privateKeyObject(key));
    try {
      // WebCrypto's RSA-OAEP (SHA-256, MGF1-SHA-256) runs on libuv's thread pool, not the main thread:
      // a reader opening many segments unwraps the next DEKs while it decrypts records.
      const dek = await webcrypto.subtle.decrypt(
        { name: 'RSA-OAEP', ...(params.label ? { label: params.label } : {}) },
        cryptoKey,
        ciphertext,
      );
      return new Uint8Array(dek);
    } catch (err) {
      if (err instanceof CryptoError) throw err;
      throw new CryptoError(
        'AUTHENTICATION_FAILED',
        'RSA-OAEP decryption failed (wrong key or corrupted data)',
      );
    }
  }

  async sign(key: PrivateKey, data: Uint8Array, scheme: SignatureScheme): Promise<Uint8Array> {
    this.policy.checkSignature(key.algorithm, scheme);
    const [hash, options] = this.signOptions(key.algorithm, scheme);
    return new Uint8Array(sign(hash, data, { key: privateKeyObject(key), ...options }));
  }

  verify(key: PublicKey, data: Uint8Array, signature: Uint8Array, scheme: SignatureScheme): boolean {
    this.policy.checkSignature(key.algorithm, scheme);
    const [hash, options] = this.signOptions(key.algorithm, scheme);
    try {
      return verify(hash, data, { key: publicKeyObject(key), ...options }, signature);
    } catch {
      // OpenSSL rejects some malformed encodings by throwing; to a verifier that is just "invalid".
      return false;
    }
  }

  async generateKey(spec: KeySpec): Promise<PrivateKey> {
    this.policy.checkKey(spec);
    let pair: { privateKey: KeyObject };
    switch (spec.type) {
      case 'rsa':
        pair = generateKeyPairSync('rsa', { modulusLength: spec.bits, publicExponent: 65537 });
        break;
      case 'ec':
        pair = generateKeyPairSync('ec', { namedCurve: spec.curve });
        break;
      case 'ed25519':
        pair = generateKeyPairSync('ed25519');
        break;
      case 'x25519':
        throw new CryptoError('UNSUPPORTED', 'X25519 key agreement is not used by sealgate');
    }
    return makePrivateKey(pair.privateKey, `generated:${spec.type}`);
  }

  async loadPrivateKey(refText: string, passphrase?: Uint8Array): Promise<PrivateKey> {
    const ref = parseKeyRef(refText);
    if (ref.scheme !== 'file') {
      throw new CryptoError(
        'KEY_REFERENCE',
        `the openssl backend cannot load ${refText}; configure provider: pkcs11`,
      );
    }
    let pem: string;
    try {
      pem = await readFile(ref.path, 'utf8');
    } catch (err) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `cannot read key file ${ref.path}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    return this.importPrivateKey(pem, passphrase, refText);
  }

  async importPrivateKey(pem: string, passphrase?: Uint8Array, label = 'inline key'): Promise<PrivateKey> {
    if (pem.includes('BEGIN OPENSSH PRIVATE KEY')) {
      throw new CryptoError(
        'UNSUPPORTED',
        `${label} is in OpenSSH's private key format; convert it with "ssh-keygen -p -m PKCS8 -f ${label}"`,
      );
    }
    if (pem.includes('Proc-Type: 4,ENCRYPTED')) {
      // Legacy PEM encryption derives its key with MD5 (EVP_BytesToKey), which FIPS forbids.
      throw new CryptoError(
        'UNSUPPORTED',
        `${label} uses legacy PEM encryption (MD5-based); re-encrypt it as PKCS#8: "openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256"`,
      );
    }
    let keyObject: KeyObject;
    try {
      keyObject = createPrivateKey({
        key: pem,
        format: 'pem',
        ...(passphrase ? { passphrase: Buffer.from(passphrase) } : {}),
      });
    } catch (err) {
      const encrypted = pem.includes('BEGIN ENCRYPTED PRIVATE KEY');
      const why = !encrypted
        ? 'not a PEM private key'
        : passphrase
          ? 'wrong passphrase'
          : 'it is encrypted and no passphrase was given';
      throw new CryptoError('KEY_REFERENCE', `cannot load ${label}: ${why}`, undefined, { cause: err });
    }
    this.policy.checkKey(describeKey(keyObject));
    return makePrivateKey(keyObject, label);
  }

  exportPrivateKey(key: PrivateKey, passphrase?: Uint8Array): string {
    const obj = privateKeyObject(key);
    if (!passphrase) return obj.export({ type: 'pkcs8', format: 'pem' }).toString();
    return encryptPkcs8(obj, passphrase);
  }

  importPublicKey(input: string | Uint8Array): PublicKey {
    let keyObject: KeyObject;
    try {
      if (typeof input !== 'string') {
        keyObject = createPublicKey({ key: Buffer.from(input), format: 'der', type: 'spki' });
      } else if (input.includes('-----BEGIN')) {
        keyObject = createPublicKey({ key: input, format: 'pem' });
      } else {
        keyObject = createPublicKey({ key: { ...parseOpenSshLine(input).jwk }, format: 'jwk' });
      }
    } catch (err) {
      if (err instanceof CryptoError) throw err;
      throw new CryptoError(
        'INVALID_INPUT',
        `not a public key (SPKI PEM/DER or OpenSSH line): ${(err as Error).message}`,
      );
    }
    if (keyObject.asymmetricKeyType === 'x25519') this.policy.checkKey({ type: 'x25519' });
    const key = new OpenSslPublicKey(keyObject);
    this.policy.checkKey(key.algorithm);
    return key;
  }

  private checkRsa(alg: PrivateKey['algorithm'], what: string): void {
    if (alg.type !== 'rsa')
      throw new CryptoError('WRONG_KEY_TYPE', `${what} needs an RSA key, got ${alg.type}`);
    this.policy.checkKey(alg);
  }

  private signOptions(
    alg: PrivateKey['algorithm'],
    scheme: SignatureScheme,
  ): [string | null, { dsaEncoding?: 'der' | 'ieee-p1363'; padding?: number; saltLength?: number }] {
    switch (scheme.scheme) {
      case 'ecdsa': {
        const hash = scheme.hash ?? hashForCurve(alg.type === 'ec' ? alg.curve : 'P-256');
        return [hash, { dsaEncoding: scheme.encoding === 'p1363' ? 'ieee-p1363' : 'der' }];
      }
      case 'rsa-pkcs1v15':
        return [scheme.hash, { padding: constants.RSA_PKCS1_PADDING }];
      case 'rsa-pss':
        return [scheme.hash, { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength }];
      case 'ed25519':
        return [null, {}];
    }
  }
}
