/**
 * Which keys may sign a checkpoint of a given size (docs/FORMAT.md §5.3, §8 step 2), and what they are
 * rooted in.
 *
 * Trust starts from the auditor's pinned keys (`--keys`). Only when the auditor asks for it in so many
 * words (`--trust-bundle-signers`) does it start from the bundle's own keys/signers.json instead: a
 * bundle vouching for itself proves only that it is unchanged since a holder of those keys signed it,
 * which anyone with a key of their own can arrange, so the result is "integrity only, origin not
 * verified". With neither, verification is refused (TRUST_ROOT_MISSING) rather than run against keys
 * the bundle chose. A retained checkpoint (`--trusted-checkpoint`) is not a root of its own: its
 * signature is checked against these same signers, so it is only as trusted as they are; what it adds
 * is that the log extends what the auditor saw before (FORMAT.md §8 step 3).
 *
 * A SIGNER_ROTATION entry at leaf `i`, signed by a key trusted at that point, retires the
 * old key and trusts the new one for checkpoints of size > i: "Checkpoints whose size is greater than
 * the rotation entry's index are signed by the new key." A stolen retired key therefore cannot sign a
 * later checkpoint, and a rotation signed by an untrusted key extends nothing.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import type { CryptoProvider, PublicKey } from '../../crypto/index.js';
import { noteKeyId, type TrustedKey } from '../../seal/note.js';
import { verifyRotation } from '../../seal/signer.js';
import { AuditError } from '../errors.js';

/**
 * What the signers rest on: keys the auditor pinned, or (by explicit request) the bundle's own keys,
 * which verifies integrity only.
 */
export type TrustBasis = 'pinned' | 'bundle-only';

/**
 * The trust root a verification may start from (see the top of this file). Throws AuditError
 * TRUST_ROOT_MISSING when there is none, naming what to pass, and TRUST_INPUT_INVALID when pinned keys
 * and the bundle's own are both asked for.
 */
export function trustBasis(
  opts: {
    readonly trustedSigners?: readonly PublicKey[];
    readonly trustBundleSigners?: boolean;
    readonly trustedCheckpoint?: string;
  },
  sourceKind: 'store' | 'bundle',
): TrustBasis {
  const pinned = opts.trustedSigners !== undefined && opts.trustedSigners.length > 0;
  if (opts.trustBundleSigners === true) {
    if (opts.trustedSigners !== undefined)
      throw new AuditError(
        'TRUST_INPUT_INVALID',
        '--keys and --trust-bundle-signers contradict each other: --keys pins the signers, --trust-bundle-signers takes them from the bundle; pass one',
      );
    if (sourceKind === 'store')
      throw new AuditError(
        'TRUST_ROOT_MISSING',
        "--trust-bundle-signers applies to export bundles; a store holds no signer keys: give the checkpoint signers' public keys (--keys DIR)",
      );
    return 'bundle-only';
  }
  if (pinned) return 'pinned';
  if (sourceKind === 'store')
    throw new AuditError(
      'TRUST_ROOT_MISSING',
      "a store holds no signer keys: give the checkpoint signers' public keys (--keys DIR)",
    );
  const checkpointNote =
    opts.trustedCheckpoint !== undefined
      ? ' (--trusted-checkpoint is checked against the signers; it does not choose them)'
      : '';
  throw new AuditError(
    'TRUST_ROOT_MISSING',
    `no trust root${checkpointNote}: pass --keys DIR with the gate's checkpoint signer public keys, obtained from the operator out of band (not the bundle's keys/ directory), or --trust-bundle-signers to check integrity only against the bundle's own keys/signers.json (origin not verified)`,
  );
}

export interface TrustedSigner {
  readonly key: PublicKey;
  /** The signed-note key id, hex (first 4 bytes of SHA-256 of the SPKI DER). */
  readonly keyId: string;
  /** How it came to be trusted. */
  readonly via: 'pinned' | 'bundle' | 'rotation';
  /** Trusted for checkpoints of size > validAfter (-1: from the start). */
  readonly validAfter: number;
  /** Retired by a rotation at this leaf index: not trusted for checkpoints of size > retiredAfter. */
  retiredAfter?: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

function requireP384(key: PublicKey, what: string): void {
  if (key.algorithm.type !== 'ec' || key.algorithm.curve !== 'P-384') {
    const got =
      key.algorithm.type === 'ec'
        ? `an EC ${key.algorithm.curve} key`
        : `an ${key.algorithm.type.toUpperCase()} key`;
    throw new AuditError(
      'TRUST_INPUT_INVALID',
      `${what} is ${got}; checkpoint signers are ECDSA P-384 public keys (docs/FORMAT.md §2)`,
    );
  }
}

export class SignerTrust {
  readonly #provider: CryptoProvider;
  readonly origin: string;
  readonly #signers: TrustedSigner[] = [];

  constructor(
    provider: CryptoProvider,
    origin: string,
    roots: readonly PublicKey[],
    via: 'pinned' | 'bundle',
  ) {
    this.#provider = provider;
    this.origin = origin;
    for (const key of roots) this.#add(key, via, -1);
  }

  #add(key: PublicKey, via: TrustedSigner['via'], validAfter: number): TrustedSigner {
    const der = key.spkiDer();
    const existing = this.#signers.find((s) => this.#provider.equal(s.key.spkiDer(), der));
    if (existing) return existing;
    const signer: TrustedSigner = { key, keyId: hex(noteKeyId(this.#provider, key)), via, validAfter };
    this.#signers.push(signer);
    return signer;
  }

  get signers(): readonly TrustedSigner[] {
    return this.#signers;
  }

  #validAt(s: TrustedSigner, size: number): boolean {
    return size > s.validAfter && (s.retiredAfter === undefined || size <= s.retiredAfter);
  }

  /** The keys that may sign a checkpoint of `size`, as verifyNote takes them. */
  keysAt(size: number): TrustedKey[] {
    return this.#signers
      .filter((s) => this.#validAt(s, size))
      .map((s) => ({ name: this.origin, key: s.key }));
  }

  /**
   * Applies the SIGNER_ROTATION entry at leaf `index` (FORMAT.md §5.3). Returns why it is refused, or
   * undefined when it was applied. `old_key_id` and `new_key_id` are hex signed-note key ids.
   */
  rotate(index: number, body: Record<string, unknown>): string | undefined {
    const { old_key_id: oldId, new_key_id: newId, new_key_spki: spki, signature } = body;
    if (
      typeof oldId !== 'string' ||
      typeof newId !== 'string' ||
      typeof spki !== 'string' ||
      typeof signature !== 'string'
    )
      return 'the body lacks old_key_id, new_key_id, new_key_spki or signature';
    // The old key is one trusted for the tree just before the rotation entry.
    const candidates = this.#signers.filter((s) => s.keyId === oldId && this.#validAt(s, index));
    if (candidates.length === 0) {
      // The auditor pinned the new key itself: nothing to extend (the checkpoints the old key signed fail on their own).
      if (this.#signers.some((s) => s.keyId === newId && s.via !== 'rotation' && this.#validAt(s, index + 1)))
        return undefined;
      return `old_key_id ${oldId} is not a signer trusted at leaf ${index}`;
    }
    const old = candidates.find((s) => verifyRotation(this.#provider, s.key, this.origin, spki, signature));
    if (!old) return `the signature is not the old key's (${oldId}) over the new key`;
    let newKey: PublicKey;
    try {
      newKey = this.#provider.importPublicKey(Buffer.from(spki, 'base64'));
    } catch {
      return 'new_key_spki is not a public key'; // verifyRotation already refused this; kept for safety
    }
    const actualId = hex(noteKeyId(this.#provider, newKey));
    if (actualId !== newId) return `new_key_id ${newId} is not the new key's id (${actualId})`;
    old.retiredAfter = Math.min(old.retiredAfter ?? index, index);
    const added = this.#add(newKey, 'rotation', index);
    // A pinned key that rotation reintroduces keeps its pin; one retired earlier is trusted again from here.
    if (added.retiredAfter !== undefined && added.retiredAfter < index) added.retiredAfter = undefined;
    return undefined;
  }
}

/**
 * The auditor's pinned signers: a PEM file, or a directory of them (`*.pem`, `*.pub`). Each must be an
 * ECDSA P-384 public key (SPKI PEM or an OpenSSH line). Throws AuditError TRUST_INPUT_INVALID with a
 * one-line reason for anything else: a private key, an RSA key, garbage, an empty directory.
 */
export function loadTrustedKeys(provider: CryptoProvider, path: string): PublicKey[] {
  let files: string[];
  try {
    const stat = fs.statSync(path);
    files = stat.isDirectory()
      ? fs
          .readdirSync(path)
          .filter((n) => /\.(pem|pub)$/.test(n))
          .sort()
          .map((n) => join(path, n))
      : [path];
  } catch (err) {
    throw new AuditError(
      'TRUST_INPUT_INVALID',
      `--keys ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  if (files.length === 0)
    throw new AuditError('TRUST_INPUT_INVALID', `--keys ${path}: no *.pem or *.pub files in it`);
  return files.map((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new AuditError(
        'TRUST_INPUT_INVALID',
        `${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`,
      );
    }
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      throw new AuditError(
        'TRUST_INPUT_INVALID',
        `${file} holds a private key; give the signers' public keys only`,
      );
    }
    let key: PublicKey;
    try {
      key = provider.importPublicKey(text.trim());
    } catch {
      throw new AuditError('TRUST_INPUT_INVALID', `${file} is not a public key (SPKI PEM or OpenSSH line)`);
    }
    requireP384(key, file);
    return key;
  });
}

/** Checks that a key given in code (not from a file) can be a checkpoint signer. */
export function assertSignerKey(key: PublicKey, what: string): void {
  requireP384(key, what);
}
