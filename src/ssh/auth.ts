/**
 * User authentication on the client leg: public keys on an allow-list (RFC 4252 §7).
 *
 * ssh2's Server does NOT verify publickey signatures: it parses the request, converts an ECDSA signature
 * to DER, builds the signed data (session id || request, `ctx.blob`) and leaves the check to the
 * `authentication` handler (node_modules/ssh2/lib/server.js, PKAuthContext; README, "Server examples").
 * So this module decides, and the gate only relays the decision:
 *
 * - the offered key blob must be on the user's list (compared in constant time with every entry);
 * - a request without a signature is the client asking "would this key do?" (RFC 4252 §7). The answer is
 *   SSH_MSG_USERAUTH_PK_OK, never success: ssh2's PKAuthContext.accept() sends PK_OK when there is no
 *   signature, and that is the only case in which the gate calls it without having verified one;
 * - a request with a signature is accepted only if the signature verifies, through the provider, over
 *   `ctx.blob` with the allow-listed key (not the key the client sent) and an approved hash: never
 *   `ssh-rsa` (SHA-1).
 * Every other method (none, password, keyboard-interactive, hostbased) is refused.
 */
import { readFileSync } from 'node:fs';
import type { User } from '../config/schema.js';
import { hashForCurve, type CryptoProvider, type PublicKey, type SignatureScheme } from '../crypto/index.js';

export interface AllowedKey {
  readonly blob: Uint8Array;
  readonly publicKey: PublicKey;
  /** OpenSSH's `SHA256:…` fingerprint, for logs and AUTH_RESULT records. */
  readonly fingerprint: string;
  /** Where it was configured, e.g. `users[0].authorized_keys[1]` or `/etc/keys/bob:3`. */
  readonly source: string;
}

export interface AllowListProblem {
  readonly source: string;
  readonly message: string;
}

/** OpenSSH's fingerprint format: `SHA256:` and unpadded base64 of SHA-256(blob). */
export function fingerprint(provider: CryptoProvider, blob: Uint8Array): string {
  return `SHA256:${Buffer.from(provider.digest('sha256', blob)).toString('base64').replace(/=+$/, '')}`;
}

export class AllowList {
  private constructor(
    private readonly byUser: ReadonlyMap<string, readonly AllowedKey[]>,
    /** Lines that were skipped, with why: the caller logs them at start-up. */
    readonly problems: readonly AllowListProblem[],
  ) {}

  /**
   * Reads every user's keys (config lines and authorized_keys files) through the provider, which applies
   * the policy (RSA ≥ 2048; no Ed25519 in FIPS mode). A line that cannot be used is skipped and reported,
   * never half-used: a line with options (`from=…`, `command=…`) is skipped, because ignoring a
   * restriction would widen access.
   */
  static load(provider: CryptoProvider, users: readonly User[]): AllowList {
    const byUser = new Map<string, AllowedKey[]>();
    const problems: AllowListProblem[] = [];
    users.forEach((user, u) => {
      const keys: AllowedKey[] = [];
      const add = (text: string, source: string) => {
        const key = parseAuthorizedKey(provider, text, source);
        if ('problem' in key) problems.push({ source, message: key.problem });
        else keys.push(key);
      };
      (user.authorized_keys ?? []).forEach((line, i) => add(line, `users[${u}].authorized_keys[${i}]`));
      if (user.authorized_keys_file) {
        const file = user.authorized_keys_file;
        let text = '';
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          problems.push({
            source: file,
            message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          });
        }
        text.split(/\r?\n/).forEach((line, i) => {
          if (line.trim() !== '' && !line.trim().startsWith('#')) add(line, `${file}:${i + 1}`);
        });
      }
      byUser.set(user.name, keys);
    });
    return new AllowList(byUser, problems);
  }

  keysFor(userName: string): readonly AllowedKey[] {
    return this.byUser.get(userName) ?? [];
  }
}

const KEY_TYPE = /^(ssh-|ecdsa-sha2-|sk-)/;

function parseAuthorizedKey(
  provider: CryptoProvider,
  text: string,
  source: string,
): AllowedKey | { problem: string } {
  const line = text.trim();
  const [type, b64] = line.split(/\s+/);
  if (!type || !KEY_TYPE.test(type)) {
    return { problem: 'authorized_keys options (from=, command=, …) are not supported; line skipped' };
  }
  try {
    const publicKey = provider.importPublicKey(line);
    const blob = new Uint8Array(Buffer.from(b64 ?? '', 'base64'));
    return { blob, publicKey, fingerprint: fingerprint(provider, blob), source };
  } catch (err) {
    return { problem: `${(err as Error).message}; line skipped` };
  }
}

/** One `publickey` request, as ssh2 parsed it. */
export interface PublicKeyAttempt {
  /** ssh2's `ctx.key.algo`: the key's type (`ssh-rsa` also for rsa-sha2-256/512 requests). */
  readonly algo: string;
  /** `ctx.key.data`: the public key blob the client offers. */
  readonly blob: Uint8Array;
  /** `ctx.signature`: DER for ECDSA (ssh2 converts it), raw for RSA and Ed25519. */
  readonly signature?: Uint8Array;
  /** `ctx.blob`: the data the client signed (RFC 4252 §7). */
  readonly signedData?: Uint8Array;
  /** `ctx.hashAlgo`: `sha256` / `sha512` for rsa-sha2-256 / -512; undefined for ssh-rsa (SHA-1). */
  readonly hashAlgo?: string;
}

export type AuthDecision =
  /** The key is on the list and nothing was signed yet: answer PK_OK, not success. */
  | { readonly kind: 'key-ok'; readonly key: AllowedKey }
  | { readonly kind: 'accept'; readonly key: AllowedKey }
  | { readonly kind: 'reject'; readonly reason: string; readonly fingerprint: string };

export function decidePublicKey(
  provider: CryptoProvider,
  keys: readonly AllowedKey[],
  attempt: PublicKeyAttempt,
): AuthDecision {
  const offered = fingerprint(provider, attempt.blob);
  // Every entry is compared, so the time taken does not say which entry (if any) matched.
  let key: AllowedKey | undefined;
  for (const k of keys) if (provider.equal(k.blob, attempt.blob)) key = k;
  if (!key) return { kind: 'reject', reason: 'key not on the allow-list', fingerprint: offered };
  if (!attempt.signature || !attempt.signedData) return { kind: 'key-ok', key };

  const scheme = signatureScheme(key, attempt);
  if (typeof scheme === 'string') return { kind: 'reject', reason: scheme, fingerprint: key.fingerprint };
  let ok = false;
  try {
    ok = provider.verify(key.publicKey, attempt.signedData, attempt.signature, scheme);
  } catch (err) {
    return { kind: 'reject', reason: (err as Error).message, fingerprint: key.fingerprint };
  }
  return ok
    ? { kind: 'accept', key }
    : { kind: 'reject', reason: 'signature does not verify', fingerprint: key.fingerprint };
}

/** The scheme for the allow-listed key, or why the request's algorithm is refused. */
function signatureScheme(key: AllowedKey, attempt: PublicKeyAttempt): SignatureScheme | string {
  const alg = key.publicKey.algorithm;
  switch (alg.type) {
    case 'ec': {
      const expected = alg.curve === 'P-384' ? 'ecdsa-sha2-nistp384' : 'ecdsa-sha2-nistp256';
      if (attempt.algo !== expected) return `algorithm ${attempt.algo} does not fit a ${expected} key`;
      // RFC 5656 §6.2.1: the hash follows the curve.
      return { scheme: 'ecdsa', hash: hashForCurve(alg.curve), encoding: 'der' };
    }
    case 'rsa': {
      if (attempt.algo !== 'ssh-rsa') return `algorithm ${attempt.algo} does not fit an RSA key`;
      const hash = attempt.hashAlgo;
      if (hash !== 'sha256' && hash !== 'sha512') {
        return 'ssh-rsa (SHA-1) signatures are refused; use rsa-sha2-256 or rsa-sha2-512';
      }
      return { scheme: 'rsa-pkcs1v15', hash }; // RFC 8332 §3
    }
    case 'ed25519':
      if (attempt.algo !== 'ssh-ed25519') return `algorithm ${attempt.algo} does not fit an Ed25519 key`;
      return { scheme: 'ed25519' };
  }
}
