/**
 * Real logs for the audit tests: written by SealedLog into a temp directory, with several sessions,
 * segment rollover, heartbeats, several runs and (through a child process) a crash.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CryptoProvider, PrivateKey } from '../../src/crypto/index.js';
import {
  BUNDLE_FILES,
  encodeNoteFrames,
  HASHED_FILES,
  manifestNoteBody,
  openBundle,
  readNoteFrames,
  SIGNERS_FORMAT,
  writeBundleFiles,
  type SignersFile,
} from '../../src/audit/bundle.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog, type LogPolicy } from '../../src/seal/log.js';
import { noteKeyId, parseNote, signNote } from '../../src/seal/note.js';

export const ORIGIN = 'test.sealgate/audit';

export interface LogKeys {
  readonly recipient: PrivateKey;
  readonly signer: PrivateKey;
}

export async function makeKeys(p: CryptoProvider): Promise<LogKeys> {
  return {
    recipient: await p.generateKey({ type: 'rsa', bits: 2048 }),
    signer: await p.generateKey({ type: 'ec', curve: 'P-384' }),
  };
}

export function tempDir(prefix = 'sealgate-audit-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunOptions {
  readonly origin?: string;
  readonly create?: boolean;
  readonly sessions?: number;
  readonly records?: number;
  readonly recordBytes?: number;
  readonly policy?: Partial<LogPolicy>;
  readonly clock?: () => bigint;
  /** Leave the last session open (the log closes it with SESSION_END "gate stopping"). */
  readonly waitMs?: number;
}

/** One run of the gate: open, record `sessions` sessions of `records` DATA_OUT records each, interleaved, close. */
export async function writeRun(
  p: CryptoProvider,
  dir: string,
  keys: LogKeys,
  o: RunOptions = {},
): Promise<void> {
  const log = await SealedLog.open({
    provider: p,
    dir,
    origin: o.origin ?? ORIGIN,
    recipients: [keys.recipient.publicKey],
    signingKey: keys.signer,
    create: o.create ?? false,
    policy: { maxRecords: 5, checkpointEveryEntries: 16, fsyncEveryEntries: 256, ...o.policy },
    ...(o.clock ? { clock: o.clock } : {}),
  });
  const sessions = Array.from({ length: o.sessions ?? 3 }, () => log.openSession());
  const data = new Uint8Array(o.recordBytes ?? 48).fill(0x61);
  for (const [i, s] of sessions.entries()) s.event(RecordType.EXEC, { channel: 0, command: `cmd ${i}` });
  for (let r = 0; r < (o.records ?? 6); r++) {
    for (const s of sessions) s.event(RecordType.DATA_OUT, { channel: 0, data });
  }
  if (o.waitMs) await new Promise((r) => setTimeout(r, o.waitMs));
  for (const s of sessions) s.end('closed');
  await log.close('test run done');
}

/**
 * A run that crashes: a child process opens the log, records into two sessions (one ended, one not),
 * makes everything durable, and exits without closing, leaving writer.lock and an open segment.
 */
export function crashRun(p: CryptoProvider, dir: string, keys: LogKeys, origin = ORIGIN): void {
  const work = tempDir('sealgate-crash-keys-');
  const signerFile = join(work, 'signer.pem');
  const recipientFile = join(work, 'recipient.pub.pem');
  writeFileSync(signerFile, p.exportPrivateKey(keys.signer), { mode: 0o600 });
  writeFileSync(recipientFile, keys.recipient.publicKey.spkiPem());
  const script = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
  const r = spawnSync(process.execPath, [script, dir, origin, signerFile, recipientFile], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`crash writer failed (${r.status}): ${r.stderr}`);
}

/**
 * The forger: copies the genuine bundle `dir` to `outDir`, re-signed with `attacker`, a P-384 key of
 * their own. Every checkpoint is re-signed over its unchanged body, keys/signers.json names only the
 * attacker's key, manifest.json's file hashes are redone and manifest.sig is signed. The result is
 * self-consistent: nothing in it, only a pinned key, tells it from the gate's. (Its content is the
 * real log's, so that a failure can only come from whom the signatures are by.)
 */
export async function resignBundle(
  p: CryptoProvider,
  dir: string,
  outDir: string,
  attacker: PrivateKey,
): Promise<void> {
  const bundle = openBundle(dir);
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const sha256 = (b: Uint8Array): string => hex(p.digest('sha256', b));
  const manifest = JSON.parse(Buffer.from(bundle.file(BUNDLE_FILES.manifest)!).toString('utf8')) as {
    origin: string;
    files: Record<string, string>;
  };
  const origin = manifest.origin;
  const notes: string[] = [];
  for (const n of readNoteFrames(bundle.file(BUNDLE_FILES.checkpoints)!).notes)
    notes.push(await signNote(p, attacker, origin, parseNote(n).body));
  const signers: SignersFile = {
    format: SIGNERS_FORMAT,
    origin,
    signers: [
      {
        key_id: hex(noteKeyId(p, attacker.publicKey)),
        sha256: sha256(attacker.publicKey.spkiDer()),
        spki_pem: attacker.publicKey.spkiPem(),
      },
    ],
    rotations: [],
  };
  const files = new Map<string, Uint8Array>([
    [BUNDLE_FILES.entries, new Uint8Array(readFileSync(join(dir, BUNDLE_FILES.entries)))],
    [BUNDLE_FILES.checkpoints, encodeNoteFrames(notes)],
    [BUNDLE_FILES.proofs, bundle.file(BUNDLE_FILES.proofs)!],
    [BUNDLE_FILES.signers, Buffer.from(`${JSON.stringify(signers, null, 2)}\n`)],
  ]);
  manifest.files = Object.fromEntries(HASHED_FILES.map((f) => [f, sha256(files.get(f)!)]));
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  files.set(BUNDLE_FILES.manifest, manifestBytes);
  files.set(
    BUNDLE_FILES.signature,
    Buffer.from(await signNote(p, attacker, origin, manifestNoteBody(origin, sha256(manifestBytes)))),
  );
  mkdirSync(outDir, { recursive: true });
  writeBundleFiles(outDir, files);
}
