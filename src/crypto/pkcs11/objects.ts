/**
 * Reading key objects in a token: finding them by CKA_LABEL / CKA_ID, reading their attributes, and
 * turning their public halves into software PublicKeys (verification stays in OpenSSL).
 */
import { createPublicKey } from 'node:crypto';
import { CryptoError } from '../errors.js';
import { OpenSslPublicKey } from '../openssl/keys.js';
import type { Policy } from '../policy.js';
import type { EcCurve, PublicKey } from '../provider.js';
import { curveOfParams, EC_FIELD_BYTES, ecPointOf, stripLeadingZeros } from './encoding.js';
import { ckrName } from './errors.js';
import { P11, type Pkcs11 } from './module.js';
import type { Handle } from './token.js';
import { describeObject } from './uri.js';

/** CKA_PUBLIC_KEY_INFO (PKCS#11 v2.40), which pkcs11js does not name. */
const CKA_PUBLIC_KEY_INFO = 0x129;
/** CKK_EC_EDWARDS (PKCS#11 v3.0), which pkcs11js does not name. */
const CKK_EC_EDWARDS = 0x40;

/** Which objects: by label, by id, or both. */
export interface ObjectSelector {
  readonly object?: string;
  readonly id?: Uint8Array;
}

export interface PublicHalf {
  readonly publicKey: PublicKey;
  /** Modulus or field size in bytes: the size of an RSA block, or of r and of s. */
  readonly size: number;
  /** The RSA modulus or the EC point: recognises the same key after the object is found again. */
  readonly fingerprint: Uint8Array;
}

/** What a private key object is and may do. */
export interface PrivateKeyFacts extends PublicHalf {
  readonly label: string | undefined;
  readonly id: Uint8Array | undefined;
  readonly canSign: boolean;
  readonly canDecrypt: boolean;
  readonly canUnwrap: boolean;
  /** CKA_ALWAYS_AUTHENTICATE: every operation needs a context-specific login. */
  readonly alwaysAuthenticate: boolean;
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

export class TokenObjects {
  constructor(
    private readonly p11: Pkcs11,
    private readonly policy: Policy,
  ) {}

  /** Every object of class `cls` that matches the selector. */
  find(session: Handle, cls: number, sel: ObjectSelector): Handle[] {
    const template = [
      { type: P11.CKA_CLASS, value: cls },
      ...(sel.object !== undefined ? [{ type: P11.CKA_LABEL, value: sel.object }] : []),
      ...(sel.id !== undefined ? [{ type: P11.CKA_ID, value: Buffer.from(sel.id) }] : []),
    ];
    this.p11.C_FindObjectsInit(session, template);
    try {
      const out: Handle[] = [];
      for (;;) {
        const batch = this.p11.C_FindObjects(session, 16);
        out.push(...batch);
        if (batch.length < 16) return out;
      }
    } finally {
      this.p11.C_FindObjectsFinal(session);
    }
  }

  /** One attribute, or undefined when the object lacks it or the token will not show it. */
  attribute(session: Handle, handle: Handle, type: number): Buffer | undefined {
    try {
      const [a] = this.p11.C_GetAttributeValue(session, handle, [{ type }]);
      return a?.value && a.value.length > 0 ? a.value : undefined;
    } catch (err) {
      if ((ckrName(err) ?? '').startsWith('CKR_ATTRIBUTE_')) return undefined;
      throw err;
    }
  }

  flag(session: Handle, handle: Handle, type: number, otherwise: boolean): boolean {
    const v = this.attribute(session, handle, type);
    return v === undefined ? otherwise : v[0] !== 0;
  }

  /** A CK_ULONG attribute (native byte order and size). */
  ulong(session: Handle, handle: Handle, type: number): number | undefined {
    const v = this.attribute(session, handle, type);
    if (!v) return undefined;
    return v.length >= 8 ? Number(v.readBigUInt64LE(0)) : v.readUInt32LE(0);
  }

  /** The public key of a public key object. */
  publicOf(session: Handle, handle: Handle, ref: string): PublicHalf {
    const type = this.ulong(session, handle, P11.CKA_KEY_TYPE);
    if (type === P11.CKK_RSA) return this.#rsa(session, handle, ref);
    if (type === P11.CKK_EC) {
      const params = this.attribute(session, handle, P11.CKA_EC_PARAMS);
      const point = this.attribute(session, handle, P11.CKA_EC_POINT);
      if (!params || !point) {
        throw new CryptoError('KEY_REFERENCE', `${ref}: the public key object has no EC parameters or point`);
      }
      return ecHalf(curveOfParams(params), point);
    }
    throw this.#unsupportedType(type, ref);
  }

  /** Reads a private key object: its type, what it may do, and its public half (policy-checked). */
  privateFacts(session: Handle, handle: Handle, ref: string, tokenName: string): PrivateKeyFacts {
    const type = this.ulong(session, handle, P11.CKA_KEY_TYPE);
    const label = this.attribute(session, handle, P11.CKA_LABEL)?.toString('utf8');
    const idBytes = this.attribute(session, handle, P11.CKA_ID);
    const id = idBytes ? new Uint8Array(idBytes) : undefined;
    let half: PublicHalf;
    if (type === P11.CKK_RSA) {
      half = this.#rsa(session, handle, ref);
    } else if (type === P11.CKK_EC) {
      const params = this.attribute(session, handle, P11.CKA_EC_PARAMS);
      if (!params)
        throw new CryptoError('KEY_REFERENCE', `${ref}: the token shows no EC parameters for the key`);
      half = this.#ecPublicOfPrivate(session, handle, curveOfParams(params), { label, id }, ref, tokenName);
    } else {
      throw this.#unsupportedType(type, ref);
    }
    this.policy.checkKey(half.publicKey.algorithm);
    return {
      ...half,
      label,
      id,
      canSign: this.flag(session, handle, P11.CKA_SIGN, true),
      canDecrypt: this.flag(session, handle, P11.CKA_DECRYPT, true),
      canUnwrap: this.flag(session, handle, P11.CKA_UNWRAP, false),
      alwaysAuthenticate: this.flag(session, handle, P11.CKA_ALWAYS_AUTHENTICATE, false),
    };
  }

  #rsa(session: Handle, handle: Handle, ref: string): PublicHalf {
    const n = this.attribute(session, handle, P11.CKA_MODULUS);
    const e = this.attribute(session, handle, P11.CKA_PUBLIC_EXPONENT);
    if (!n || !e)
      throw new CryptoError('KEY_REFERENCE', `${ref}: the token shows no RSA modulus or public exponent`);
    const modulus = stripLeadingZeros(n);
    const publicKey = jwkPublicKey({ kty: 'RSA', n: b64u(modulus), e: b64u(stripLeadingZeros(e)) });
    return { publicKey, size: modulus.length, fingerprint: modulus };
  }

  /**
   * The public half of an EC private key. Private EC objects carry no point (CKA_EC_POINT is a public
   * key attribute, PKCS#11 v2.40 §2.3.3), so it comes from the public object with the same CKA_ID and
   * label (then either), or from CKA_PUBLIC_KEY_INFO where the token fills it in.
   */
  #ecPublicOfPrivate(
    session: Handle,
    handle: Handle,
    curve: EcCurve,
    names: { label: string | undefined; id: Uint8Array | undefined },
    ref: string,
    tokenName: string,
  ): PublicHalf {
    const { label, id } = names;
    const tries: ObjectSelector[] = [];
    if (id && label !== undefined) tries.push({ id, object: label });
    if (id) tries.push({ id });
    if (label !== undefined) tries.push({ object: label });
    for (const sel of tries) {
      const found = this.find(session, P11.CKO_PUBLIC_KEY, sel).filter(
        (h) => this.ulong(session, h, P11.CKA_KEY_TYPE) === P11.CKK_EC,
      );
      if (found.length > 1) {
        throw new CryptoError(
          'KEY_REFERENCE',
          `${found.length} EC public keys in ${tokenName} match ${describeObject(sel)}; cannot tell which belongs to ${ref}`,
        );
      }
      const point = found[0] && this.attribute(session, found[0], P11.CKA_EC_POINT);
      if (point) return ecHalf(curve, point);
    }
    const spki = this.attribute(session, handle, CKA_PUBLIC_KEY_INFO);
    if (spki) {
      const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
      const x = Buffer.from(jwk.x ?? '', 'base64url');
      const y = Buffer.from(jwk.y ?? '', 'base64url');
      return ecHalf(curve, new Uint8Array([4, ...x, ...y]));
    }
    throw new CryptoError(
      'KEY_REFERENCE',
      `${tokenName} holds no public key for ${ref}: store the public key object beside it with the same CKA_ID`,
    );
  }

  #unsupportedType(type: number | undefined, ref: string): CryptoError {
    if (type === CKK_EC_EDWARDS) {
      // Described as Ed25519 first, so that FIPS mode refuses it by rule (fips.no-ed25519).
      this.policy.checkKey({ type: 'ed25519' });
      return new CryptoError(
        'UNSUPPORTED',
        `${ref} is an EdDSA key; the pkcs11 backend uses EC P-256/P-384 and RSA keys`,
      );
    }
    return new CryptoError(
      'UNSUPPORTED',
      `${ref} has key type ${type ?? 'unknown'}; sealgate uses EC P-256/P-384 and RSA keys`,
    );
  }
}

function ecHalf(curve: EcCurve, value: Uint8Array): PublicHalf {
  const point = ecPointOf(value, curve);
  const size = EC_FIELD_BYTES[curve];
  const publicKey = jwkPublicKey({
    kty: 'EC',
    crv: curve,
    x: b64u(point.subarray(1, 1 + size)),
    y: b64u(point.subarray(1 + size)),
  });
  return { publicKey, size, fingerprint: point };
}

function jwkPublicKey(
  jwk: { kty: 'RSA'; n: string; e: string } | { kty: 'EC'; crv: EcCurve; x: string; y: string },
): PublicKey {
  try {
    return new OpenSslPublicKey(createPublicKey({ key: jwk, format: 'jwk' }));
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('INVALID_INPUT', `the token's public key is not valid: ${(err as Error).message}`);
  }
}
