/**
 * The sealed log writer: one store, one Merkle tree, one checkpoint signer, many sessions.
 *
 * - Every entry (segment header, sealed record, system entry) is appended to the store and the tree at
 *   once; its `durable` promise settles when the fsync covering it returns (docs/FORMAT.md §6).
 * - A run is bracketed by LOG_START and LOG_STOP, with HEARTBEAT entries in between, and starts with
 *   CRASH_RECOVERY when the previous run died.
 * - Checkpoints are signed every N entries, every T ms and at every session end, always over durable
 *   entries only, and always consistent with the last one (signer.ts).
 * - Fail closed: once the store or the signer fails, every later append throws LOG_FAILED, and
 *   `onFailure` tells the gate to end its sessions.
 * - A failed run still ends in a log that verifies (docs/FORMAT.md §3.3): if the store can still take
 *   entries (the signer failed, say), the log ends every open session (SESSION_END "log failed") and
 *   appends LOG_STOP with reason "failed" and the failure, at once; if it cannot (the store failed),
 *   writer.lock stays and the next start writes CRASH_RECOVERY. Never a run left open with no lock.
 */
import type { CryptoProvider, PrivateKey, PublicKey } from '../crypto/index.js';
import { readSpool, SPOOL_DIR } from './audit-spool.js';
import { SealError } from './errors.js';
import { encodeSystemEntry } from './format/system-entry.js';
import { SystemType } from './format/types.js';
import { LogTree } from './log-tree.js';
import { findOpenSegments } from './recovery.js';
import { SessionRecorder, type SegmentLimits } from './session-recorder.js';
import { CheckpointSigner } from './signer.js';
import { join } from 'node:path';
import { LocalStore, type LogStore, type RecoveryInfo } from './store.js';

export interface LogPolicy extends SegmentLimits {
  readonly checkpointEveryEntries: number;
  readonly checkpointEveryMs: number;
  readonly heartbeatMs: number;
  readonly fsyncEveryEntries: number;
  readonly fsyncEveryMs: number;
}

export const DEFAULT_LOG_POLICY: LogPolicy = {
  checkpointEveryEntries: 1000,
  checkpointEveryMs: 10_000,
  heartbeatMs: 60_000,
  fsyncEveryEntries: 64,
  fsyncEveryMs: 50,
  maxRecords: 2 ** 20,
  maxAgeMs: 3_600_000,
  maxPlaintextBytes: 2 ** 30,
};

export interface SealedLogOptions {
  readonly provider: CryptoProvider;
  readonly dir: string;
  readonly origin: string;
  readonly recipients: readonly PublicKey[];
  readonly signingKey: PrivateKey;
  readonly policy?: Partial<LogPolicy>;
  /** Create the store if it does not exist. */
  readonly create?: boolean;
  /** Called once when the log can no longer seal or persist: the gate must end every session. */
  readonly onFailure?: (err: Error) => void;
  /** Called with every signed checkpoint, for an external sink (SIEM) that catches tail truncation. */
  readonly onCheckpoint?: (note: string) => void;
  /** Microseconds since the epoch; injectable for tests. */
  readonly clock?: () => bigint;
}

export interface SealingContext {
  readonly provider: CryptoProvider;
  readonly origin: string;
  readonly recipients: readonly PublicKey[];
  readonly clock: () => bigint;
  readonly provenance: Record<string, unknown>;
}

const nowUs = (): bigint => BigInt(Date.now()) * 1000n;

/** What crash recovery found at start (the CRASH_RECOVERY entry says the same, sealed). */
export interface LogRecovery extends RecoveryInfo {
  /** Segments the previous run left open, now closed by CRASH_RECOVERY. */
  readonly openSegments: number;
}

/** The LOG_STOP reason of a run that ended because the log failed (docs/FORMAT.md §3.3). */
export const FAILED_STOP_REASON = 'failed';
/** The SESSION_END reason of a session the log ended because it failed. */
export const FAILED_SESSION_REASON = 'log failed';
/** A failure message in LOG_STOP is cut to this many characters. */
const MAX_FAILURE_TEXT = 1000;

/** How segments are sealed, for their headers (docs/FORMAT.md §3.1.1). */
function provenanceOf(provider: CryptoProvider): Record<string, unknown> {
  const info = provider.info();
  return { fips: info.fipsMode, backend: info.backend, library: info.library, ...info.details };
}

export class SealedLog {
  readonly policy: LogPolicy;
  #failure: Error | undefined;
  #failing = false;
  /** Whether this run's LOG_STOP has been appended (by close, or at a failure). */
  #stopAppended = false;
  #recovery: LogRecovery | undefined;
  #sinceCheckpoint = 0;
  #checkpointing: Promise<string | undefined> = Promise.resolve(undefined);
  #timers: NodeJS.Timeout[] = [];
  #heartbeats = 0;
  #sessions = new Set<SessionRecorder>();
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #spoolInFlight = new Set<string>();
  /** Spooled events sealed and durable whose file could not be removed: removal is retried, never a second seal. */
  readonly #spoolSealed = new Map<string, () => void>();
  #context: SealingContext;

  private constructor(
    readonly runId: string,
    readonly options: SealedLogOptions,
    private readonly store: LogStore,
    private readonly tree: LogTree,
    private signer: CheckpointSigner,
  ) {
    this.policy = { ...DEFAULT_LOG_POLICY, ...options.policy };
    this.#context = {
      provider: options.provider,
      origin: options.origin,
      recipients: options.recipients,
      clock: options.clock ?? nowUs,
      provenance: provenanceOf(options.provider),
    };
  }

  static async open(options: SealedLogOptions): Promise<SealedLog> {
    const policy = { ...DEFAULT_LOG_POLICY, ...options.policy };
    const runId = Buffer.from(options.provider.randomBytes(16)).toString('hex');
    // The store reports failures through a callback that exists before the log does.
    const ref: { log?: SealedLog } = {};
    const { store, recovery } = await LocalStore.open(options.dir, {
      origin: options.origin,
      runId,
      create: options.create ?? false,
      fsyncEveryEntries: policy.fsyncEveryEntries,
      fsyncEveryMs: policy.fsyncEveryMs,
      onFailure: (err) => ref.log?.fail(err),
    });
    // Nothing of this run is written yet. A crash marker that was found must stay for the next start;
    // otherwise the lock goes, as after a clean stop.
    const release = (): Promise<void> => (recovery ? store.abandon() : store.close()).catch(() => undefined);
    const hash = (d: Uint8Array) => options.provider.digest('sha256', d);
    const hashParts = (parts: readonly Uint8Array[]) => options.provider.digestParts('sha256', parts);
    let tree: LogTree;
    let signer: CheckpointSigner | undefined;
    try {
      tree = LogTree.fromAnchor(hash, store.loadTreeState(), hashParts);
      for (const entry of store.entries(tree.size, store.size)) tree.append(entry);
      signer = await CheckpointSigner.open(options.provider, {
        key: options.signingKey,
        origin: options.origin,
        statePath: join(options.dir, 'signed.state'),
      });
      // The signer persists its state before the tree state is saved (signer.ts): after a crash between
      // the two, the last signed size is ahead of the saved anchor. Line the anchor up with it.
      const signed = signer.lastSigned();
      if (signed && Number(signed.size) > tree.anchorSize) {
        if (Number(signed.size) > tree.size) {
          throw new SealError(
            'STORE_CORRUPT',
            `the store holds ${tree.size} entries but a checkpoint of size ${signed.size} was signed: durable entries are missing`,
          );
        }
        tree.advanceAnchor(Number(signed.size));
      }
    } catch (err) {
      signer?.close();
      await release();
      throw err;
    }
    const log = new SealedLog(runId, options, store, tree, signer);
    ref.log = log;
    if (recovery) {
      const open = findOpenSegments(store.entries(0, store.size));
      log.#recovery = { ...recovery, openSegments: open.length };
      log.appendSystem(SystemType.CRASH_RECOVERY, {
        previous_run_id: recovery.previousRunId,
        open_segments: open.map((s) => ({ segment_id: s.segmentId, last_seq: s.lastSeq })),
        truncated_bytes: recovery.truncatedBytes,
        last_index: store.size - 1,
      });
    }
    log.appendSystem(SystemType.LOG_START, { origin: options.origin, version: 1 });
    log.drainAuditSpool();
    log.startTimers();
    try {
      await log.checkpoint();
    } catch (err) {
      // The run has recorded its end (FORMAT.md §3.3); release the store and the signer's state file.
      await log.close().catch(() => undefined);
      throw err;
    }
    return log;
  }

  get size(): number {
    return this.tree.size;
  }

  get failed(): Error | undefined {
    return this.#failure;
  }

  /** What crash recovery found when this run started (undefined after a clean stop), for the operator. */
  get recovery(): LogRecovery | undefined {
    return this.#recovery;
  }

  /** Starts recording one SSH session (its first segment is created lazily by the first record). */
  openSession(sessionId?: Uint8Array): SessionRecorder {
    this.assertUsable();
    const session = new SessionRecorder(this, sessionId ?? this.options.provider.randomBytes(16), {
      maxRecords: this.policy.maxRecords,
      maxAgeMs: this.policy.maxAgeMs,
      maxPlaintextBytes: this.policy.maxPlaintextBytes,
    });
    this.#sessions.add(session);
    return session;
  }

  /** @internal used by SessionRecorder */
  sessionEnded(session: SessionRecorder): void {
    this.#sessions.delete(session);
    void this.checkpoint().catch(() => undefined);
  }

  /** @internal the provider, recipients, origin, clock and provenance that sessions seal with */
  sealingContext(): SealingContext {
    return this.#context;
  }

  /**
   * Appends one entry, whole or as parts to be joined (a record sealed in parts: hashed and stored
   * without joining them); returns its leaf index and when it is durable. Throws once the log failed.
   */
  append(entry: Uint8Array | readonly Uint8Array[]): { index: number; durable: Promise<void> } {
    this.assertUsable();
    let r: { index: number; durable: Promise<void> };
    try {
      r = this.store.append(entry);
    } catch (err) {
      this.fail(err as Error);
      throw new SealError('LOG_FAILED', `the log cannot persist entries: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.tree.append(entry);
    if (++this.#sinceCheckpoint >= this.policy.checkpointEveryEntries)
      void this.checkpoint().catch(() => undefined);
    return r;
  }

  appendSystem(type: SystemType, body: Record<string, unknown>): { index: number; durable: Promise<void> } {
    const clock = this.options.clock ?? nowUs;
    return this.append(
      encodeSystemEntry({ kind: 0x03, type, timeUs: clock(), body: { run_id: this.runId, ...body } }),
    );
  }

  /**
   * Signs a checkpoint over every durable entry, unless nothing changed. Serialized: a call waits for
   * the one in flight. A signing failure fails the log (fail closed).
   */
  checkpoint(): Promise<string | undefined> {
    this.#checkpointing = this.#checkpointing.then(
      () => this.checkpointNow(),
      () => this.checkpointNow(),
    );
    return this.#checkpointing;
  }

  private async checkpointNow(): Promise<string | undefined> {
    if (this.#failure) throw this.#failure;
    await this.store.flush();
    const size = this.store.durableSize;
    if (size === this.tree.anchorSize && this.store.checkpointCount > 0) return undefined;
    this.#sinceCheckpoint = 0;
    const snap = this.tree.snapshot(size);
    let note: string;
    try {
      note = await this.signer.sign({ size: BigInt(size), root: snap.root }, (fromSize) => {
        // The anchor is always the last signed size; anything else is a bug, and the signer refuses it.
        if (Number(fromSize) !== this.tree.anchorSize) return [];
        return snap.proof;
      });
      await this.store.appendCheckpoint(note);
      await this.store.saveTreeState(snap.state);
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
    this.tree.advanceAnchor(size, snap.state);
    this.options.onCheckpoint?.(note);
    return note;
  }

  /**
   * KEY_ROTATION (docs/FORMAT.md §3.3): segments started from now on are wrapped to `recipients`.
   * Segments already open keep their data key until they roll over or end.
   */
  rotateRecipients(recipients: readonly PublicKey[]): { index: number; durable: Promise<void> } {
    if (recipients.length === 0) throw new SealError('INVALID_ARGUMENT', 'at least one recipient is needed');
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const ids = recipients.map((r) => hex(this.options.provider.digest('sha256', r.spkiDer())));
    const appended = this.appendSystem(SystemType.KEY_ROTATION, { recipients: ids });
    this.#context = { ...this.#context, recipients };
    return appended;
  }

  /**
   * SIGNER_ROTATION (docs/FORMAT.md §5.3): signs everything so far with the old key, appends the new
   * key signed by the old one, then signs a checkpoint covering that entry with the new key.
   */
  async rotateSigner(newKey: PrivateKey): Promise<void> {
    this.assertUsable();
    await this.checkpoint();
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const keyId = (k: PublicKey) => hex(this.options.provider.digest('sha256', k.spkiDer()).subarray(0, 4));
    const signature = await this.signer.rotationSignature(newKey.publicKey);
    this.appendSystem(SystemType.SIGNER_ROTATION, {
      old_key_id: keyId(this.signer.publicKey),
      new_key_id: keyId(newKey.publicKey),
      new_key_spki: Buffer.from(newKey.publicKey.spkiDer()).toString('base64'),
      signature,
    });
    this.signer = this.signer.withKey(newKey); // the same state file: opens nothing
    await this.checkpoint();
  }

  /**
   * Writes and fsyncs every entry appended so far now, without waiting for the batch deadline. Rejects
   * with the store's failure. Used when bytes may pass only once their record is durable.
   */
  flush(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return this.store.flush();
  }

  /** Ends every open session, writes LOG_STOP, signs a last checkpoint, and releases the store. */
  close(reason = 'stopped'): Promise<void> {
    this.#closing ??= this.closeNow(reason);
    return this.#closing;
  }

  /**
   * Everything before LOG_STOP is signed first: a signer that fails then (a token pulled while the gate
   * was idle) fails the log while LOG_STOP can still say so (reason `failed`, stopAfterFailure), and
   * close rejects with the error. Only a signer that fails between that checkpoint and the last one
   * leaves LOG_STOP with its normal reason; close rejects then too, and the next start's first
   * checkpoint signs it.
   */
  private async closeNow(reason: string): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    try {
      if (!this.#failure) {
        for (const s of [...this.#sessions]) s.end('gate stopping');
        await this.checkpoint();
        this.appendSystem(SystemType.LOG_STOP, { reason });
        this.#stopAppended = true;
        await this.checkpoint();
      }
    } finally {
      this.#closed = true;
      this.signer.close();
      // A run that failed before its LOG_STOP could be appended ends as a crash does: the lock stays,
      // and the next start writes CRASH_RECOVERY (never a LOG_START after a run left open).
      if (this.#failure && !this.#stopAppended) await this.store.abandon();
      else await this.store.close();
    }
  }

  /** Seals spooled export/decrypt events (docs/FORMAT.md §6.1); each file goes once its entry is durable. */
  drainAuditSpool(): number {
    for (const [name, remove] of this.#spoolSealed) {
      if (tryRemove(remove)) this.#spoolSealed.delete(name);
    }
    const spooled = readSpool(join(this.options.dir, SPOOL_DIR)).filter(
      (s) => !this.#spoolInFlight.has(s.name) && !this.#spoolSealed.has(s.name),
    );
    for (const { name, event, remove } of spooled) {
      this.#spoolInFlight.add(name);
      const { durable } = this.appendSystem(SystemType.AUDIT_EVENT, event);
      durable.then(
        () => {
          this.#spoolInFlight.delete(name);
          // A file that cannot be removed now is removed at a later drain, never sealed twice.
          if (!tryRemove(remove)) this.#spoolSealed.set(name, remove);
        },
        () => this.#spoolInFlight.delete(name),
      );
    }
    return spooled.length;
  }

  private startTimers(): void {
    const heartbeat = setInterval(() => {
      if (this.#failure) return;
      try {
        this.appendSystem(SystemType.HEARTBEAT, { n: ++this.#heartbeats });
      } catch {
        return; // fail() has already raised the alarm.
      }
      try {
        this.drainAuditSpool();
      } catch {
        // The spool is read again at the next heartbeat; an unreadable spool must not fail the log.
      }
    }, this.policy.heartbeatMs);
    const checkpoint = setInterval(
      () => void this.checkpoint().catch(() => undefined),
      this.policy.checkpointEveryMs,
    );
    heartbeat.unref();
    checkpoint.unref();
    this.#timers.push(heartbeat, checkpoint);
  }

  private assertUsable(): void {
    if (this.#failure) {
      throw new SealError('LOG_FAILED', `the log failed and accepts nothing more: ${this.#failure.message}`, {
        cause: this.#failure,
      });
    }
    if (this.#closed) throw new SealError('LOG_FAILED', 'the log is closed');
  }

  private fail(err: Error): void {
    if (this.#failure || this.#failing) return;
    this.#failing = true;
    for (const t of this.#timers) clearInterval(t);
    if (!this.#stopAppended && !this.#closed && !this.store.failure) this.stopAfterFailure(err);
    this.#failure = err;
    this.options.onFailure?.(err);
  }

  /**
   * The store still takes entries (the signer failed, or a caller's bad entry): end the run now, while
   * its heartbeats are on time, so that the log verifies without a crash recovery. Every session still
   * open gets its SESSION_END (FINAL), then LOG_STOP names the failure. If any of that
   * cannot be appended, no LOG_STOP is written (it would close segments left open): the lock stays at
   * close, and the next start's CRASH_RECOVERY names them.
   */
  private stopAfterFailure(err: Error): void {
    try {
      for (const s of [...this.#sessions]) {
        if (!s.ended) s.end(FAILED_SESSION_REASON);
      }
      this.appendSystem(SystemType.LOG_STOP, {
        reason: FAILED_STOP_REASON,
        failure: err.message.slice(0, MAX_FAILURE_TEXT),
      });
      this.#stopAppended = true;
      void this.store.flush().catch(() => undefined);
    } catch {
      // The store failed meanwhile (or a session could not end): the lock stays, recovery follows.
    }
  }
}

/** Runs `remove`; false if it threw (the file stays, and is removed later). */
function tryRemove(remove: () => void): boolean {
  try {
    remove();
    return true;
  } catch {
    return false;
  }
}
