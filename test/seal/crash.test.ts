/**
 * Crash test: a real writer (test/seal/crash-writer.ts) killed with SIGKILL at seeded-random points, ≥ 20
 * times, on one store. docs/FORMAT.md §6 promises:
 *
 * - an acknowledged append (its fsync returned) survives: every ACK line the child printed names a record
 *   that decrypts from the store after the next start's crash recovery, and at the end;
 * - each crash is accounted for: one CRASH_RECOVERY entry per kill, naming the segments left open;
 * - checkpoints stay valid: the last one verifies with the signer's public key, and its root is the root
 *   recomputed from the stored entries.
 *
 * Some kills are followed by a simulated torn write (a frame cut short, or zero-filled blocks, appended to
 * entries.bin, as a crash in the middle of a write can leave): recovery must drop exactly those bytes.
 *
 * SEALGATE_CRASH_SEED replays a run; SEALGATE_CRASH_KILLS changes the number of kills (default 20).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it, type TestContext } from 'node:test';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import { decryptLog, DecryptError } from '../../src/audit/decrypt.js';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { parseCheckpoint } from '../../src/seal/checkpoint.js';
import { hashLeaf, rootOf } from '../../src/seal/merkle.js';
import { verifyNote } from '../../src/seal/note.js';
import { LocalStore, STORE_FILES } from '../../src/seal/store.js';
import { CRASH_ORIGIN, prng } from './crash-writer.js';

const p = new OpenSslProvider();
const sha256 = (d: Uint8Array): Uint8Array => p.digest('sha256', d);
const WRITER = join(fileURLToPath(new URL('.', import.meta.url)), 'crash-writer.js');
const KILLS = Number(process.env.SEALGATE_CRASH_KILLS ?? 20);
const SEED = Number(process.env.SEALGATE_CRASH_SEED ?? 0x5ea19a7e);

interface ChildRun {
  readonly acks: string[];
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Runs the writer. `onReady` runs once it printed READY (recovery done); `killAt` decides, from the time
 * since READY and the ACKs of this run, when to SIGKILL it (undefined: let it finish).
 */
function runWriter(
  args: string[],
  onReady: () => void,
  killAt?: { afterMs: number } | { afterAcks: number },
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [WRITER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: string[] = [];
    let stderr = '';
    let rest = '';
    let ready = false;
    const kill = (): void => void child.kill('SIGKILL');
    const guard = setTimeout(kill, 30_000); // a hung child must not hang the test
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('ACK ')) {
          acks.push(line.slice(4));
          if (killAt && 'afterAcks' in killAt && acks.length >= killAt.afterAcks) kill();
        } else if (line.startsWith('READY ') && !ready) {
          ready = true;
          try {
            onReady();
          } catch (err) {
            kill();
            reject(err as Error);
            return;
          }
          if (killAt && 'afterMs' in killAt) setTimeout(kill, killAt.afterMs);
        }
      }
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(guard);
      if (rest.startsWith('ACK ')) acks.push(rest.slice(4)); // a last line without its newline is not an ACK
      resolve({ acks: acks.filter((a) => /^[0-9a-f]{32} \d+$/.test(a)), status, signal, stderr });
    });
  });
}

interface StoreFacts {
  readonly entries: Uint8Array[];
  readonly present: Set<string>;
  readonly recoveries: { open_segments: unknown[]; truncated_bytes: number }[];
}

/** The store's entries, read-only (beside a live writer, if any). */
function readEntries(dir: string): Uint8Array[] {
  const store = LocalStore.openReadOnly(dir);
  try {
    return [...store.entries(0, store.size)].map((e) => e.slice());
  } finally {
    void store.close();
  }
}

/** Reads the store and decrypts every record. */
async function readStore(dir: string, recipient: PrivateKey): Promise<StoreFacts> {
  const entries = readEntries(dir);
  const present = new Set<string>();
  const recoveries: StoreFacts['recoveries'] = [];
  const run = decryptLog(
    p,
    entries.map((bytes, index) => ({ index, bytes })),
    recipient,
  );
  try {
    for await (const e of run) {
      if (e.kind === 'record' && e.type === 'DATA_OUT') {
        const key = String(e.text);
        assert.ok(!present.has(key), `record ${key} appears twice`);
        present.add(key);
      } else if (e.kind === 'system' && e.type === 'CRASH_RECOVERY') {
        recoveries.push(e as unknown as StoreFacts['recoveries'][number]);
      }
    }
  } catch (err) {
    // A store whose writers were all killed before their first segment holds no segment yet.
    if (!(
      err instanceof DecryptError &&
      err.code === 'NO_SEGMENT_FOR_KEY' &&
      run.summary.segmentsNotAddressed === 0
    ))
      throw err;
  }
  return { entries, present, recoveries };
}

/** The last checkpoint verifies with the signer's key, and its root is recomputed from the entries. */
function checkLastCheckpoint(dir: string, signer: PrivateKey, entries: Uint8Array[]): bigint {
  const store = LocalStore.openReadOnly(dir);
  const note = store.lastCheckpoint();
  void store.close();
  assert.ok(note, 'the store has a checkpoint');
  const { body } = verifyNote(p, note, [{ name: CRASH_ORIGIN, key: signer.publicKey }]);
  const cp = parseCheckpoint(body);
  assert.ok(cp.size <= BigInt(entries.length), `checkpoint size ${cp.size} > ${entries.length} entries`);
  const leaves = entries.slice(0, Number(cp.size)).map((e) => hashLeaf(sha256, e));
  assert.deepEqual(cp.root, rootOf(sha256, leaves), `root of the checkpoint of size ${cp.size}`);
  return cp.size;
}

/** Whether entries.bin ends exactly after a whole frame (so an appended torn frame is the only one). */
function endsOnFrame(dir: string): boolean {
  const bin = readFileSync(join(dir, STORE_FILES.entries));
  let at = 0;
  while (at + 4 <= bin.length) {
    const len = bin.readUInt32BE(at);
    if (len === 0 || at + 4 + len > bin.length) return false;
    at += 4 + len;
  }
  return at === bin.length;
}

it(`acknowledged records survive ${KILLS} SIGKILLs; crashes are recorded; checkpoints verify`, async (t: TestContext) => {
  const random = prng(SEED);
  const work = mkdtempSync(join(tmpdir(), 'sealgate-crash-'));
  const dir = join(work, 'store');
  const [recipient, signer] = await Promise.all([
    p.generateKey({ type: 'rsa', bits: 2048 }),
    p.generateKey({ type: 'ec', curve: 'P-384' }),
  ]);
  const pubFile = join(work, 'recipient.pub.pem');
  const signerFile = join(work, 'signer.key.pem');
  writeFileSync(pubFile, recipient.publicKey.spkiPem());
  writeFileSync(signerFile, p.exportPrivateKey(signer), { mode: 0o600 });
  t.diagnostic(`seed ${SEED} (replay with SEALGATE_CRASH_SEED=${SEED}); store ${dir}`);

  const acked: string[] = [];
  /** Bytes of simulated torn writes, by kill number; recovery must drop exactly these. */
  const torn = new Map<number, number>();
  let checks = 0;
  const checkAfterRestart = async (kills: number): Promise<void> => {
    const facts = await readStore(dir, recipient);
    const missing = acked.filter((a) => !facts.present.has(a));
    assert.deepEqual(
      missing.slice(0, 5),
      [],
      `${missing.length} acknowledged records missing after restart ${kills}`,
    );
    assert.equal(facts.recoveries.length, kills, 'one CRASH_RECOVERY per kill');
    checks++;
  };

  for (let kill = 0; kill < KILLS; kill++) {
    const killAt =
      random() < 0.5
        ? { afterMs: 100 + Math.floor(random() * 500) }
        : { afterAcks: 1 + Math.floor(random() * 400) };
    let ready: Promise<void> = Promise.resolve();
    const run = await runWriter(
      [dir, pubFile, signerFile, String(Math.floor(random() * 2 ** 31))],
      () => {
        ready = checkAfterRestart(kill);
        ready.catch(() => undefined); // awaited below, once the child is gone
      },
      killAt,
    );
    await ready;
    assert.equal(
      run.signal,
      'SIGKILL',
      `run ${kill} was killed, not exited (${String(run.status)}): ${run.stderr}`,
    );
    acked.push(...run.acks);
    // The store as the dead writer left it: the last checkpoint must already verify.
    checkLastCheckpoint(dir, signer, readEntries(dir));
    if (random() < 0.3 && endsOnFrame(dir)) {
      const len = 64 + Math.floor(random() * 4000);
      const tail =
        random() < 0.5
          ? Buffer.alloc(len) // zero-filled blocks
          : (() => {
              const frame = Buffer.alloc(4 + Math.floor(len / 2), 0xa5); // a frame cut short
              frame.writeUInt32BE(len, 0);
              return frame;
            })();
      appendFileSync(join(dir, STORE_FILES.entries), tail);
      torn.set(kill, tail.length);
    }
  }

  // A last, clean run: it recovers from the last kill, writes a little, and stops.
  const last = await runWriter([dir, pubFile, signerFile, '1', '60'], () => undefined);
  assert.equal(last.status, 0, `the final run failed: ${last.stderr}`);
  acked.push(...last.acks);
  const facts = await readStore(dir, recipient);
  const missing = acked.filter((a) => !facts.present.has(a));
  assert.deepEqual(
    missing.slice(0, 5),
    [],
    `${missing.length} of ${acked.length} acknowledged records are missing`,
  );
  assert.equal(facts.recoveries.length, KILLS, 'one CRASH_RECOVERY per kill');
  for (const [kill, bytes] of torn) {
    assert.equal(
      facts.recoveries[kill]?.truncated_bytes,
      bytes,
      `recovery after kill ${kill} dropped the torn tail`,
    );
  }
  const size = checkLastCheckpoint(dir, signer, facts.entries);
  assert.equal(size, BigInt(facts.entries.length), 'a clean stop checkpoints every entry');
  // The offline verifier agrees: every open segment is named by a CRASH_RECOVERY, every run is paired.
  const source = storeSource(dir);
  try {
    const report = verifyLog(p, source, { trustedSigners: [signer.publicKey], heartbeatSeconds: 1 });
    const shown = report.failures.slice(0, 5).map((f) => `${f.code} at ${f.location}: ${f.message}`);
    assert.ok(report.ok, `verifyLog failed:\n${shown.join('\n')}`);
    t.diagnostic(
      `verifyLog: ok (${report.counts.segments} segments, ${report.counts.runs} runs, ` +
        `${report.counts.checkpoints} checkpoints, ${report.warnings.length} warnings)`,
    );
  } finally {
    source.close();
  }

  // Each CRASH_RECOVERY names only the segments the run before it left open: every segment is named once.
  const openSegments = facts.recoveries.reduce((n, r) => n + r.open_segments.length, 0);
  const distinctOpen = new Set(
    facts.recoveries.flatMap((r) => r.open_segments.map((s) => (s as { segment_id: string }).segment_id)),
  ).size;
  assert.equal(openSegments, distinctOpen, 'an open segment was named by more than one CRASH_RECOVERY');
  assert.ok(distinctOpen > 0, 'no kill left a segment open: the kill points are not exercising recovery');
  const truncated = facts.recoveries.reduce((n, r) => n + r.truncated_bytes, 0);
  t.diagnostic(`kills: ${KILLS}; checks after restart: ${checks}`);
  t.diagnostic(`acknowledged records: ${acked.length}; records in the store: ${facts.present.size}`);
  t.diagnostic(
    `entries: ${facts.entries.length}; entries.bin ${statSync(join(dir, STORE_FILES.entries)).size} bytes`,
  );
  t.diagnostic(
    `recovered open segments: ${distinctOpen} distinct (${openSegments} names in ${KILLS} entries)`,
  );
  t.diagnostic(
    `truncated bytes: ${truncated} (simulated torn tails: ${torn.size}, ${[...torn.values()].reduce((a, b) => a + b, 0)} bytes)`,
  );
});
