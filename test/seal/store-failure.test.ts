/**
 * A log that fails must leave a store that verifies after the next start (issue 10, item 2): the run
 * that failed, and the next start, record what happened (LOG_STOP with reason "failed", or
 * CRASH_RECOVERY), never a LOG_START after a run left open (RUN_NOT_CLOSED).
 *
 * - EMFILE for real: a writer (fd-writer.ts) under a low `ulimit -n` takes every descriptor left, then
 *   records, checkpoints and closes. Since no file is opened on the write path, the store must not fail.
 * - A checkpoint signer that fails (a token pulled) while the store is fine: LOG_STOP "failed" at once.
 * - ENOSPC for real on a small tmpfs: the store fails, the lock stays, the next start recovers.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  OpenSslProvider,
  type CryptoProvider,
  type PrivateKey,
  type PublicKey,
} from '../../src/crypto/index.js';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog, type VerifyReport } from '../../src/audit/verify/verifier.js';
import { SPOOL_DIR } from '../../src/seal/audit-spool.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { EntryKind, RecordType, SystemType } from '../../src/seal/format/types.js';
import { FAILED_STOP_REASON, SealedLog, type LogPolicy } from '../../src/seal/log.js';
import { LocalStore, STORE_FILES } from '../../src/seal/store.js';
import { FD_ORIGIN } from './fd-writer.js';

const p = new OpenSslProvider();
const WRITER = join(fileURLToPath(new URL('.', import.meta.url)), 'fd-writer.js');
/** Low enough to exhaust at once, high enough for node and OpenSSL to start. */
const FD_LIMIT = 256;

let work: string;
let recipient: PrivateKey;
let signer: PrivateKey;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sealgate-store-failure-'));
  recipient = await p.generateKey({ type: 'rsa', bits: 2048 });
  signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
});
after(() => rmSync(work, { recursive: true, force: true }));

interface SystemFact {
  readonly index: number;
  readonly type: SystemType;
  readonly body: Record<string, unknown>;
}

function systemEntries(dir: string): SystemFact[] {
  const store = LocalStore.openReadOnly(dir);
  try {
    const out: SystemFact[] = [];
    let index = 0;
    for (const bytes of store.entries(0, store.size)) {
      if (bytes[0] === EntryKind.SYSTEM) {
        const e = decodeEntry(bytes);
        if (e.kind === EntryKind.SYSTEM) out.push({ index, type: e.type, body: e.body });
      }
      index++;
    }
    return out;
  } finally {
    void store.close();
  }
}

function verifyStore(dir: string, key: PublicKey): VerifyReport {
  const source = storeSource(dir);
  try {
    return verifyLog(p, source, { trustedSigners: [key] });
  } finally {
    source.close();
  }
}

/** The next start: opens the log (recovering if needed), signs, and stops cleanly. */
async function restart(dir: string, origin: string, provider: CryptoProvider = p): Promise<SealedLog> {
  const log = await SealedLog.open({
    provider,
    dir,
    origin,
    recipients: [recipient.publicKey],
    signingKey: signer,
  });
  await log.close('stopped');
  return log;
}

function assertVerifies(report: VerifyReport): void {
  assert.equal(report.failureCounts.RUN_NOT_CLOSED ?? 0, 0, 'no RUN_NOT_CLOSED');
  assert.deepEqual(report.failures, []);
  assert.equal(report.ok, true);
}

function runFdWriter(
  dir: string,
  mode: 'close' | 'exit',
): Promise<{ lines: string[]; status: number | null; stderr: string }> {
  const pub = join(work, 'recipient.pub.pem');
  const key = join(work, 'signer.key.pem');
  writeFileSync(pub, recipient.publicKey.spkiPem());
  writeFileSync(key, p.exportPrivateKey(signer), { mode: 0o600 });
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve, reject) => {
    // prlimit (util-linux) sets the limit of the node process itself, soft and hard: it cannot raise it.
    const child = spawn(
      'prlimit',
      [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, WRITER, dir, pub, key, mode],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ lines: out.split('\n').filter(Boolean), status, stderr });
    });
  });
}

const line = (lines: string[], word: string): string[] | undefined =>
  lines.find((l) => l.startsWith(`${word} `) || l === word)?.split(' ');

describe('a failed log leaves a store that verifies after the next start (issue 10)', () => {
  it('EMFILE: with every descriptor taken the writer records, checkpoints and closes; the store never fails', async (t: TestContext) => {
    const dir = join(work, 'emfile-close');
    const run = await runFdWriter(dir, 'close');
    t.diagnostic(run.lines.filter((l) => !l.startsWith('ACK')).join(' | '));
    assert.equal(run.status, 0, run.stderr);
    const exhausted = line(run.lines, 'EXHAUSTED');
    assert.ok(exhausted, 'the writer took every descriptor');
    assert.equal(exhausted[2], 'EMFILE');
    assert.ok(Number(exhausted[1]) > 100, `only ${exhausted[1]} descriptors taken`);
    assert.deepEqual(line(run.lines, 'STILL_EMFILE'), ['STILL_EMFILE', 'yes'], 'still exhausted at the end');
    // The store never failed: no open() is needed on the write path any more.
    assert.equal(line(run.lines, 'FAILED'), undefined, run.lines.join('\n'));
    assert.equal(line(run.lines, 'APPEND_ERROR'), undefined);
    assert.equal(line(run.lines, 'CLOSE_ERROR'), undefined);
    const [, before, afterwards] = line(run.lines, 'CHECKPOINTS')!;
    assert.ok(
      Number(afterwards) >= Number(before) + 10,
      `checkpoints ${before} → ${afterwards}: signed while exhausted`,
    );
    assert.ok(line(run.lines, 'DONE'));
    assert.equal(existsSync(join(dir, STORE_FILES.lock)), false, 'a clean close released the lock');

    const first = systemEntries(dir);
    const stop = first.find((e) => e.type === SystemType.LOG_STOP);
    assert.equal(stop?.body.reason, 'stopped');
    assert.ok(
      first.some((e) => e.type === SystemType.HEARTBEAT),
      'heartbeats while exhausted',
    );
    // The spooled event was sealed (at start, or at a heartbeat), or is still waiting: never lost.
    const audit = first.filter((e) => e.type === SystemType.AUDIT_EVENT);
    const spooled = readdirSync(join(dir, SPOOL_DIR)).filter((n) => n.endsWith('.json'));
    assert.equal(audit.length + spooled.length, 1);
    for (const e of audit) assert.equal(e.body.action, 'export');

    const log = await restart(dir, FD_ORIGIN);
    assert.equal(log.recovery, undefined, 'no crash recovery after a clean stop');
    const entries = systemEntries(dir);
    assert.equal(entries.filter((e) => e.type === SystemType.CRASH_RECOVERY).length, 0);
    const report = verifyStore(dir, signer.publicKey);
    assertVerifies(report);
    assert.equal(report.counts.runs, 2);
  });

  it('EMFILE, then an exit without close: the next start writes CRASH_RECOVERY and the store verifies', async (t: TestContext) => {
    const dir = join(work, 'emfile-exit');
    const run = await runFdWriter(dir, 'exit');
    t.diagnostic(run.lines.join(' | '));
    assert.equal(run.status, 0, run.stderr);
    assert.equal(line(run.lines, 'EXHAUSTED')?.[2], 'EMFILE');
    assert.equal(line(run.lines, 'FAILED'), undefined);
    assert.ok(existsSync(join(dir, STORE_FILES.lock)), 'the lock stays');
    const log = await restart(dir, FD_ORIGIN);
    assert.ok(log.recovery, 'crash recovery ran');
    const recoveries = systemEntries(dir).filter((e) => e.type === SystemType.CRASH_RECOVERY);
    assert.equal(recoveries.length, 1);
    assertVerifies(verifyStore(dir, signer.publicKey));
  });

  it('a signer that fails while the store is fine: sessions end, LOG_STOP "failed" names it; the restart verifies', async () => {
    const dir = join(work, 'signer-fails');
    let broken = false;
    const token: CryptoProvider = Object.assign(Object.create(p) as CryptoProvider, {
      sign: (k: PrivateKey, data: Uint8Array, scheme: Parameters<CryptoProvider['sign']>[2]) =>
        broken ? Promise.reject(new Error('CKR_DEVICE_REMOVED')) : p.sign(k, data, scheme),
    });
    const failures: Error[] = [];
    const policy: Partial<LogPolicy> = { fsyncEveryMs: 2, fsyncEveryEntries: 4 };
    const log = await SealedLog.open({
      provider: token,
      dir,
      origin: 'test.sealgate/signer-fails',
      recipients: [recipient.publicKey],
      signingKey: signer,
      create: true,
      policy,
      onFailure: (err) => failures.push(err),
    });
    const a = log.openSession();
    const b = log.openSession();
    for (let i = 0; i < 10; i++) {
      a.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from(`a ${i}`) });
      b.event(RecordType.DATA_IN, { channel: 0, data: Buffer.from(`b ${i}`) });
    }
    log.openSession(); // a session with no record yet
    broken = true;
    await assert.rejects(log.checkpoint(), /CKR_DEVICE_REMOVED/);
    assert.equal(failures.length, 1);
    assert.ok(a.ended && b.ended, 'the log ended its sessions');
    assert.throws(
      () => a.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from('after') }),
      (err: unknown) => err instanceof Error && (err as { code?: string }).code === 'LOG_FAILED',
    );
    assert.throws(() => log.openSession(), /LOG_FAILED|failed/);
    await log.close('stopped'); // resolves: the run's end is recorded
    assert.equal(existsSync(join(dir, STORE_FILES.lock)), false);

    const facts = systemEntries(dir);
    const stops = facts.filter((e) => e.type === SystemType.LOG_STOP);
    assert.equal(stops.length, 1, 'one LOG_STOP: the one naming the failure');
    assert.equal(stops[0]!.body.reason, FAILED_STOP_REASON);
    assert.match(String(stops[0]!.body.failure), /CKR_DEVICE_REMOVED/);

    broken = false;
    const next = await restart(dir, 'test.sealgate/signer-fails', token);
    assert.equal(next.recovery, undefined);
    const report = verifyStore(dir, signer.publicKey);
    assertVerifies(report);
    const failed = report.warnings.filter((w) => w.code === 'RUN_FAILED');
    assert.equal(failed.length, 1, 'the auditor is told the run ended with a failure');
    assert.match(failed[0]!.message, /stopped because the log failed: .*CKR_DEVICE_REMOVED/);
  });

  it('a signer that fails at the final checkpoint: close rejects, LOG_STOP "failed" names it; the restart verifies', async () => {
    const dir = join(work, 'signer-fails-at-close');
    let broken = false;
    const token: CryptoProvider = Object.assign(Object.create(p) as CryptoProvider, {
      sign: (k: PrivateKey, data: Uint8Array, scheme: Parameters<CryptoProvider['sign']>[2]) =>
        broken ? Promise.reject(new Error('CKR_DEVICE_REMOVED')) : p.sign(k, data, scheme),
    });
    const failures: Error[] = [];
    const log = await SealedLog.open({
      provider: token,
      dir,
      origin: 'test.sealgate/signer-fails-at-close',
      recipients: [recipient.publicKey],
      signingKey: signer,
      create: true,
      policy: { fsyncEveryMs: 2, fsyncEveryEntries: 4 },
      onFailure: (err) => failures.push(err),
    });
    const a = log.openSession();
    for (let i = 0; i < 10; i++) a.event(RecordType.DATA_OUT, { channel: 0, data: Buffer.from(`a ${i}`) });
    await log.checkpoint();
    // The token goes while the gate is idle: the first signing since is the one at stop.
    broken = true;
    await assert.rejects(log.close('stopped'), /CKR_DEVICE_REMOVED/);
    assert.equal(failures.length, 1, 'onFailure: the gate logs its ALERT');
    assert.match(String(log.failed?.message), /CKR_DEVICE_REMOVED/);
    assert.equal(existsSync(join(dir, STORE_FILES.lock)), false, 'the run is closed by its LOG_STOP');

    const stops = systemEntries(dir).filter((e) => e.type === SystemType.LOG_STOP);
    assert.equal(stops.length, 1, 'one LOG_STOP: the one naming the failure');
    assert.equal(stops[0]!.body.reason, FAILED_STOP_REASON);
    assert.match(String(stops[0]!.body.failure), /CKR_DEVICE_REMOVED/);

    broken = false;
    const next = await restart(dir, 'test.sealgate/signer-fails-at-close', token);
    assert.equal(next.recovery, undefined);
    const report = verifyStore(dir, signer.publicKey);
    assertVerifies(report);
    assert.equal(report.warnings.filter((w) => w.code === 'RUN_FAILED').length, 1);
  });

  it('ENOSPC on a 256 KiB tmpfs: the store fails, the lock stays, the next start writes CRASH_RECOVERY', async (t: TestContext) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a tmpfs');
    const mnt = mkdtempSync(join(tmpdir(), 'sealgate-enospc-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0) {
      rmSync(mnt, { recursive: true, force: true });
      return t.skip(`cannot mount a tmpfs: ${mounted.stderr.trim()}`);
    }
    try {
      const dir = join(mnt, 'store');
      const origin = 'test.sealgate/enospc';
      const failures: Error[] = [];
      const log = await SealedLog.open({
        provider: p,
        dir,
        origin,
        recipients: [recipient.publicKey],
        signingKey: signer,
        create: true,
        policy: { fsyncEveryMs: 2, fsyncEveryEntries: 4, checkpointEveryEntries: 16 },
        onFailure: (err) => failures.push(err),
      });
      const runId = log.runId;
      const session = log.openSession();
      let acked = 0;
      for (let i = 0; i < 1000 && failures.length === 0; i++) {
        try {
          await session.event(RecordType.DATA_OUT, { channel: 0, data: new Uint8Array(2048).fill(i) })
            .durable;
          acked++;
        } catch {
          break;
        }
      }
      assert.equal(failures.length, 1, 'the disk filled up and the log failed');
      t.diagnostic(`${acked} records acknowledged before: ${failures[0]!.message}`);
      await log.close('stopped').catch(() => undefined);
      assert.ok(existsSync(join(dir, STORE_FILES.lock)), 'the lock stays: the run could not record its end');

      const remounted = spawnSync('mount', ['-o', 'remount,size=8m', mnt], { encoding: 'utf8' });
      assert.equal(remounted.status, 0, remounted.stderr);
      const next = await restart(dir, origin);
      assert.equal(next.recovery?.previousRunId, runId);
      assert.equal(next.recovery?.openSegments, 1);
      const facts = systemEntries(dir);
      const recoveries = facts.filter((e) => e.type === SystemType.CRASH_RECOVERY);
      assert.equal(recoveries.length, 1);
      assert.equal(recoveries[0]!.body.previous_run_id, runId);
      assertVerifies(verifyStore(dir, signer.publicKey));
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
