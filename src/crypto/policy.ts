/**
 * The algorithm policy: the one place that says what sealgate may use, in normal mode and in FIPS mode.
 *
 * Two layers of rules:
 * - `suite.*` rules hold in every mode. They pin the seal suite (docs/FORMAT.md, suite 1): OAEP only with
 *   SHA-256/MGF1-SHA-256, AES-256-GCM only with a 96-bit IV and a 128-bit tag, RSA keys of 2048 bits or more.
 * - `fips.*` rules hold in FIPS mode. The OpenSSL 3.0 FIPS provider still generates and uses X25519 and
 *   Ed25519 keys (checked on this machine), so refusing them is this layer's job, not the provider's.
 *
 * Every refusal throws CryptoError('POLICY_REFUSED') whose message ends with the rule's name in brackets.
 */
import { refuse, type PolicyRule } from './errors.js';
import type { HashAlg, KeyAlgorithm, KeySpec, OaepParams, SignatureScheme } from './provider.js';

export const SEAL_SUITE_1 = {
  id: 1,
  keyWrap: 'RSA-OAEP-SHA256-MGF1-SHA256',
  recordCipher: 'AES-256-GCM',
  ivBytes: 12,
  tagBytes: 16,
  kdf: 'HKDF-SHA-512',
  merkleHash: 'SHA-256',
  checkpointSignature: 'ECDSA-P384-SHA384',
  recipientMinBits: 2048,
  recipientRecommendedBits: 3072,
} as const;

export const MIN_RSA_BITS = 2048;
export const APPROVED_HASHES: readonly HashAlg[] = ['sha256', 'sha384', 'sha512'];

/** SSH algorithm lists, in ssh2's vocabulary, for one leg. */
export interface SshAlgorithms {
  kex: string[];
  cipher: string[];
  hmac: string[];
  serverHostKey: string[];
  compress: string[];
}
export type SshAlgorithmKind = keyof SshAlgorithms;

/**
 * FIPS-approved SSH algorithms (SP 800-131A / SP 800-135 as applied to SSH), for both legs. User keys
 * are checked separately (`FIPS_SSH_USER_KEY_ALGORITHMS`).
 */
export const FIPS_APPROVED_SSH: Readonly<SshAlgorithms> = {
  kex: [
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group14-sha256',
    'diffie-hellman-group16-sha512',
  ],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  serverHostKey: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384'],
  compress: ['none'],
};

export const FIPS_SSH_USER_KEY_ALGORITHMS: readonly string[] = [
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'rsa-sha2-256',
  'rsa-sha2-512',
];

/**
 * What the gate offers by default in FIPS mode. The ciphers are the GCM subset of the approved list:
 * ssh2's native binding runs AES-GCM under the FIPS provider but fails on CTR (`GenericDecipherBinding`,
 * error:0308010C unsupported; docs/FIPS.md), and we never offer a cipher this build cannot run.
 */
export const FIPS_DEFAULT_SSH: Readonly<SshAlgorithms> = {
  ...FIPS_APPROVED_SSH,
  cipher: ['aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
};

/** Approved ciphers that the current ssh2 build cannot run in FIPS mode, with the reason. */
export const FIPS_UNRUNNABLE_CIPHERS: Readonly<Record<string, string>> = {
  'aes128-ctr': 'ssh2 native binding cannot run AES-CTR under the FIPS provider',
  'aes192-ctr': 'ssh2 native binding cannot run AES-CTR under the FIPS provider',
  'aes256-ctr': 'ssh2 native binding cannot run AES-CTR under the FIPS provider',
};

/** Normal mode: modern algorithms only; no SHA-1, no CBC, no DSA, no ssh-rsa. */
export const NORMAL_DEFAULT_SSH: Readonly<SshAlgorithms> = {
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group14-sha256',
    'diffie-hellman-group16-sha512',
  ],
  cipher: [
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
    'chacha20-poly1305@openssh.com',
    'aes128-ctr',
    'aes192-ctr',
    'aes256-ctr',
  ],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  serverHostKey: [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'rsa-sha2-512',
    'rsa-sha2-256',
  ],
  compress: ['none'],
};

/** Which named rule refuses an SSH algorithm in FIPS mode; undefined when it is approved. */
export function fipsRuleForSshAlgorithm(kind: SshAlgorithmKind, name: string): PolicyRule | undefined {
  if (FIPS_APPROVED_SSH[kind].includes(name)) return undefined;
  const n = name.toLowerCase();
  if (n.includes('curve25519')) return 'fips.no-x25519';
  if (n.includes('curve448')) return 'fips.no-x448';
  if (n.includes('ed25519')) return 'fips.no-ed25519';
  if (n.includes('ed448')) return 'fips.no-ed448';
  if (n.includes('chacha20')) return 'fips.no-chacha20';
  if (n.includes('md5')) return 'fips.no-md5';
  if (n === 'ssh-rsa') return 'fips.no-ssh-rsa';
  if (n.includes('group-exchange')) return 'fips.no-dh-group-exchange';
  if (n.includes('sha1') || n === 'ssh-dss') return 'fips.no-sha1-signatures';
  if (kind === 'compress') return 'fips.no-compression';
  return 'fips.approved-ssh-algorithm';
}

export interface PolicyViolation {
  readonly path: string;
  readonly rule: PolicyRule;
  readonly message: string;
}

export class Policy {
  constructor(readonly fips: boolean) {}

  /** The lists to hand to ssh2 for a leg: always explicit, because ssh2 filters its own defaults by
   * crypto.getCiphers(), which knows nothing of providers. */
  defaultSshAlgorithms(): SshAlgorithms {
    const src = this.fips ? FIPS_DEFAULT_SSH : NORMAL_DEFAULT_SSH;
    return {
      kex: [...src.kex],
      cipher: [...src.cipher],
      hmac: [...src.hmac],
      serverHostKey: [...src.serverHostKey],
      compress: [...src.compress],
    };
  }

  /** Every problem with configured SSH lists, each naming `path` (e.g. `ssh.client_leg.cipher[2]`). */
  sshAlgorithmViolations(path: string, lists: Partial<SshAlgorithms>): PolicyViolation[] {
    const out: PolicyViolation[] = [];
    for (const kind of Object.keys(lists) as SshAlgorithmKind[]) {
      const names = lists[kind] ?? [];
      names.forEach((name, i) => {
        const at = `${path}.${kind}[${i}]`;
        if (this.fips) {
          const rule = fipsRuleForSshAlgorithm(kind, name);
          if (rule) {
            out.push({ path: at, rule, message: `${name} is not FIPS-approved` });
            return;
          }
          if (kind === 'cipher' && FIPS_UNRUNNABLE_CIPHERS[name]) {
            out.push({
              path: at,
              rule: 'fips.approved-ssh-algorithm',
              message: `${name} is approved, but ${FIPS_UNRUNNABLE_CIPHERS[name]}; use aes256-gcm@openssh.com or aes128-gcm@openssh.com`,
            });
          }
        } else if (kind === 'compress' && name !== 'none') {
          out.push({ path: at, rule: 'fips.no-compression', message: `${name}: only "none" is supported` });
        }
      });
    }
    return out;
  }

  checkHash(hash: string, use: 'digest' | 'hmac' | 'kdf' | 'signature'): asserts hash is HashAlg {
    const h = hash.toLowerCase().replace('-', '');
    if (h === 'md5') refuse('fips.no-md5', 'MD5 is not allowed');
    if (h === 'sha1' && use === 'signature')
      refuse('fips.no-sha1-signatures', 'SHA-1 signatures are not allowed');
    if (!(APPROVED_HASHES as readonly string[]).includes(hash)) {
      refuse('suite.approved-hash', `hash ${hash} is not one of ${APPROVED_HASHES.join(', ')}`);
    }
  }

  checkOaep(params: OaepParams): void {
    if (params.hash !== 'sha256') {
      refuse('suite.oaep-sha256-only', `RSA-OAEP with ${params.hash} is not allowed; the suite uses SHA-256`);
    }
  }

  checkAesGcm(key: Uint8Array, iv: Uint8Array, tagLength: number): void {
    if (key.length !== 32)
      refuse('suite.aes-256-key', `AES-GCM key is ${key.length * 8} bits; the suite uses 256`);
    if (iv.length !== SEAL_SUITE_1.ivBytes) {
      refuse('suite.gcm-96-bit-iv', `GCM IV is ${iv.length * 8} bits; only 96-bit IVs are allowed`);
    }
    if (tagLength !== SEAL_SUITE_1.tagBytes) {
      refuse('suite.gcm-128-bit-tag', `GCM tag is ${tagLength * 8} bits; only 128-bit tags are allowed`);
    }
  }

  /** Checks a key (imported, loaded or about to be generated) against the mode's rules. */
  checkKey(alg: KeyAlgorithm | KeySpec): void {
    switch (alg.type) {
      case 'rsa':
        if (alg.bits < MIN_RSA_BITS)
          refuse('suite.rsa-min-2048', `RSA-${alg.bits} is below the 2048-bit minimum`);
        return;
      case 'ec':
        if (alg.curve !== 'P-256' && alg.curve !== 'P-384') {
          refuse('fips.ecdsa-approved-curve', `curve ${String(alg.curve)} is not allowed`);
        }
        return;
      case 'ed25519':
        if (this.fips) refuse('fips.no-ed25519', 'Ed25519 keys are not FIPS-approved (FIPS 186-4)');
        return;
      case 'x25519':
        if (this.fips) refuse('fips.no-x25519', 'X25519 is not FIPS-approved (SP 800-56A)');
        return;
      default:
        refuse('suite.approved-key-type', `key type ${(alg as { type: string }).type} is not supported`);
    }
  }

  checkSignature(key: KeyAlgorithm, scheme: SignatureScheme): void {
    this.checkKey(key);
    if (scheme.scheme !== 'ed25519') this.checkHash(scheme.hash ?? 'sha256', 'signature');
    const fits =
      (scheme.scheme === 'ecdsa' && key.type === 'ec') ||
      ((scheme.scheme === 'rsa-pss' || scheme.scheme === 'rsa-pkcs1v15') && key.type === 'rsa') ||
      (scheme.scheme === 'ed25519' && key.type === 'ed25519');
    if (!fits) refuse('suite.approved-key-type', `a ${key.type} key cannot make ${scheme.scheme} signatures`);
  }
}

/** Canonical hash for an ECDSA curve (FIPS 186-4 pairing used by the suite and by SSH). */
export function hashForCurve(curve: string): HashAlg {
  return curve === 'P-384' ? 'sha384' : 'sha256';
}
