/**
 * The gate's SSH host key, in the form ssh2's Server loads. ssh2 parses SEC1 ("EC PRIVATE KEY") and
 * OpenSSH private keys but not PKCS#8 (node_modules/ssh2/lib/protocol/keyParser.js), and it signs the key
 * exchange itself, synchronously, so the host key has to be handed over as PEM: a host key in a token is
 * not possible with ssh2 today (docs/OPERATIONS.md).
 *
 * ECDSA only: ssh2's Server always offers ssh-rsa (SHA-1) for an RSA host key, which FIPS mode forbids.
 */
import { createPrivateKey } from 'node:crypto';
import { CryptoError } from './errors.js';
import type { CryptoProvider, PrivateKey } from './provider.js';

/** SEC1 PEM of an ECDSA P-256/P-384 host key; throws for other keys and for keys a token holds. */
export function sshServerHostKeyPem(provider: CryptoProvider, key: PrivateKey): string {
  if (key.algorithm.type !== 'ec') {
    throw new CryptoError(
      'WRONG_KEY_TYPE',
      `${key.ref}: the SSH host key must be ECDSA P-256 or P-384, not ${key.algorithm.type} (ssh2 offers ssh-rsa/SHA-1 for RSA host keys)`,
    );
  }
  const pkcs8 = provider.exportPrivateKey(key); // throws UNSUPPORTED for a token key, with the reason
  return createPrivateKey(pkcs8).export({ type: 'sec1', format: 'pem' }).toString();
}
