/**
 * Checkpoints (docs/FORMAT.md §5, §8 steps 2 and 3): parse every signed note, check its signature
 * against the signers trusted at its size, and check that the checkpoints form one history: sizes
 * never go back, equal sizes have equal roots, and consecutive ones are joined by a consistency proof
 * (RFC 9162 §2.1.4.2), as is the auditor's trusted checkpoint.
 */
import type { CryptoProvider } from '../../crypto/index.js';
import { decodeBase64Strict, parseCheckpoint } from '../../seal/checkpoint.js';
import { SealError } from '../../seal/errors.js';
import { HASH_SIZE, verifyConsistency, type HashFn } from '../../seal/merkle.js';
import { parseNote, verifyNote } from '../../seal/note.js';
import type { ConsistencyProofJson } from '../bundle.js';
import type { Findings } from './error.js';
import type { SignerTrust } from './trust.js';

export interface CheckpointInfo {
  /** Position in checkpoints.bin, 0 first. */
  readonly position: number;
  readonly note: string | Uint8Array;
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  /** Set by verifyCheckpointSignatures. */
  signed: boolean;
}

export const checkpointLocation = (c: { position: number; size?: number }): string =>
  c.size === undefined ? `checkpoint ${c.position}` : `checkpoint ${c.position} (size ${c.size})`;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/**
 * Parses the notes (without verifying signatures: the signers are known only once the entries' rotations
 * are). A note or body that does not parse is CHECKPOINT_MALFORMED and is left out; one for another
 * origin is ORIGIN_MISMATCH and kept (its signature check fails too, and says so).
 */
export function parseCheckpoints(
  notes: readonly (string | Uint8Array)[],
  origin: string,
  findings: Findings,
): CheckpointInfo[] {
  const out: CheckpointInfo[] = [];
  notes.forEach((note, position) => {
    try {
      const cp = parseCheckpoint(parseNote(note).body);
      if (cp.size > BigInt(Number.MAX_SAFE_INTEGER))
        throw new SealError('CHECKPOINT_MALFORMED', `size ${cp.size} is beyond 2^53 - 1`);
      const info: CheckpointInfo = {
        position,
        note,
        origin: cp.origin,
        size: Number(cp.size),
        root: cp.root,
        signed: false,
      };
      if (cp.origin !== origin) {
        findings.fail(
          'ORIGIN_MISMATCH',
          checkpointLocation(info),
          `the checkpoint is for origin ${JSON.stringify(cp.origin)}, not ${JSON.stringify(origin)}`,
        );
      }
      out.push(info);
    } catch (err) {
      findings.fail('CHECKPOINT_MALFORMED', checkpointLocation({ position }), (err as Error).message);
    }
  });
  return out;
}

/** Verifies one note against the signers trusted at its size; returns the failure, if any. */
function signatureProblem(
  provider: CryptoProvider,
  note: string | Uint8Array,
  size: number,
  trust: SignerTrust,
):
  | {
      code: 'CHECKPOINT_SIGNATURE_INVALID' | 'CHECKPOINT_UNKNOWN_SIGNER' | 'CHECKPOINT_MALFORMED';
      message: string;
    }
  | undefined {
  const keys = trust.keysAt(size);
  if (keys.length === 0)
    return { code: 'CHECKPOINT_UNKNOWN_SIGNER', message: `no signer is trusted at size ${size}` };
  try {
    verifyNote(provider, note, keys);
    return undefined;
  } catch (err) {
    const code = err instanceof SealError ? err.code : undefined;
    if (code === 'NOTE_SIGNATURE_INVALID')
      return { code: 'CHECKPOINT_SIGNATURE_INVALID', message: (err as Error).message };
    if (code === 'NOTE_UNKNOWN_SIGNER') {
      const trusted = keys.map((k) => trust.signers.find((s) => s.key === k.key)?.keyId).join(', ');
      return {
        code: 'CHECKPOINT_UNKNOWN_SIGNER',
        message: `${(err as Error).message}; trusted at this size: ${trusted}`,
      };
    }
    return { code: 'CHECKPOINT_MALFORMED', message: (err as Error).message };
  }
}

/** §8 step 2: every checkpoint signed by a signer trusted at its size. */
export function verifyCheckpointSignatures(
  provider: CryptoProvider,
  checkpoints: readonly CheckpointInfo[],
  trust: SignerTrust,
  findings: Findings,
): void {
  for (const cp of checkpoints) {
    const problem = signatureProblem(provider, cp.note, cp.size, trust);
    if (problem) findings.fail(problem.code, checkpointLocation(cp), problem.message);
    else cp.signed = true;
  }
}

/**
 * §8 step 3, without proofs: sizes strictly increase (the writer signs a checkpoint only when the tree
 * grew, so a repeat means one was dropped or duplicated), and one size never has two roots.
 */
export function checkCheckpointOrder(checkpoints: readonly CheckpointInfo[], findings: Findings): void {
  const roots = new Map<number, string>();
  for (const [i, cp] of checkpoints.entries()) {
    const root = hex(cp.root);
    const seen = roots.get(cp.size);
    if (seen !== undefined && seen !== root) {
      findings.fail(
        'CHECKPOINT_INCONSISTENT',
        checkpointLocation(cp),
        `size ${cp.size} was signed with two different roots`,
      );
    }
    roots.set(cp.size, root);
    const prev = checkpoints[i - 1];
    if (!prev) continue;
    if (cp.size < prev.size) {
      findings.fail(
        'CHECKPOINT_INCONSISTENT',
        checkpointLocation(cp),
        `size ${cp.size} is smaller than the previous checkpoint's (${prev.size})`,
      );
    } else if (cp.size === prev.size) {
      findings.fail(
        'CHECKPOINT_INCONSISTENT',
        checkpointLocation(cp),
        `size ${cp.size} repeats the previous checkpoint's: sizes must increase`,
      );
    }
  }
}

/** Decodes base64 proof hashes; undefined if any is not a canonical 32-byte hash. */
export function decodeProof(hashes: readonly string[]): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  for (const h of hashes) {
    const b = decodeBase64Strict(h);
    if (!b || b.length !== HASH_SIZE) return undefined;
    out.push(b);
  }
  return out;
}

/** Finds proofs.json's consistency proof from `from` to `to`. */
export class ConsistencyProofs {
  readonly #byPair = new Map<string, ConsistencyProofJson>();

  constructor(proofs: readonly ConsistencyProofJson[]) {
    for (const p of proofs) this.#byPair.set(`${p.from}-${p.to}`, p);
  }

  get(from: number, to: number): ConsistencyProofJson | undefined {
    return this.#byPair.get(`${from}-${to}`);
  }

  all(): ConsistencyProofJson[] {
    return [...this.#byPair.values()];
  }

  /** Why `proof` does not show (from, root1) extends to (to, root2), or undefined if it does. */
  static problem(
    hash: HashFn,
    p: ConsistencyProofJson,
    root1: Uint8Array,
    root2: Uint8Array,
  ): string | undefined {
    const proof = decodeProof(p.proof);
    if (!proof) return 'a proof hash is not canonical base64 of 32 bytes';
    try {
      verifyConsistency(hash, p.from, p.to, proof, root1, root2);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}

/**
 * §8 step 3 with proofs: every pair of consecutive checkpoints (of different, non-zero sizes) must be
 * joined by a consistency proof in proofs.json that verifies against both roots.
 */
export function checkConsistencyProofs(
  hash: HashFn,
  checkpoints: readonly CheckpointInfo[],
  proofs: ConsistencyProofs,
  findings: Findings,
): void {
  for (let i = 1; i < checkpoints.length; i++) {
    const [a, b] = [checkpoints[i - 1], checkpoints[i]];
    if (a.size === 0 || b.size <= a.size) continue; // the empty tree is a prefix of every tree; order is checked apart
    const where = `${checkpointLocation(b)}, from ${checkpointLocation(a)}`;
    const p = proofs.get(a.size, b.size);
    if (!p) {
      findings.fail(
        'CONSISTENCY_PROOF_INVALID',
        where,
        `proofs.json has no consistency proof from size ${a.size} to ${b.size}`,
      );
      continue;
    }
    const problem = ConsistencyProofs.problem(hash, p, a.root, b.root);
    if (problem)
      findings.fail(
        'CONSISTENCY_PROOF_INVALID',
        where,
        `the consistency proof from size ${a.size} to ${b.size} does not verify: ${problem}`,
      );
  }
}

/** The auditor's retained checkpoint, parsed and verified against the trusted signers. */
export interface TrustedCheckpoint {
  readonly size: number;
  readonly root: Uint8Array;
}

/**
 * Parses and verifies the auditor's trusted checkpoint (a signed note). TRUSTED_CHECKPOINT_INVALID
 * when it does not parse, is for another origin, or is not signed by a signer trusted at its size.
 */
export function readTrustedCheckpoint(
  provider: CryptoProvider,
  note: string,
  trust: SignerTrust,
  findings: Findings,
): TrustedCheckpoint | undefined {
  const where = 'trusted checkpoint';
  let size: number;
  let root: Uint8Array;
  try {
    const cp = parseCheckpoint(parseNote(note).body);
    if (cp.size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`size ${cp.size} is beyond 2^53 - 1`);
    if (cp.origin !== trust.origin) {
      findings.fail(
        'TRUSTED_CHECKPOINT_INVALID',
        where,
        `it is for origin ${JSON.stringify(cp.origin)}, not this log's ${JSON.stringify(trust.origin)}`,
      );
      return undefined;
    }
    size = Number(cp.size);
    root = cp.root;
  } catch (err) {
    findings.fail('TRUSTED_CHECKPOINT_INVALID', where, `it does not parse: ${(err as Error).message}`);
    return undefined;
  }
  const problem = signatureProblem(provider, note, size, trust);
  if (problem) {
    findings.fail('TRUSTED_CHECKPOINT_INVALID', `${where} (size ${size})`, problem.message);
    return undefined;
  }
  return { size, root };
}
