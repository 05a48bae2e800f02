/**
 * RFC 7512 `pkcs11:` URIs as sealgate uses them: which token, and which object in it.
 *
 * - Token attributes (§2.3): `token` (CKA label of the token), `serial`, `model`, `manufacturer`, and
 *   `slot-id`. At least `token` or `serial` must be given: a gate must never pick "whichever token
 *   comes first".
 * - Object attributes: `object` (CKA_LABEL), `id` (CKA_ID, binary, percent-encoded) and `type`. At least
 *   `object` or `id` must be given.
 * - Library attributes (`library-manufacturer`, `library-description`) are checked against the module.
 *
 * Any other path attribute is refused rather than ignored: a URI that says more than we understand
 * must not silently match more than its author meant. Query attributes (`pin-value`, `pin-source`,
 * `module-path`) are refused too: the PIN and the module come from the config, a file or the
 * environment, never from a key reference that ends up in logs.
 */
import { CryptoError } from '../errors.js';
import { parseKeyRef } from '../keyref.js';

export type ObjectType = 'private' | 'public';

export interface TokenSelector {
  readonly token?: string;
  readonly serial?: string;
  readonly model?: string;
  readonly manufacturer?: string;
  readonly slotId?: bigint;
}

export interface Pkcs11Uri {
  readonly text: string;
  readonly token: TokenSelector;
  /** CKA_LABEL */
  readonly object?: string;
  /** CKA_ID */
  readonly id?: Uint8Array;
  readonly type?: ObjectType;
  readonly libraryManufacturer?: string;
  readonly libraryDescription?: string;
}

const KNOWN = new Set([
  'token',
  'serial',
  'model',
  'manufacturer',
  'slot-id',
  'object',
  'id',
  'type',
  'library-manufacturer',
  'library-description',
]);

function bad(text: string, why: string): never {
  throw new CryptoError('KEY_REFERENCE', `key reference "${text}": ${why}`);
}

/** Parses a `pkcs11:` key reference. Throws KEY_REFERENCE naming what is wrong. */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  const ref = parseKeyRef(text);
  if (ref.scheme !== 'pkcs11') bad(text, 'is not a pkcs11: URI');
  const query = text.indexOf('?');
  if (query >= 0) {
    const names = text
      .slice(query + 1)
      .split('&')
      .map((q) => q.split('=')[0]);
    bad(
      text,
      `query attributes (${names.join(', ')}) are not accepted: the PIN comes from pkcs11.pin_file or ` +
        'pkcs11.pin_env, and the module from pkcs11.module',
    );
  }
  const a = ref.attributes;
  const unknown = Object.keys(a).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    bad(text, `unsupported attribute(s) ${unknown.join(', ')}; supported: ${[...KNOWN].join(', ')}`);
  }
  if (a.token === undefined && a.serial === undefined) {
    bad(text, 'names no token; add token=<label> (or serial=<serial>)');
  }
  if (a.object === undefined && a.id === undefined) {
    bad(text, 'names no key; add object=<label> (or id=<percent-encoded CKA_ID>)');
  }
  if (a.type !== undefined && a.type !== 'private' && a.type !== 'public') {
    bad(text, `type=${a.type} is not a key type sealgate uses (private or public)`);
  }
  let slotId: bigint | undefined;
  if (a['slot-id'] !== undefined) {
    if (!/^\d+$/.test(a['slot-id'])) bad(text, 'slot-id must be a decimal number');
    slotId = BigInt(a['slot-id']);
  }
  if (a.id !== undefined && a.id.length === 0) bad(text, 'id is empty');
  return {
    text,
    token: {
      ...(a.token !== undefined ? { token: a.token } : {}),
      ...(a.serial !== undefined ? { serial: a.serial } : {}),
      ...(a.model !== undefined ? { model: a.model } : {}),
      ...(a.manufacturer !== undefined ? { manufacturer: a.manufacturer } : {}),
      ...(slotId !== undefined ? { slotId } : {}),
    },
    ...(a.object !== undefined ? { object: a.object } : {}),
    ...(a.id !== undefined ? { id: new Uint8Array(Buffer.from(a.id, 'latin1')) } : {}),
    ...(a.type !== undefined ? { type: a.type as ObjectType } : {}),
    ...(a['library-manufacturer'] !== undefined ? { libraryManufacturer: a['library-manufacturer'] } : {}),
    ...(a['library-description'] !== undefined ? { libraryDescription: a['library-description'] } : {}),
  };
}

/** RFC 3986 unreserved characters, plus those RFC 7512 §2.3 allows unescaped in a path value. */
const PLAIN = /[A-Za-z0-9\-._~:[\]@!$'()*+,=]/;

function encodeText(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && PLAIN.test(ch) ? ch : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

function encodeBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

/** The canonical URI for a key: token label, object label, id (every byte escaped), type. */
export function formatPkcs11Uri(parts: {
  token: string;
  object?: string;
  id?: Uint8Array;
  type?: ObjectType;
}): string {
  const attrs = [`token=${encodeText(parts.token)}`];
  if (parts.object !== undefined) attrs.push(`object=${encodeText(parts.object)}`);
  if (parts.id !== undefined && parts.id.length > 0) attrs.push(`id=${encodeBytes(parts.id)}`);
  if (parts.type) attrs.push(`type=${parts.type}`);
  return `pkcs11:${attrs.join(';')}`;
}

/** `token "sealgate"` or `token with serial 0123`: how messages name the token a URI selects. */
export function describeTokenSelector(sel: TokenSelector): string {
  if (sel.token !== undefined) return `token "${sel.token}"`;
  return `token with serial ${sel.serial ?? '?'}`;
}

/** `object="checkpoint-signer" id=%01%02`: how messages name the object a URI selects. */
export function describeObject(uri: Pick<Pkcs11Uri, 'object' | 'id'>): string {
  const parts: string[] = [];
  if (uri.object !== undefined) parts.push(`object="${uri.object}"`);
  if (uri.id !== undefined) parts.push(`id=${encodeBytes(uri.id)}`);
  return parts.join(' ');
}
