/**
 * The `pkcs11` backend: private-key operations inside a token, through pkcs11js.
 *
 * Only what needs the private key happens in the token: ECDSA signing (and RSA signing for SSH CAs)
 * and RSA-OAEP decryption of data keys. Hashing, verification and public-key encryption stay in
 * software (the OpenSSL backend), so an auditor verifies with public keys alone, and the digest that a
 * token signs is computed by the same FIPS-mode code as everywhere else (mechanisms.ts).
 *
 * A token that refuses OAEP-SHA-256 gets UNSUPPORTED "mechanism not supported by this token", never a
 * retry with SHA-1: the suite is OAEP-SHA-256 only, and the policy refuses SHA-1 before a token is asked.
 *
 * Keys are handles like the OpenSSL backend's: an opaque PrivateKey whose token object lives in a
 * WeakMap here, so only the backend that loaded it can use it.
 */
import { verify as softwareVerify } from 'node:crypto';
import { CryptoError, refuse } from '../errors.js';
import { privateKeyObject, publicKeyObject } from '../openssl/keys.js';
import { hashForCurve, type Policy } from '../policy.js';
import type {
  HashAlg,
  KeyAlgorithm,
  KeySpec,
  OaepParams,
  PrivateKey,
  PublicKey,
  SignatureScheme,
} from '../provider.js';
import { stripLeadingZeros } from './encoding.js';
import {
  CIPHERTEXT_REFUSED,
  ckrName,
  HANDLE_LOST,
  KEY_REFUSED,
  MECHANISM_REFUSED,
  TOKEN_LOST,
} from './errors.js';
import { oaepSha256, OAEP_SHA256_NAME, signPlan } from './mechanisms.js';
import { acquireModule, P11, releaseModule, type LoadedModule } from './module.js';
import { TokenObjects, type PrivateKeyFacts } from './objects.js';
import { defaultUsage, generationTemplates, importTemplates, type KeyUsage } from './templates.js';
import { closedError, readPin, Token, type Handle, type PinSource } from './token.js';
import {
  describeObject,
  formatPkcs11Uri,
  parsePkcs11Uri,
  type Pkcs11Uri,
  type TokenSelector,
} from './uri.js';

export type { KeyUsage } from './templates.js';

export interface Pkcs11Options {
  /** Path to the PKCS#11 module (`.so`). */
  readonly module: string;
  /** Where the user PIN comes from; never a command-line argument. */
  readonly pinFile?: string;
  readonly pinEnv?: string;
  /** NSS softoken only: `configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=`. */
  readonly libraryParameters?: string;
  /** Sessions per token (default 4). */
  readonly maxSessions?: number;
}

/** What the backend needs from the software side: the policy, hashing, randomness. */
export interface SoftwareSide {
  readonly policy: Policy;
  digest(hash: HashAlg, data: Uint8Array): Uint8Array;
  randomBytes(length: number): Uint8Array;
}

/** The token object behind a PrivateKey handle. */
interface TokenKey extends PrivateKeyFacts {
  readonly owner: Pkcs11Backend;
  readonly token: Token;
  readonly ref: string;
  readonly algorithm: KeyAlgorithm;
  /** The object handle, valid in `generation` of the token; found again by label and id when stale. */
  handle: Handle;
  generation: number;
}

const tokenKeys = new WeakMap<PrivateKey, TokenKey>();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class Pkcs11Backend {
  readonly #module: LoadedModule;
  readonly #software: SoftwareSide;
  readonly #objects: TokenObjects;
  readonly #pin: PinSource;
  readonly #maxSessions: number;
  /** Open tokens by their selector, so that keys in one token share its sessions and login. */
  readonly #tokens = new Map<string, Token>();
  #closed = false;

  private constructor(module: LoadedModule, software: SoftwareSide, options: Pkcs11Options) {
    this.#module = module;
    this.#software = software;
    this.#objects = new TokenObjects(module.p11, software.policy);
    this.#pin = {
      ...(options.pinFile ? { file: options.pinFile } : {}),
      ...(options.pinEnv ? { env: options.pinEnv } : {}),
    };
    this.#maxSessions = options.maxSessions ?? 4;
  }

  /** Loads and initializes the module (BACKEND if it cannot be); the PIN is read at the first login. */
  static open(options: Pkcs11Options, software: SoftwareSide): Pkcs11Backend {
    if (options.pinFile && options.pinEnv) {
      throw new CryptoError('INVALID_INPUT', 'PKCS#11 PIN: give a file or an environment variable, not both');
    }
    return new Pkcs11Backend(acquireModule(options.module, options.libraryParameters), software, options);
  }

  /** Facts for ProviderInfo.details and segment provenance (docs/FORMAT.md §3.1.1). */
  details(): Record<string, string> {
    const f = this.#module.facts;
    const out: Record<string, string> = {
      pkcs11Module: this.#module.path,
      pkcs11Library: `${f.description} ${f.version}`,
      pkcs11LibraryManufacturer: f.manufacturer,
    };
    const tokens = [...this.#tokens.values()].map((t) => t.facts);
    if (tokens.length > 0) {
      const join = (pick: (t: (typeof tokens)[number]) => string) => tokens.map(pick).join('; ');
      out.tokenLabel = join((t) => t.label);
      out.tokenModel = join((t) => t.model);
      out.tokenSerial = join((t) => t.serial);
      out.tokenManufacturer = join((t) => t.manufacturer);
      out.tokenFirmware = join((t) => t.firmware);
    }
    return out;
  }

  /** Ends every session and finalizes the module once no other backend uses it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#tokens.values()) t.close();
    this.#tokens.clear();
    releaseModule(this.#module);
  }

  /** Closes every session on the tokens in use (logging out); the next operation logs in again. */
  reset(): void {
    for (const t of this.#tokens.values()) t.reset();
  }

  // --- loading keys --------------------------------------------------------------------------------

  /** Loads a private key by `pkcs11:` URI: the object must exist and be unambiguous. */
  async loadPrivateKey(refText: string): Promise<PrivateKey> {
    const uri = this.#parse(refText);
    if (uri.type === 'public') {
      throw new CryptoError(
        'KEY_REFERENCE',
        `${refText} names a public key (type=public); a private key is needed`,
      );
    }
    const token = this.#token(uri.token);
    const key = await this.#guard(token, 'load', refText, () =>
      token.run((s) => {
        const handles = this.#objects.find(s, P11.CKO_PRIVATE_KEY, uri);
        const [handle, ...more] = handles;
        if (!handle) {
          const onlyPublic = this.#objects.find(s, P11.CKO_PUBLIC_KEY, uri).length > 0;
          throw new CryptoError(
            'KEY_REFERENCE',
            `${token.name} has no private key ${describeObject(uri)}` +
              (onlyPublic ? ' (only a public key with that name)' : '') +
              ` [${refText}]`,
          );
        }
        if (more.length > 0) {
          throw new CryptoError(
            'KEY_REFERENCE',
            `${handles.length} private keys in ${token.name} match ${describeObject(uri)}; add id=… to ${refText}`,
          );
        }
        return this.#tokenKey(s, token, handle, refText);
      }),
    );
    return this.#makeHandle(key);
  }

  /**
   * A public key by `pkcs11:` URI: from the token's public key object (no login needed), or else from
   * the private key (which needs the PIN).
   */
  async loadPublicKey(refText: string): Promise<PublicKey> {
    const uri = this.#parse(refText);
    const token = this.#token(uri.token);
    const pub = await this.#guard(token, 'load', refText, () =>
      token.run(
        (s) => {
          const [handle, ...more] = this.#objects.find(s, P11.CKO_PUBLIC_KEY, uri);
          if (!handle || more.length > 0) return undefined;
          return this.#objects.publicOf(s, handle, refText).publicKey;
        },
        { login: false },
      ),
    );
    if (pub) return pub;
    if (readPin(this.#pin) === undefined && token.facts.loginRequired) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `${token.name} has no public key object ${describeObject(uri)}; give the PIN (--pin-file or --pin-env) ` +
          'to read it from the private key',
      );
    }
    return (await this.loadPrivateKey(refText)).publicKey;
  }

  // --- operations ----------------------------------------------------------------------------------

  async sign(key: PrivateKey, data: Uint8Array, scheme: SignatureScheme): Promise<Uint8Array> {
    const k = this.#key(key);
    const fits = scheme.scheme === 'ecdsa' ? 'ec' : scheme.scheme === 'ed25519' ? 'ed25519' : 'rsa';
    if (key.algorithm.type !== fits) {
      // The policy refuses this with the same code and rule; this message also names the object.
      refuse(
        'suite.approved-key-type',
        `${k.ref} is ${algorithmName(key.algorithm)}; it cannot make ${scheme.scheme} signatures`,
      );
    }
    this.#software.policy.checkSignature(key.algorithm, scheme);
    if (!k.canSign) throw new CryptoError('WRONG_KEY_TYPE', `${k.ref} may not sign (its CKA_SIGN is false)`);
    const plan = signPlan(k.algorithm, k.size, data, scheme, (h, d) => this.#software.digest(h, d));
    if (!k.token.hasMechanism(plan.mechanism.mechanism)) {
      throw this.#unsupported(k, plan.name, 'not in C_GetMechanismList');
    }
    const p11 = this.#module.p11;
    return this.#guard(k.token, 'sign', k.ref, () =>
      this.#withKey(k, async (s, h) => {
        try {
          p11.C_SignInit(s, plan.mechanism, h);
        } catch (err) {
          throw this.#initError(err, k, plan.name, 'C_SignInit');
        }
        if (k.alwaysAuthenticate) k.token.contextLogin(s);
        const out = await p11.C_SignAsync(s, Buffer.from(plan.input), Buffer.alloc(plan.outLength));
        return plan.finish(new Uint8Array(out));
      }),
    );
  }

  /** RSA-OAEP with SHA-256 and MGF1-SHA-256, by C_Decrypt or, for unwrap-only keys, C_UnwrapKey. */
  async oaepDecrypt(
    key: PrivateKey,
    ciphertext: Uint8Array,
    params: OaepParams = { hash: 'sha256' },
  ): Promise<Uint8Array> {
    const k = this.#key(key);
    this.#software.policy.checkOaep(params);
    if (key.algorithm.type !== 'rsa') {
      throw new CryptoError(
        'WRONG_KEY_TYPE',
        `RSA-OAEP needs an RSA key; ${k.ref} is ${algorithmName(key.algorithm)}`,
      );
    }
    this.#software.policy.checkKey(key.algorithm);
    if (!k.canDecrypt && !k.canUnwrap) {
      throw new CryptoError(
        'WRONG_KEY_TYPE',
        `${k.ref} may neither decrypt nor unwrap (CKA_DECRYPT and CKA_UNWRAP are false)`,
      );
    }
    if (!k.token.hasMechanism(P11.CKM_RSA_PKCS_OAEP)) {
      throw this.#unsupported(k, OAEP_SHA256_NAME, 'CKM_RSA_PKCS_OAEP is not in C_GetMechanismList');
    }
    const mechanism = oaepSha256(params.label);
    // The same words as the software backend: a caller cannot tell a token from OpenSSL here.
    const failed = () =>
      new CryptoError('AUTHENTICATION_FAILED', 'RSA-OAEP decryption failed (wrong key or corrupted data)');
    // RFC 8017 §7.1.2 step 1 and §5.1.2 step 1 (a k-byte ciphertext below n), checked here: tokens report
    // a ciphertext out of range in their own ways (NSS: CKR_ARGUMENTS_BAD, which SoftHSM2 also uses for
    // "no OAEP-SHA-256"), and only in-range ciphertexts may reach the token.
    if (ciphertext.length !== k.size || !lessThan(ciphertext, k.fingerprint)) throw failed();
    const p11 = this.#module.p11;
    try {
      return await this.#guard(k.token, 'decrypt', k.ref, () =>
        this.#withKey(k, async (s, h) => {
          if (k.canDecrypt) {
            try {
              p11.C_DecryptInit(s, mechanism, h);
            } catch (err) {
              throw this.#initError(err, k, OAEP_SHA256_NAME, 'C_DecryptInit');
            }
            if (k.alwaysAuthenticate) k.token.contextLogin(s);
            try {
              return new Uint8Array(
                await p11.C_DecryptAsync(s, Buffer.from(ciphertext), Buffer.alloc(k.size)),
              );
            } catch (err) {
              // After a successful C_DecryptInit, "bad arguments" can only be about the ciphertext.
              if (ckrName(err) === 'CKR_ARGUMENTS_BAD') throw failed();
              throw err;
            }
          }
          return this.#unwrap(k, s, h, mechanism, ciphertext);
        }),
      );
    } catch (err) {
      if (CIPHERTEXT_REFUSED.has(ckrName(err) ?? '')) throw failed();
      throw err;
    }
  }

  /**
   * Decryption with an unwrap-only key (CKA_DECRYPT false, CKA_UNWRAP true): unwrap into a session
   * object that may be read, read it, destroy it.
   */
  async #unwrap(
    k: TokenKey,
    s: Handle,
    h: Handle,
    mechanism: ReturnType<typeof oaepSha256>,
    ciphertext: Uint8Array,
  ): Promise<Uint8Array> {
    const p11 = this.#module.p11;
    let secret: Handle;
    try {
      secret = await p11.C_UnwrapKeyAsync(s, mechanism, h, Buffer.from(ciphertext), [
        { type: P11.CKA_CLASS, value: P11.CKO_SECRET_KEY },
        { type: P11.CKA_KEY_TYPE, value: P11.CKK_GENERIC_SECRET },
        { type: P11.CKA_TOKEN, value: false },
        { type: P11.CKA_SENSITIVE, value: false },
        { type: P11.CKA_EXTRACTABLE, value: true },
      ]);
    } catch (err) {
      const ckr = ckrName(err) ?? '';
      if (MECHANISM_REFUSED.has(ckr)) throw this.#unsupported(k, OAEP_SHA256_NAME, `${ckr} at C_UnwrapKey`);
      throw err;
    }
    try {
      const [value] = p11.C_GetAttributeValue(s, secret, [{ type: P11.CKA_VALUE }]);
      return new Uint8Array(value?.value ?? []);
    } finally {
      p11.C_DestroyObject(s, secret);
    }
  }

  // --- making keys ---------------------------------------------------------------------------------

  /**
   * Generates a key pair inside the token named by `refText` (`token=…;object=…`, optionally `id=…`).
   * The private key is CKA_SENSITIVE and not CKA_EXTRACTABLE: it never leaves the token.
   */
  async generateKey(refText: string, spec: KeySpec, usage?: KeyUsage): Promise<PrivateKey> {
    const uri = this.#parse(refText);
    this.#software.policy.checkKey(spec);
    if (spec.type !== 'ec' && spec.type !== 'rsa') {
      throw new CryptoError(
        'UNSUPPORTED',
        `the pkcs11 backend makes EC P-256/P-384 and RSA keys, not ${spec.type}`,
      );
    }
    const use = defaultUsage(spec.type, usage);
    const { token, label, id } = await this.#newObject(uri, refText);
    const { mechanism, publicTemplate, privateTemplate } = generationTemplates(spec, use, label, id);
    const what = spec.type === 'ec' ? `EC ${spec.curve} key generation` : `RSA-${spec.bits} key generation`;
    const ref = formatPkcs11Uri({ token: token.facts.label, object: label, id });
    const key = await this.#guard(token, 'generate', ref, () =>
      token.run(async (s) => {
        let pair: { privateKey: Handle };
        try {
          pair = await this.#module.p11.C_GenerateKeyPairAsync(s, mechanism, publicTemplate, privateTemplate);
        } catch (err) {
          const ckr = ckrName(err) ?? '';
          if (
            MECHANISM_REFUSED.has(ckr) ||
            ckr === 'CKR_KEY_SIZE_RANGE' ||
            ckr === 'CKR_TEMPLATE_INCONSISTENT'
          ) {
            throw new CryptoError(
              'UNSUPPORTED',
              `mechanism not supported by this token: ${what} (${token.name}: ${ckr})`,
            );
          }
          throw err;
        }
        return this.#tokenKey(s, token, pair.privateKey, ref);
      }),
    );
    return this.#makeHandle(key);
  }

  /**
   * Stores a software private key (from the OpenSSL backend) in the token as a non-extractable object,
   * with its public key beside it. For moving an existing key into an HSM, and for the Wycheproof
   * vectors, whose private keys are given.
   */
  async importKey(refText: string, key: PrivateKey, usage?: KeyUsage): Promise<PrivateKey> {
    const uri = this.#parse(refText);
    this.#software.policy.checkKey(key.algorithm);
    if (key.algorithm.type !== 'ec' && key.algorithm.type !== 'rsa') {
      throw new CryptoError(
        'UNSUPPORTED',
        `the pkcs11 backend stores EC and RSA keys, not ${key.algorithm.type}`,
      );
    }
    const use = defaultUsage(key.algorithm.type, usage);
    const jwk = privateKeyObject(key).export({ format: 'jwk' });
    const { token, label, id } = await this.#newObject(uri, refText);
    const { publicTemplate, privateTemplate } = importTemplates(jwk, key.algorithm, use, label, id);
    const ref = formatPkcs11Uri({ token: token.facts.label, object: label, id });
    const stored = await this.#guard(token, 'import', ref, () =>
      token.run((s) => {
        let handle: Handle;
        try {
          handle = this.#module.p11.C_CreateObject(s, privateTemplate);
        } catch (err) {
          throw new CryptoError(
            'UNSUPPORTED',
            `${token.name} does not accept an imported ${algorithmName(key.algorithm)} private key ` +
              `(${ckrName(err) ?? (err as Error).message})`,
          );
        }
        this.#module.p11.C_CreateObject(s, publicTemplate);
        return this.#tokenKey(s, token, handle, ref);
      }),
    );
    return this.#makeHandle(stored);
  }

  /** Destroys the private key and public key objects a URI names; returns how many. */
  async destroyKey(refText: string): Promise<number> {
    const uri = this.#parse(refText);
    const token = this.#token(uri.token);
    return this.#guard(token, 'destroy', refText, () =>
      token.run((s) => {
        const handles = [
          ...this.#objects.find(s, P11.CKO_PRIVATE_KEY, uri),
          ...this.#objects.find(s, P11.CKO_PUBLIC_KEY, uri),
        ];
        for (const h of handles) this.#module.p11.C_DestroyObject(s, h);
        return handles.length;
      }),
    );
  }

  // --- internals -----------------------------------------------------------------------------------

  #parse(refText: string): Pkcs11Uri {
    if (this.#closed) throw closedError(this.#module.path);
    const uri = parsePkcs11Uri(refText);
    const f = this.#module.facts;
    if (
      (uri.libraryManufacturer !== undefined && uri.libraryManufacturer !== f.manufacturer) ||
      (uri.libraryDescription !== undefined && uri.libraryDescription !== f.description)
    ) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `${refText} names another library than ${this.#module.path} ("${f.description}" by "${f.manufacturer}")`,
      );
    }
    return uri;
  }

  #token(sel: TokenSelector): Token {
    if (this.#closed) throw closedError(this.#module.path);
    const key = JSON.stringify(sel, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    let token = this.#tokens.get(key);
    if (!token) {
      token = Token.open(this.#module, sel, this.#pin, this.#maxSessions);
      this.#tokens.set(key, token);
    }
    return token;
  }

  #key(key: PrivateKey): TokenKey {
    const k = tokenKeys.get(key);
    if (!k) {
      throw new CryptoError(
        'WRONG_KEY_TYPE',
        `key ${key.ref} belongs to the ${key.backend} backend, not pkcs11`,
      );
    }
    if (k.owner !== this) {
      throw new CryptoError(
        'WRONG_KEY_TYPE',
        `key ${key.ref} was loaded by another PKCS#11 backend than ${this.#module.path}`,
      );
    }
    if (this.#closed || k.token.closed) throw closedError(this.#module.path);
    return k;
  }

  #tokenKey(s: Handle, token: Token, handle: Handle, ref: string): TokenKey {
    const facts = this.#objects.privateFacts(s, handle, ref, token.name);
    return {
      ...facts,
      owner: this,
      token,
      ref,
      algorithm: facts.publicKey.algorithm,
      handle,
      generation: token.generation,
    };
  }

  /** A label (and id) for a new object: refused if the token already has a private key by that name. */
  async #newObject(
    uri: Pkcs11Uri,
    refText: string,
  ): Promise<{ token: Token; label: string; id: Uint8Array }> {
    if (uri.object === undefined) {
      throw new CryptoError('KEY_REFERENCE', `${refText}: a new key needs a label (object=…)`);
    }
    const token = this.#token(uri.token);
    const label = uri.object;
    const id = uri.id ?? this.#software.randomBytes(16);
    await this.#guard(token, 'check', refText, () =>
      token.run((s) => {
        const byLabel = this.#objects.find(s, P11.CKO_PRIVATE_KEY, { object: label });
        const byId = this.#objects.find(s, P11.CKO_PRIVATE_KEY, { id });
        if (byLabel.length > 0 || byId.length > 0) {
          throw new CryptoError(
            'KEY_REFERENCE',
            `${token.name} already holds a private key ${describeObject(byLabel.length > 0 ? { object: label } : { id })}; ` +
              'choose another label, or destroy the old key first',
          );
        }
      }),
    );
    return { token, label, id };
  }

  /** Makes the opaque handle and, for a signing key, checks that the public half belongs to it. */
  async #makeHandle(k: TokenKey): Promise<PrivateKey> {
    const handle: PrivateKey = Object.freeze({
      algorithm: k.algorithm,
      publicKey: k.publicKey,
      ref: k.ref,
      backend: 'pkcs11' as const,
    });
    tokenKeys.set(handle, k);
    if (k.algorithm.type === 'ec' && k.canSign) {
      // Pairwise consistency (in the spirit of FIPS 140-3 IG 10.3.A): the EC public key was found by
      // name beside the private key, so prove that it is this key's before signatures are checked
      // against it. One signature, about a millisecond.
      const msg = this.#software.randomBytes(32);
      const sig = await this.sign(handle, msg, { scheme: 'ecdsa', encoding: 'p1363' });
      const hash = hashForCurve(k.algorithm.curve);
      if (!softwareVerify(hash, msg, { key: publicKeyObject(k.publicKey), dsaEncoding: 'ieee-p1363' }, sig)) {
        throw new CryptoError(
          'KEY_REFERENCE',
          `${k.ref}: the token's public key object does not match the private key`,
        );
      }
    }
    return handle;
  }

  /** Runs `op` with the key's current object handle, finding the object again if the handle went stale. */
  #withKey<T>(k: TokenKey, op: (session: Handle, handle: Handle) => Promise<T>): Promise<T> {
    return k.token.run(async (s) => {
      if (k.generation !== k.token.generation) this.#refindKey(s, k);
      try {
        return await op(s, k.handle);
      } catch (err) {
        if (!HANDLE_LOST.has(ckrName(err) ?? '')) throw err;
        this.#refindKey(s, k);
        return await op(s, k.handle);
      }
    });
  }

  /** Finds a key's object again by CKA_LABEL and CKA_ID; refuses an object that is another key. */
  #refindKey(s: Handle, k: TokenKey): void {
    const [handle, ...more] = this.#objects.find(s, P11.CKO_PRIVATE_KEY, {
      ...(k.label !== undefined ? { object: k.label } : {}),
      ...(k.id !== undefined ? { id: k.id } : {}),
    });
    if (!handle || more.length > 0) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `${k.ref} no longer exists in ${k.token.name} (destroyed, or the token was re-initialized)`,
      );
    }
    if (k.algorithm.type === 'rsa') {
      // An RSA private key shows its modulus: make sure the object found is the same key. (An EC key
      // that changed would fail the signer's own verification of every signature.)
      const n = this.#objects.attribute(s, handle, P11.CKA_MODULUS);
      if (!n || hex(stripLeadingZeros(n)) !== hex(k.fingerprint)) {
        throw new CryptoError(
          'KEY_REFERENCE',
          `${k.ref} in ${k.token.name} is now a different key; refusing to use it`,
        );
      }
    }
    k.handle = handle;
    k.generation = k.token.generation;
  }

  /**
   * Runs a token operation and turns what is left of its errors into CryptoErrors: by now the token's
   * pool has already tried once to repair a lost session, login or token.
   */
  async #guard<T>(token: Token, what: string, ref: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof CryptoError) throw err;
      const ckr = ckrName(err);
      if (ckr && CIPHERTEXT_REFUSED.has(ckr) && what === 'decrypt') throw err; // oaepDecrypt maps it
      if (token.closed || this.#closed) throw closedError(this.#module.path);
      const cause = { cause: err };
      if (
        ckr &&
        (TOKEN_LOST.has(ckr) || ckr === 'CKR_CRYPTOKI_NOT_INITIALIZED' || ckr.startsWith('CKR_SESSION'))
      ) {
        throw new CryptoError(
          'BACKEND',
          `${token.name} is not available (${ckr} during ${what} of ${ref})`,
          undefined,
          cause,
        );
      }
      if (ckr && KEY_REFUSED.has(ckr)) {
        throw new CryptoError(
          'WRONG_KEY_TYPE',
          `${ref}: ${token.name} refuses to ${what} with this key (${ckr})`,
          undefined,
          cause,
        );
      }
      const detail = ckr ?? (err as Error).message;
      throw new CryptoError(
        'BACKEND',
        `${what} with ${ref} failed in ${token.name}: ${detail}`,
        undefined,
        cause,
      );
    }
  }

  #initError(err: unknown, k: TokenKey, mechanism: string, call: string): unknown {
    const ckr = ckrName(err) ?? '';
    if (MECHANISM_REFUSED.has(ckr)) return this.#unsupported(k, mechanism, `${ckr} at ${call}`);
    if (KEY_REFUSED.has(ckr)) {
      return new CryptoError(
        'WRONG_KEY_TYPE',
        `${k.ref} may not be used for ${mechanism} (${ckr})`,
        undefined,
        {
          cause: err,
        },
      );
    }
    return err;
  }

  #unsupported(k: TokenKey, mechanism: string, detail: string): CryptoError {
    const f = k.token.facts;
    return new CryptoError(
      'UNSUPPORTED',
      `mechanism not supported by this token: ${mechanism} (${k.token.name}, ${f.manufacturer} ${f.model}: ${detail})` +
        (mechanism === OAEP_SHA256_NAME ? '; sealgate never falls back to SHA-1' : ''),
    );
  }
}

/** Big-endian a < b. */
function lessThan(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return a.length < b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

export function algorithmName(alg: KeyAlgorithm): string {
  if (alg.type === 'rsa') return `an RSA-${alg.bits} key`;
  if (alg.type === 'ec') return `an EC ${alg.curve} key`;
  return 'an Ed25519 key';
}
