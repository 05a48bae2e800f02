/**
 * The provider callers hold: one CryptoProvider in front of the backends, as Teleport's keystore is one
 * interface in front of software, PKCS#11 and KMS backends.
 *
 * - Everything that needs no private key (hashing, HMAC, HKDF, AES-GCM, RSA-OAEP wrapping, verifying,
 *   public keys) runs in software, on the OpenSSL backend.
 * - A key is loaded by reference, and the reference says where it lives: `file:` → OpenSSL,
 *   `pkcs11:` → the token backend. The handle remembers its backend, so sign and decrypt go back to it.
 *
 * So callers (the checkpoint signer, the segment opener, the SSH legs) never branch on the backend: a
 * config that moves the checkpoint key from `file:` to `pkcs11:` changes nothing else.
 */
import { readFile } from 'node:fs/promises';
import { CryptoError } from './errors.js';
import { parseKeyRef } from './keyref.js';
import { Pkcs11Backend, type KeyUsage, type Pkcs11Options } from './pkcs11/backend.js';
import type { Policy } from './policy.js';
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
} from './provider.js';
import { startProvider, type StartupReport } from './startup.js';

export type { KeyUsage } from './pkcs11/backend.js';

/** The environment variable that names the PKCS#11 module when neither the config nor a flag does. */
export const PKCS11_MODULE_ENV = 'SEALGATE_PKCS11_MODULE';

/** The `pkcs11` section of the config (or the CLI's `--module`, `--pin-file`, `--pin-env`). */
export interface Pkcs11Settings {
  /** The module path; SEALGATE_PKCS11_MODULE when omitted. */
  readonly module?: string;
  readonly pinFile?: string;
  readonly pinEnv?: string;
  /** NSS softoken only (docs/HSM.md). */
  readonly libraryParameters?: string;
  readonly maxSessions?: number;
}

export class RoutingProvider implements CryptoProvider {
  readonly policy: Policy;

  constructor(
    private readonly software: CryptoProvider,
    private readonly token?: Pkcs11Backend,
  ) {
    this.policy = software.policy;
  }

  /** The software backend's facts, plus the module's and the tokens' in use (`pkcs11*`, `token*`). */
  info(): ProviderInfo {
    const base = this.software.info();
    return this.token ? { ...base, details: { ...base.details, ...this.token.details() } } : base;
  }

  // --- software: no private key involved ---------------------------------------------------------

  randomBytes(length: number): Uint8Array {
    return this.software.randomBytes(length);
  }
  digest(hash: HashAlg, data: Uint8Array): Uint8Array {
    return this.software.digest(hash, data);
  }
  digestParts(hash: HashAlg, parts: readonly Uint8Array[]): Uint8Array {
    return this.software.digestParts(hash, parts);
  }
  hmac(hash: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array {
    return this.software.hmac(hash, key, data);
  }
  hkdf(hash: HashAlg, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    return this.software.hkdf(hash, ikm, salt, info, length);
  }
  equal(a: Uint8Array, b: Uint8Array): boolean {
    return this.software.equal(a, b);
  }
  aesGcmSeal(
    params: AeadParams,
    plaintext: Uint8Array,
    into?: { buffer: Uint8Array; offset: number },
  ): Uint8Array {
    return this.software.aesGcmSeal(params, plaintext, into);
  }
  aesGcmSealParts(params: AeadParams, plaintext: readonly Uint8Array[]): Uint8Array[] {
    return this.software.aesGcmSealParts(params, plaintext);
  }
  aesGcmOpen(params: AeadParams, sealed: Uint8Array): Uint8Array {
    return this.software.aesGcmOpen(params, sealed);
  }
  oaepEncrypt(recipient: PublicKey, plaintext: Uint8Array, params?: OaepParams): Uint8Array {
    return this.software.oaepEncrypt(recipient, plaintext, params);
  }
  verify(key: PublicKey, data: Uint8Array, signature: Uint8Array, scheme: SignatureScheme): boolean {
    return this.software.verify(key, data, signature, scheme);
  }
  importPublicKey(input: string | Uint8Array): PublicKey {
    return this.software.importPublicKey(input);
  }
  /** A new software key (self-tests, throw-away keys). Token keys: `generateKeyAt`. */
  async generateKey(spec: KeySpec): Promise<PrivateKey> {
    return this.software.generateKey(spec);
  }
  async importPrivateKey(pem: string, passphrase?: Uint8Array, label?: string): Promise<PrivateKey> {
    return this.software.importPrivateKey(pem, passphrase, label);
  }

  // --- private keys: to the backend that holds them ------------------------------------------------

  async oaepDecrypt(key: PrivateKey, ciphertext: Uint8Array, params?: OaepParams): Promise<Uint8Array> {
    return key.backend === 'pkcs11'
      ? this.#tokenFor(key.ref).oaepDecrypt(key, ciphertext, params)
      : this.software.oaepDecrypt(key, ciphertext, params);
  }

  async sign(key: PrivateKey, data: Uint8Array, scheme: SignatureScheme): Promise<Uint8Array> {
    return key.backend === 'pkcs11'
      ? this.#tokenFor(key.ref).sign(key, data, scheme)
      : this.software.sign(key, data, scheme);
  }

  async loadPrivateKey(ref: string, passphrase?: Uint8Array): Promise<PrivateKey> {
    return parseKeyRef(ref).scheme === 'pkcs11'
      ? this.#tokenFor(ref).loadPrivateKey(ref)
      : this.software.loadPrivateKey(ref, passphrase);
  }

  exportPrivateKey(key: PrivateKey, passphrase?: Uint8Array): string {
    if (key.backend === 'pkcs11') {
      throw new CryptoError(
        'UNSUPPORTED',
        `${key.ref} is held in a token and cannot be exported (CKA_EXTRACTABLE is false); export its public key instead`,
      );
    }
    return this.software.exportPrivateKey(key, passphrase);
  }

  // --- beyond CryptoProvider: key references as a key store ----------------------------------------

  /**
   * A public key by reference: `file:` a PEM or OpenSSH public key, or a private key PEM (its public
   * half; `passphrase` if encrypted); `pkcs11:` the token's public key object, or its private key's.
   */
  async loadPublicKey(ref: string, passphrase?: Uint8Array): Promise<PublicKey> {
    const parsed = parseKeyRef(ref);
    if (parsed.scheme === 'pkcs11') return this.#tokenFor(ref).loadPublicKey(ref);
    let text: string;
    try {
      text = await readFile(parsed.path, 'utf8');
    } catch (err) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `cannot read key file ${parsed.path}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      return (await this.software.importPrivateKey(text, passphrase, ref)).publicKey;
    }
    return this.software.importPublicKey(text.trim());
  }

  /** Generates a key pair where `ref` says: only tokens (`pkcs11:token=…;object=…`) make keys in place. */
  async generateKeyAt(ref: string, spec: KeySpec, usage?: KeyUsage): Promise<PrivateKey> {
    if (parseKeyRef(ref).scheme !== 'pkcs11') {
      throw new CryptoError(
        'UNSUPPORTED',
        `${ref}: keys are generated in place only in tokens; for PEM files use "sealgate keys gen-signer" or "gen-recipient"`,
      );
    }
    return this.#tokenFor(ref).generateKey(ref, spec, usage);
  }

  /** Stores a software private key in the token named by `ref`, as a non-extractable object. */
  async storeKeyAt(ref: string, key: PrivateKey, usage?: KeyUsage): Promise<PrivateKey> {
    if (parseKeyRef(ref).scheme !== 'pkcs11') {
      throw new CryptoError('UNSUPPORTED', `${ref}: keys can be stored only in tokens (pkcs11:)`);
    }
    if (key.backend !== 'openssl')
      throw new CryptoError('WRONG_KEY_TYPE', `${key.ref} is already in a token`);
    return this.#tokenFor(ref).importKey(ref, key, usage);
  }

  /** Destroys the key objects a `pkcs11:` reference names; returns how many. */
  async destroyKeyAt(ref: string): Promise<number> {
    return this.#tokenFor(ref).destroyKey(ref);
  }

  /** Drops every token session and login; the next operation logs in again (HSM failover). */
  resetTokens(): void {
    this.token?.reset();
  }

  /** Ends token sessions and finalizes the PKCS#11 module. Later token operations fail (BACKEND). */
  close(): void {
    this.token?.close();
  }

  #tokenFor(ref: string): Pkcs11Backend {
    if (!this.token) {
      throw new CryptoError(
        'KEY_REFERENCE',
        `${ref} is a token key, but no PKCS#11 module is configured (pkcs11.module in the config, --module, or ${PKCS11_MODULE_ENV})`,
      );
    }
    return this.token;
  }
}

/**
 * Brings the providers up: the OpenSSL side with its start-up checks (startup.ts: FIPS runtime, module,
 * known-answer tests) and, when `pkcs11` is given, the token module (loaded and initialized now, so that
 * a wrong module path fails at start, not at the first checkpoint). The caller decides what a failed
 * report means (assertStartupOk).
 */
export async function createProvider(
  options: { fips?: boolean; pkcs11?: Pkcs11Settings } = {},
): Promise<{ provider: RoutingProvider; report: StartupReport }> {
  const { provider: software, report } = await startProvider(options.fips ?? false);
  if (!options.pkcs11) return { provider: new RoutingProvider(software), report };
  const module = options.pkcs11.module ?? process.env[PKCS11_MODULE_ENV];
  if (!module) {
    throw new CryptoError(
      'KEY_REFERENCE',
      `no PKCS#11 module: set pkcs11.module in the config, --module, or ${PKCS11_MODULE_ENV}`,
    );
  }
  const settings: Pkcs11Options = { ...options.pkcs11, module };
  return { provider: new RoutingProvider(software, Pkcs11Backend.open(settings, software)), report };
}
