/**
 * The checkpoint signer (docs/FORMAT.md §5.2, §5.3): signs tlog-checkpoints as C2SP signed notes and
 * never signs two that are inconsistent.
 *
 * Before every signature it checks the new (size, root) against the last one it signed, which it keeps
 * in `signed.state` (`u64 size || 32 root` in a two-slot file, §6.2): a smaller size, the same size with
 * another root, or a larger size without a valid RFC 6962 consistency proof (RFC 9162 §2.1.4.2) is
 * refused with CHECKPOINT_INCONSISTENT, and nothing changes.
 *
 * Order: persist first, then sign. The new state is written into the slot that does not hold the last
 * one and fdatasynced (state-file.ts) before the key is used. The file is opened once, in `open`:
 * signing opens nothing, so running out of file descriptors cannot make it fail. If the process dies (or the token
 * fails) after persisting but before a signature exists, the state names a checkpoint nobody has: the
 * only cost is that the next checkpoint must extend that (size, root), which the log's own durable tree
 * does. The other order is the dangerous one: a signature could be returned and published, then the
 * crash loses the state, and the restarted signer (seeing an older size) would sign a different tree of
 * the same size, for instance one regrown after unacknowledged entries were lost: two inconsistent
 * signed checkpoints, exactly what tlog-checkpoint forbids.
 *
 * One writer per log is ensured by the store's writer.lock; within a process, `sign` calls on the same
 * state file are serialized, so two signers on one file cannot interleave their check and their write.
 */
import { resolve } from 'node:path';
import type { CryptoProvider, PrivateKey, PublicKey } from '../crypto/index.js';
import { decodeBase64Strict, encodeBase64, formatCheckpoint } from './checkpoint.js';
import { SealError } from './errors.js';
import { HASH_SIZE, verifyConsistency } from './merkle.js';
import { isValidKeyName, NOTE_SIGNATURE_SCHEME, noteKeyId, signNote, verifyNote } from './note.js';
import { readStateFile, StateFile } from './state-file.js';
import { nodeStoreFs, type StoreFs } from './store-io.js';

/** The last signed tree head, as signed.state holds it. */
export interface SignedState {
  readonly size: bigint;
  readonly root: Uint8Array;
}

export interface CheckpointSignerOptions {
  /** An ECDSA P-384 private key, in software or in a token. */
  readonly key: PrivateKey;
  /** The log origin: the checkpoint's first line and the note's key name. */
  readonly origin: string;
  /** Where the last signed (size, root) is kept: `<store>/signed.state`. */
  readonly statePath: string;
  /** File operations for the state write; node:fs unless a test injects its own. */
  readonly fs?: StoreFs;
}

/** The tree to sign: its size and RFC 6962 root. */
export interface TreeHead {
  readonly size: bigint;
  readonly root: Uint8Array;
}

const STATE_SIZE = 8 + HASH_SIZE;
const U64_MAX = (1n << 64n) - 1n;
const ROTATION_CONTEXT = 'sealgate/v1 signer rotation\n';

/** `sign` calls in flight per state file (resolved path), so that they run one at a time. */
const signing = new Map<string, Promise<unknown>>();

export function encodeSignedState(state: SignedState): Uint8Array {
  const out = new Uint8Array(STATE_SIZE);
  new DataView(out.buffer).setBigUint64(0, state.size);
  out.set(state.root, 8);
  return out;
}

export function decodeSignedState(bytes: Uint8Array): SignedState {
  if (bytes.length !== STATE_SIZE) {
    throw new SealError(
      'CHECKPOINT_STATE_INVALID',
      `signed.state has ${bytes.length} bytes, want ${STATE_SIZE}`,
    );
  }
  const size = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
  return { size, root: bytes.slice(8) };
}

const STATE_OPTIONS = {
  code: 'CHECKPOINT_STATE_INVALID',
  checkLegacy: (bytes: Uint8Array) => void decodeSignedState(bytes),
} as const;

/** The last signed state in signed.state at `path` (either format), without opening it for writing. */
export function readSignedState(path: string): SignedState | undefined {
  const payload = readStateFile(path, STATE_OPTIONS);
  return payload ? decodeSignedState(payload) : undefined;
}

function checkSigner(key: PrivateKey, origin: string): void {
  requireP384(key.publicKey, 'the checkpoint signing key');
  if (!isValidKeyName(origin)) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `origin ${JSON.stringify(origin)} cannot be a note key name (empty, or has a space or '+')`,
    );
  }
}

function requireP384(key: PublicKey, what: string): void {
  if (key.algorithm.type !== 'ec' || key.algorithm.curve !== 'P-384') {
    throw new SealError('INVALID_ARGUMENT', `${what} must be an ECDSA P-384 key (FORMAT.md §2)`);
  }
}

function inconsistent(message: string, cause?: unknown): never {
  throw new SealError('CHECKPOINT_INCONSISTENT', `refusing to sign: ${message}`, { cause });
}

/** FORMAT.md §5.3: the bytes the old key signs to introduce a new one. */
export function rotationMessage(origin: string, newSpkiB64: string): Uint8Array {
  return Buffer.from(`${ROTATION_CONTEXT}${origin}\n${newSpkiB64}\n`, 'utf8');
}

/**
 * Checks a SIGNER_ROTATION signature (FORMAT.md §5.3): `signatureB64` is the old key's ECDSA P-384
 * signature over the rotation message for `newSpkiB64`, which must be a canonical base64 SPKI DER of a
 * P-384 key. False for anything else; no exception for malformed input.
 */
export function verifyRotation(
  provider: CryptoProvider,
  oldKey: PublicKey,
  origin: string,
  newSpkiB64: string,
  signatureB64: string,
): boolean {
  const spki = decodeBase64Strict(newSpkiB64);
  const signature = decodeBase64Strict(signatureB64);
  if (!spki || !signature || signature.length === 0) return false;
  if (oldKey.algorithm.type !== 'ec' || oldKey.algorithm.curve !== 'P-384') return false;
  let newKey: PublicKey;
  try {
    newKey = provider.importPublicKey(spki);
  } catch {
    return false;
  }
  if (newKey.algorithm.type !== 'ec' || newKey.algorithm.curve !== 'P-384') return false;
  // The key id is a hash of these bytes: only the canonical DER of the key may stand for it.
  if (!provider.equal(newKey.spkiDer(), spki)) return false;
  return provider.verify(oldKey, rotationMessage(origin, newSpkiB64), signature, NOTE_SIGNATURE_SCHEME);
}

export class CheckpointSigner {
  readonly #provider: CryptoProvider;
  readonly #key: PrivateKey;
  readonly #statePath: string;
  readonly #state: StateFile;
  /** The signed-note key id of this signer's key (FORMAT.md §5.2). */
  readonly keyId: Uint8Array;

  private constructor(
    provider: CryptoProvider,
    readonly origin: string,
    key: PrivateKey,
    state: StateFile,
  ) {
    this.#provider = provider;
    this.#key = key;
    this.#statePath = state.path;
    this.#state = state;
    this.keyId = noteKeyId(provider, key.publicKey);
  }

  /**
   * Checks the key and origin, and opens the state file (creating it, or converting one in the old
   * format: the only file operations a signer does besides pread, pwrite and fdatasync on it), so that
   * a damaged one is reported at start. `close` releases it.
   */
  static async open(provider: CryptoProvider, opts: CheckpointSignerOptions): Promise<CheckpointSigner> {
    checkSigner(opts.key, opts.origin);
    const state = await StateFile.open(resolve(opts.statePath), opts.fs ?? nodeStoreFs, STATE_OPTIONS);
    try {
      const payload = state.read();
      if (payload) decodeSignedState(payload);
    } catch (err) {
      state.close();
      throw err;
    }
    return new CheckpointSigner(provider, opts.origin, opts.key, state);
  }

  /**
   * A signer with `key` on this signer's state file (a signer rotation): opens nothing. The state file
   * passes to the new signer, whose `close` releases it; this one must not be used after.
   */
  withKey(key: PrivateKey): CheckpointSigner {
    checkSigner(key, this.origin);
    return new CheckpointSigner(this.#provider, this.origin, key, this.#state);
  }

  /** Closes the state file. */
  close(): void {
    this.#state.close();
  }

  get publicKey(): PublicKey {
    return this.#key.publicKey;
  }

  /** The last (size, root) this log signed (or was about to sign), if any. */
  lastSigned(): SignedState | undefined {
    const payload = this.#state.read();
    return payload ? decodeSignedState(payload) : undefined;
  }

  /**
   * Signs a checkpoint of `tree`, or refuses with CHECKPOINT_INCONSISTENT. `proveConsistency(from)` must
   * return RFC 6962 PROOF(from, D[tree.size]) from the caller's tree; it is called only when the last
   * signed size is non-zero and smaller than tree.size. A signing failure is CHECKPOINT_SIGN_FAILED.
   */
  sign(tree: TreeHead, proveConsistency: (fromSize: bigint) => readonly Uint8Array[]): Promise<string> {
    const previous = signing.get(this.#statePath) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.#signNow(tree, proveConsistency));
    const settled = run.catch(() => undefined);
    signing.set(this.#statePath, settled);
    void settled.then(() => {
      if (signing.get(this.#statePath) === settled) signing.delete(this.#statePath);
    });
    return run;
  }

  async #signNow(tree: TreeHead, prove: (fromSize: bigint) => readonly Uint8Array[]): Promise<string> {
    if (typeof tree.size !== 'bigint' || tree.size < 0n || tree.size > U64_MAX) {
      throw new SealError('INVALID_ARGUMENT', `tree size ${String(tree.size)} is not a u64`);
    }
    if (tree.root.length !== HASH_SIZE) {
      throw new SealError('INVALID_ARGUMENT', `tree root has ${tree.root.length} bytes, want ${HASH_SIZE}`);
    }
    const last = this.lastSigned();
    if (last) this.#checkConsistent(last, tree, prove);

    if (!last || last.size !== tree.size) {
      try {
        await this.#state.write(encodeSignedState(tree));
      } catch (err) {
        throw new SealError(
          'CHECKPOINT_SIGN_FAILED',
          `cannot persist ${this.#statePath} before signing: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }

    const body = formatCheckpoint({ origin: this.origin, size: tree.size, root: tree.root });
    let note: string;
    try {
      note = await signNote(this.#provider, this.#key, this.origin, body);
      // A fault in the signer (a token bug, a glitch) must not publish a bad signature: check it.
      verifyNote(this.#provider, note, [{ name: this.origin, key: this.#key.publicKey }]);
    } catch (err) {
      throw new SealError(
        'CHECKPOINT_SIGN_FAILED',
        `signing the checkpoint of size ${tree.size} with ${this.#key.ref} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return note;
  }

  #checkConsistent(
    last: SignedState,
    tree: TreeHead,
    prove: (fromSize: bigint) => readonly Uint8Array[],
  ): void {
    if (tree.size < last.size)
      inconsistent(`size ${tree.size} is smaller than the last signed size ${last.size}`);
    if (tree.size === last.size) {
      if (!this.#provider.equal(tree.root, last.root)) {
        inconsistent(`size ${tree.size} was signed with another root`);
      }
      return;
    }
    if (last.size === 0n) return; // Every tree extends the empty one.
    let proof: readonly Uint8Array[];
    try {
      proof = prove(last.size);
    } catch (err) {
      inconsistent(
        `no consistency proof from size ${last.size} to ${tree.size}: ${(err as Error).message}`,
        err,
      );
    }
    try {
      const hash = (d: Uint8Array): Uint8Array => this.#provider.digest('sha256', d);
      verifyConsistency(hash, last.size, tree.size, proof, last.root, tree.root);
    } catch (err) {
      inconsistent(
        `tree of size ${tree.size} does not extend the one signed at ${last.size}: ${(err as Error).message}`,
        err,
      );
    }
  }

  /**
   * FORMAT.md §5.3: this (old) key's signature, base64, introducing `newPublicKey` (ECDSA P-384) for the
   * SIGNER_ROTATION entry, whose `new_key_spki` must be `base64(newPublicKey.spkiDer())`, as signed here.
   */
  async rotationSignature(newPublicKey: PublicKey): Promise<string> {
    requireP384(newPublicKey, 'the new checkpoint signing key');
    const spkiB64 = encodeBase64(newPublicKey.spkiDer());
    try {
      const sig = await this.#provider.sign(
        this.#key,
        rotationMessage(this.origin, spkiB64),
        NOTE_SIGNATURE_SCHEME,
      );
      return encodeBase64(sig);
    } catch (err) {
      throw new SealError(
        'CHECKPOINT_SIGN_FAILED',
        `signing the signer rotation failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}
