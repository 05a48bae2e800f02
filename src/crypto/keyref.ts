/**
 * Key references: how configs and commands name keys without holding them.
 * - `file:/path/key.pem` (or `file:relative.pem`): a PEM file.
 * - `pkcs11:token=…;object=…;id=…` (RFC 7512): a key inside a token; served by the pkcs11 backend.
 */
import { CryptoError } from './errors.js';

export type KeyRef =
  | { readonly scheme: 'file'; readonly path: string; readonly text: string }
  | {
      readonly scheme: 'pkcs11';
      /** Path attributes, percent-decoded: UTF-8 text, except `id`, whose bytes are a latin1 string. */
      readonly attributes: Readonly<Record<string, string>>;
      readonly text: string;
    };

export function parseKeyRef(text: string): KeyRef {
  if (text.startsWith('file:')) {
    const path = text.slice('file:'.length);
    if (!path) throw new CryptoError('KEY_REFERENCE', `key reference "${text}" names no file`);
    return { scheme: 'file', path, text };
  }
  if (text.startsWith('pkcs11:')) {
    const attributes: Record<string, string> = {};
    // RFC 7512 §2.3: the path part is `;`-separated attr=value pairs; the query part follows `?`.
    const [pathPart = ''] = text.slice('pkcs11:'.length).split('?');
    for (const pair of pathPart.split(';').filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq <= 0)
        throw new CryptoError('KEY_REFERENCE', `key reference "${text}": "${pair}" is not attr=value`);
      const name = pair.slice(0, eq);
      try {
        // `id` is binary (RFC 7512 §2.3: CKA_ID, any bytes), so it is decoded byte by byte into a latin1
        // string (one char per byte); the other attributes are UTF-8 text.
        attributes[name] =
          name === 'id' ? percentDecodeBytes(pair.slice(eq + 1)) : decodeURIComponent(pair.slice(eq + 1));
      } catch {
        throw new CryptoError('KEY_REFERENCE', `key reference "${text}": bad percent-encoding in "${pair}"`);
      }
    }
    return { scheme: 'pkcs11', attributes, text };
  }
  throw new CryptoError(
    'KEY_REFERENCE',
    `key reference "${text}" must start with "file:" (a PEM path) or "pkcs11:" (an RFC 7512 URI)`,
  );
}

/** Percent-decodes `text` into a latin1 string, one character per byte; throws on a bad escape. */
function percentDecodeBytes(text: string): string {
  return text.replace(/%(..)?/g, (_m, hex: string | undefined) => {
    if (!hex || !/^[0-9A-Fa-f]{2}$/.test(hex)) throw new URIError('bad percent-encoding');
    return String.fromCharCode(parseInt(hex, 16));
  });
}
