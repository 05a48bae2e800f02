/**
 * Attribute templates for the keys sealgate makes or stores in a token (PKCS#11 v2.40 §4.8, §4.9).
 *
 * Every private key is a token object that is CKA_PRIVATE (only after login), CKA_SENSITIVE (its
 * secret attributes never leave the token in the clear) and not CKA_EXTRACTABLE (it cannot even be
 * wrapped out). One key, one purpose (SP 800-57 Part 1 §5.2): a key signs, or decrypts/unwraps, not
 * both. The public key object is stored beside it with the same CKA_LABEL and CKA_ID, readable
 * without login, so that `keys export-public` needs no PIN.
 */
import type { JsonWebKey } from 'node:crypto';
import { CryptoError } from '../errors.js';
import type { KeyAlgorithm, KeySpec } from '../provider.js';
import { derOctetString, EC_PARAMS } from './encoding.js';
import { P11 } from './module.js';

/**
 * What a generated or imported key is for. `unwrap` is a decryption key that may only C_UnwrapKey
 * (CKA_DECRYPT false), as some HSM policies require for key-encryption keys.
 */
export type KeyUsage = 'sign' | 'decrypt' | 'unwrap';

export type Template = { type: number; value: number | boolean | string | Buffer }[];

function named(label: string, id: Uint8Array): Template {
  return [
    { type: P11.CKA_TOKEN, value: true },
    { type: P11.CKA_LABEL, value: label },
    { type: P11.CKA_ID, value: Buffer.from(id) },
  ];
}

function privateKey(use: KeyUsage): Template {
  return [
    { type: P11.CKA_PRIVATE, value: true },
    { type: P11.CKA_SENSITIVE, value: true },
    { type: P11.CKA_EXTRACTABLE, value: false },
    { type: P11.CKA_SIGN, value: use === 'sign' },
    { type: P11.CKA_DECRYPT, value: use === 'decrypt' },
    { type: P11.CKA_UNWRAP, value: use !== 'sign' },
  ];
}

function publicKey(use: KeyUsage): Template {
  return [
    { type: P11.CKA_PRIVATE, value: false },
    { type: P11.CKA_VERIFY, value: use === 'sign' },
    { type: P11.CKA_ENCRYPT, value: use === 'decrypt' },
    { type: P11.CKA_WRAP, value: use !== 'sign' },
  ];
}

/** The usage a key gets when none is asked for: EC keys sign, RSA keys decrypt (recipients). */
export function defaultUsage(type: 'ec' | 'rsa', usage: KeyUsage | undefined): KeyUsage {
  const use = usage ?? (type === 'ec' ? 'sign' : 'decrypt');
  if (type === 'ec' && use !== 'sign') {
    throw new CryptoError('WRONG_KEY_TYPE', `an EC key can only sign here, not ${use}`);
  }
  return use;
}

/** C_GenerateKeyPair: the mechanism and both templates. */
export function generationTemplates(
  spec: Extract<KeySpec, { type: 'ec' | 'rsa' }>,
  use: KeyUsage,
  label: string,
  id: Uint8Array,
): { mechanism: { mechanism: number }; publicTemplate: Template; privateTemplate: Template } {
  const common = named(label, id);
  const algorithm: Template =
    spec.type === 'ec'
      ? [{ type: P11.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[spec.curve], 'hex') }]
      : [
          { type: P11.CKA_MODULUS_BITS, value: spec.bits },
          { type: P11.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ];
  return {
    mechanism: { mechanism: spec.type === 'ec' ? P11.CKM_EC_KEY_PAIR_GEN : P11.CKM_RSA_PKCS_KEY_PAIR_GEN },
    publicTemplate: [...common, ...publicKey(use), ...algorithm],
    privateTemplate: [...common, ...privateKey(use)],
  };
}

/** C_CreateObject for a software key (RSA with its CRT components, or EC), and its public object. */
export function importTemplates(
  jwk: JsonWebKey,
  alg: KeyAlgorithm,
  use: KeyUsage,
  label: string,
  id: Uint8Array,
): { publicTemplate: Template; privateTemplate: Template } {
  const b = (v: string | undefined): Buffer => Buffer.from(v ?? '', 'base64url');
  const common = named(label, id);
  const cls = (c: number) => ({ type: P11.CKA_CLASS, value: c });
  if (alg.type === 'rsa' && jwk.kty === 'RSA') {
    const rsa: Template = [
      { type: P11.CKA_KEY_TYPE, value: P11.CKK_RSA },
      { type: P11.CKA_MODULUS, value: b(jwk.n) },
      { type: P11.CKA_PUBLIC_EXPONENT, value: b(jwk.e) },
    ];
    return {
      privateTemplate: [
        cls(P11.CKO_PRIVATE_KEY),
        ...common,
        ...rsa,
        ...privateKey(use),
        { type: P11.CKA_PRIVATE_EXPONENT, value: b(jwk.d) },
        { type: P11.CKA_PRIME_1, value: b(jwk.p) },
        { type: P11.CKA_PRIME_2, value: b(jwk.q) },
        { type: P11.CKA_EXPONENT_1, value: b(jwk.dp) },
        { type: P11.CKA_EXPONENT_2, value: b(jwk.dq) },
        { type: P11.CKA_COEFFICIENT, value: b(jwk.qi) },
      ],
      publicTemplate: [cls(P11.CKO_PUBLIC_KEY), ...common, ...rsa, ...publicKey(use)],
    };
  }
  if (alg.type === 'ec' && jwk.kty === 'EC') {
    const ec: Template = [
      { type: P11.CKA_KEY_TYPE, value: P11.CKK_EC },
      { type: P11.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[alg.curve], 'hex') },
    ];
    const point = new Uint8Array([4, ...b(jwk.x), ...b(jwk.y)]);
    return {
      privateTemplate: [
        cls(P11.CKO_PRIVATE_KEY),
        ...common,
        ...ec,
        ...privateKey(use),
        { type: P11.CKA_VALUE, value: b(jwk.d) },
      ],
      publicTemplate: [
        cls(P11.CKO_PUBLIC_KEY),
        ...common,
        ...ec,
        ...publicKey(use),
        { type: P11.CKA_EC_POINT, value: Buffer.from(derOctetString(point)) },
      ],
    };
  }
  throw new CryptoError('UNSUPPORTED', `the pkcs11 backend stores EC and RSA keys, not ${alg.type}`);
}
