/** SHA-256 for the seal tests. Production code gets it from the crypto provider instead. */
// eslint-disable-next-line no-restricted-imports -- tests compute reference hashes directly
import { createHash } from 'node:crypto';

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
