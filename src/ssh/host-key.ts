/**
 * The gate's SSH host key, checked for the client leg. One function for both callers: the start-up checks
 * (`config check` and `serve`, src/cli/startup-checks.ts) and startGate, so a key that one refuses the
 * other refuses too, with the same words.
 *
 * - ECDSA P-256 or P-384 only: ssh2's Server always offers ssh-rsa (SHA-1) for an RSA host key, which FIPS
 *   mode forbids, and the key is handed to ssh2 as SEC1 PEM, which only EC keys have (ssh-host-key.ts).
 * - A software key: ssh2 signs the key exchange itself, synchronously, from PEM (ssh-host-key.ts), so a
 *   host key held in a token cannot be used.
 * - Its algorithm must be in the client leg's server_host_key list, or no client could connect.
 */
import type { Config } from '../config/schema.js';
import { sshServerHostKeyPem, type CryptoProvider, type PrivateKey } from '../crypto/index.js';
import { legAlgorithms } from './algorithms.js';

export interface GateHostKey {
  /** SEC1 PEM, the form ssh2's Server loads. */
  readonly pem: string;
  readonly algorithm: 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384';
}

/** What ssh2 needs from the host key, or the problem (without the config path, which callers add). */
export function gateHostKey(
  provider: CryptoProvider,
  config: Pick<Config, 'ssh'>,
  key: PrivateKey,
): GateHostKey | { problem: string } {
  const alg = key.algorithm;
  if (alg.type !== 'ec') {
    const what = alg.type === 'rsa' ? `an RSA-${alg.bits} key` : 'an Ed25519 key';
    const why = alg.type === 'rsa' ? ' (ssh2 offers ssh-rsa/SHA-1 for RSA host keys)' : '';
    return { problem: `is ${what}; the SSH host key must be ECDSA P-256 or P-384${why}` };
  }
  if (key.backend !== 'openssl') {
    return {
      problem:
        'is held in a token; ssh2 signs the key exchange itself, so the SSH host key must be a file: PEM key',
    };
  }
  const algorithm = alg.curve === 'P-384' ? 'ecdsa-sha2-nistp384' : 'ecdsa-sha2-nistp256';
  if (!legAlgorithms(provider.policy, config, 'client_leg').serverHostKey.includes(algorithm)) {
    return {
      problem: `is ${algorithm}, which ssh.client_leg.server_host_key does not list; no client could connect`,
    };
  }
  return { pem: sshServerHostKeyPem(provider, key), algorithm };
}
