/**
 * The crypto provider: the one interface through which sealgate does cryptography.
 *
 * Two backends implement it: `openssl` (Node's OpenSSL, with the FIPS provider in FIPS mode) and, later,
 * `pkcs11` (a token). Callers never branch on the backend: a private key is an opaque handle made by the
 * backend that can use it (as in age's Identity, or Teleport's keystore). Public-key operations (verify,
 * wrap) always run in software, because an auditor verifies offline with public keys alone.
 *
 * Symmetric operations and hashing are synchronous: they sit on the record path and must not yield.
 * Private-key operations are asynchronous: a token may block.
 */
import type { Policy } from './policy.js';

export type HashAlg = 'sha256' | 'sha384' | 'sha512';
export type EcCurve = 'P-256' | 'P-384';

/** What a key is. `ed25519` exists so that it can be described (and refused in FIPS mode). */
export type KeyAlgorithm =
  | { readonly type: 'rsa'; readonly bits: number }
  | { readonly type: 'ec'; readonly curve: EcCurve }
  | { readonly type: 'ed25519' };

/** A public key. Always a software object: verifying never needs the backend that holds the private half. */
export interface PublicKey {
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  spkiDer(): Uint8Array;
  /** SubjectPublicKeyInfo, PEM. */
  spkiPem(): string;
  /** OpenSSH public key line: `<type> <base64 blob> [comment]`. */
  openssh(comment?: string): string;
}

/** A private key handle. Only the backend that made it can use it. */
export interface PrivateKey {
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: PublicKey;
  /** The reference it was loaded from (`file:…`, `pkcs11:…`); safe to log, holds no secret. */
  readonly ref: string;
  readonly backend: BackendName;
}

export type BackendName = 'openssl' | 'pkcs11';

export type SignatureScheme =
  /** ECDSA with the hash that matches the curve unless given; `der` (X9.62) or `p1363` (raw r||s). */
  | { readonly scheme: 'ecdsa'; readonly hash?: HashAlg; readonly encoding: 'der' | 'p1363' }
  | { readonly scheme: 'rsa-pkcs1v15'; readonly hash: HashAlg }
  | { readonly scheme: 'rsa-pss'; readonly hash: HashAlg; readonly saltLength: number }
  | { readonly scheme: 'ed25519' };

/** RSA-OAEP parameters. The suite allows SHA-256 with MGF1-SHA-256 only; the field exists to be refused. */
export interface OaepParams {
  readonly hash: string;
  readonly label?: Uint8Array;
}

export interface AeadParams {
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
  readonly aad?: Uint8Array;
  /** Tag length in bytes. Only 16 is accepted; the field exists so other sizes are refused, not ignored. */
  readonly tagLength?: number;
}

export type KeySpec =
  | { readonly type: 'rsa'; readonly bits: 2048 | 3072 | 4096 }
  | { readonly type: 'ec'; readonly curve: EcCurve }
  | { readonly type: 'ed25519' }
  | { readonly type: 'x25519' };

/** Facts about the backend, for `fips status`, the operational log and (later) segment provenance. */
export interface ProviderInfo {
  readonly backend: BackendName;
  readonly fipsMode: boolean;
  /** e.g. "OpenSSL 3.0.19" */
  readonly library: string;
  /** The OpenSSL providers loaded, with name and version, as OpenSSL reports them. */
  readonly details: Readonly<Record<string, string>>;
}

export interface CryptoProvider {
  readonly policy: Policy;
  info(): ProviderInfo;

  randomBytes(length: number): Uint8Array;
  digest(hash: HashAlg, data: Uint8Array): Uint8Array;
  /** The digest of the parts' concatenation, without concatenating them (the record path's leaf hash). */
  digestParts(hash: HashAlg, parts: readonly Uint8Array[]): Uint8Array;
  hmac(hash: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF (RFC 5869). The suite uses SHA-512. */
  hkdf(hash: HashAlg, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** Constant-time equality; false when lengths differ. */
  equal(a: Uint8Array, b: Uint8Array): boolean;

  /**
   * AES-256-GCM. Returns ciphertext || 16-byte tag. With `into`, writes them at `into.offset` of
   * `into.buffer` (which must have room) and returns that view: the record path seals straight into
   * the entry it is building, without intermediate copies.
   */
  aesGcmSeal(
    params: AeadParams,
    plaintext: Uint8Array,
    into?: { buffer: Uint8Array; offset: number },
  ): Uint8Array;
  /**
   * AES-256-GCM over the concatenation of `plaintext`, without concatenating it: returns the ciphertext
   * of each part, in order, then the 16-byte tag. Joined, they are exactly what `aesGcmSeal` returns for
   * the joined plaintext. The record path seals a data payload (u32 channel, bytes) this way, with no copy.
   */
  aesGcmSealParts(params: AeadParams, plaintext: readonly Uint8Array[]): Uint8Array[];
  /** AES-256-GCM. Input is ciphertext || tag. Throws AUTHENTICATION_FAILED and releases nothing on a bad tag. */
  aesGcmOpen(params: AeadParams, sealed: Uint8Array): Uint8Array;

  oaepEncrypt(recipient: PublicKey, plaintext: Uint8Array, params?: OaepParams): Uint8Array;
  oaepDecrypt(key: PrivateKey, ciphertext: Uint8Array, params?: OaepParams): Promise<Uint8Array>;

  sign(key: PrivateKey, data: Uint8Array, scheme: SignatureScheme): Promise<Uint8Array>;
  /** False for a signature that does not verify; throws only for refused or malformed parameters. */
  verify(key: PublicKey, data: Uint8Array, signature: Uint8Array, scheme: SignatureScheme): boolean;

  generateKey(spec: KeySpec): Promise<PrivateKey>;
  /** Load a private key by reference (`file:/path.pem`; a passphrase for PKCS#8-encrypted PEM). */
  loadPrivateKey(ref: string, passphrase?: Uint8Array): Promise<PrivateKey>;
  /** Import a PEM private key (PKCS#8, optionally PBES2-encrypted, or PKCS#1/SEC1). `label` names it in messages. */
  importPrivateKey(pem: string, passphrase?: Uint8Array, label?: string): Promise<PrivateKey>;
  /** Export a private key as PKCS#8 PEM, encrypted with PBKDF2 + AES-256-CBC when a passphrase is given. */
  exportPrivateKey(key: PrivateKey, passphrase?: Uint8Array): string;

  /** Parse a public key from SPKI PEM, SPKI DER, or an OpenSSH public key line. */
  importPublicKey(input: string | Uint8Array): PublicKey;
}
