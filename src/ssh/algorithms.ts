/**
 * The algorithm lists each leg hands to ssh2. Always explicit: ssh2 filters its own defaults by
 * `crypto.getCiphers()`, which knows nothing of the FIPS provider (design brief §4), so a leg without
 * explicit lists could offer what FIPS mode forbids.
 *
 * - The base is the policy's default for the mode (`Policy.defaultSshAlgorithms()`: AES-GCM only in FIPS
 *   mode, because ssh2's native binding cannot run AES-CTR under the FIPS provider).
 * - A list set in the config replaces the default list of its kind. The loader has already checked it
 *   against the policy (src/config/load.ts), so nothing here re-decides what is approved.
 */
import type { Algorithms } from 'ssh2';
import { toSsh2Algorithms } from '../config/load.js';
import type { Config, SshAlgorithmLists } from '../config/schema.js';
import type { Policy, SshAlgorithms } from '../crypto/index.js';

export type Leg = 'client_leg' | 'upstream_leg';

/** The lists for one leg: the policy's defaults with the config's lists laid over them. */
export function legAlgorithms(policy: Policy, config: Pick<Config, 'ssh'>, leg: Leg): SshAlgorithms {
  const overrides: SshAlgorithmLists = config.ssh?.[leg] ?? {};
  return { ...policy.defaultSshAlgorithms(), ...toSsh2Algorithms(overrides) };
}

/** ssh2's type for the lists; its literal unions are narrower than the names the policy deals in. */
export function toSsh2(lists: SshAlgorithms): Algorithms {
  return {
    kex: [...lists.kex],
    cipher: [...lists.cipher],
    hmac: [...lists.hmac],
    serverHostKey: [...lists.serverHostKey],
    compress: [...lists.compress],
  } as Algorithms;
}

/** The host key algorithms that sign with a key of this type (RFC 8332: RSA keys sign as rsa-sha2-*). */
function algorithmsForKeyType(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [keyType];
}

/**
 * The upstream leg's host key algorithms, narrowed to the types of the target's pinned keys (in the
 * allowed list's order), as OpenSSH does with known_hosts: a target that holds an Ed25519 and an ECDSA
 * key must present the one that is pinned, not whichever it prefers. Empty when nothing pinned is allowed.
 */
export function pinnedHostKeyAlgorithms(
  allowed: readonly string[],
  pinnedKeyTypes: readonly string[],
): string[] {
  const wanted = new Set(pinnedKeyTypes.flatMap(algorithmsForKeyType));
  return allowed.filter((a) => wanted.has(a));
}
