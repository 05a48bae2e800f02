/**
 * Key handles backed by Node KeyObjects. The KeyObject of a private key never leaves this module's
 * WeakMap: callers hold an opaque handle, and only the openssl backend can use it.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { formatOpenSshLine, type PublicJwk } from '../openssh-key.js';
import type { EcCurve, KeyAlgorithm, PrivateKey, PublicKey } from '../provider.js';

const CURVE_NAMES: Record<string, EcCurve> = { prime256v1: 'P-256', secp384r1: 'P-384' };

/** Describes a KeyObject, or refuses a type sealgate does not use. */
export function describeKey(key: KeyObject): KeyAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { type: 'rsa', bits: key.asymmetricKeyDetails?.modulusLength ?? 0 };
    case 'ec': {
      const named = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
      const curve = CURVE_NAMES[named];
      if (!curve)
        throw new CryptoError('UNSUPPORTED', `EC curve ${named} is not supported (use P-256 or P-384)`);
      return { type: 'ec', curve };
    }
    case 'ed25519':
      return { type: 'ed25519' };
    default:
      throw new CryptoError('UNSUPPORTED', `key type ${key.asymmetricKeyType ?? 'unknown'} is not supported`);
  }
}

export class OpenSslPublicKey implements PublicKey {
  readonly algorithm: KeyAlgorithm;
  /** The SPKI DER, exported once: key ids are computed from it for every segment a reader opens. */
  #spki: Uint8Array | undefined;
  constructor(readonly keyObject: KeyObject) {
    this.algorithm = describeKey(keyObject);
  }
  spkiDer(): Uint8Array {
    this.#spki ??= new Uint8Array(this.keyObject.export({ type: 'spki', format: 'der' }));
    return this.#spki.slice(); // a copy: callers may not change the cached bytes
  }
  spkiPem(): string {
    return this.keyObject.export({ type: 'spki', format: 'pem' }).toString();
  }
  openssh(comment?: string): string {
    return formatOpenSshLine(this.keyObject.export({ format: 'jwk' }) as PublicJwk, comment);
  }
}

const privateKeyObjects = new WeakMap<PrivateKey, KeyObject>();

export function makePrivateKey(keyObject: KeyObject, ref: string): PrivateKey {
  const publicKey = new OpenSslPublicKey(createPublicKey(keyObject));
  const handle: PrivateKey = Object.freeze({
    algorithm: publicKey.algorithm,
    publicKey,
    ref,
    backend: 'openssl' as const,
  });
  privateKeyObjects.set(handle, keyObject);
  return handle;
}

export function privateKeyObject(key: PrivateKey): KeyObject {
  const obj = privateKeyObjects.get(key);
  if (!obj) {
    throw new CryptoError(
      'WRONG_KEY_TYPE',
      `key ${key.ref} belongs to the ${key.backend} backend, not openssl`,
    );
  }
  return obj;
}

export function publicKeyObject(key: PublicKey): KeyObject {
  if (key instanceof OpenSslPublicKey) return key.keyObject;
  // Any PublicKey can be re-imported from its SPKI: public keys are not tied to a backend.
  return createPublicKey({ key: Buffer.from(key.spkiDer()), format: 'der', type: 'spki' });
}
