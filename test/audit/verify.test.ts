/**
 * Verify and export on real logs written by SealedLog: several sessions, segment rollover, heartbeats,
 * several runs, a crash (a child process that dies without closing), partial exports, trusted
 * checkpoints (consistent, forked, from another log, ahead of the log) and signer rotation.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import {
  Bundle,
  BUNDLE_FILES,
  encodeEntryFrames,
  openBundle,
  readEntryFrames,
} from '../../src/audit/bundle.js';
import { AuditError } from '../../src/audit/errors.js';
import { exportBundle, type ExportOptions } from '../../src/audit/export.js';
import { bundleSource, openLogSource } from '../../src/audit/source.js';
import { verifyLog, type VerifyOptions, type VerifyReport } from '../../src/audit/verify/verifier.js';
import { SPOOL_DIR } from '../../src/seal/audit-spool.js';
import { parseCheckpoint } from '../../src/seal/checkpoint.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { EntryKind, RecordType, SystemType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import { parseNote } from '../../src/seal/note.js';
import { LocalStore } from '../../src/seal/store.js';
import { crashRun, makeKeys, ORIGIN, resignBundle, tempDir, writeRun, type LogKeys } from './helpers.js';

const p = new OpenSslProvider();

function verifyPath(path: string, opts: VerifyOptions): VerifyReport {
  const source = openLogSource(path);
  try {
    return verifyLog(p, source, opts);
  } finally {
    source.close();
  }
}

function show(r: VerifyReport): string {
  return JSON.stringify({ failures: r.failures, warnings: r.warnings, counts: r.counts }, null, 1);
}

function assertOk(r: VerifyReport): void {
  assert.equal(r.ok, true, show(r));
}

function codes(r: VerifyReport): Set<string> {
  return new Set(r.failures.map((f) => f.code));
}

function systemEntries(dir: string, type: number): { index: number; body: Record<string, unknown> }[] {
  const store = LocalStore.openReadOnly(dir);
  const out: { index: number; body: Record<string, unknown> }[] = [];
  let i = 0;
  for (const bytes of store.entries(0, store.size)) {
    const e = decodeEntry(bytes);
    if (e.kind === EntryKind.SYSTEM && e.type === type) out.push({ index: i, body: e.body });
    i++;
  }
  void store.close();
  return out;
}

function checkpointOfSize(dir: string, atMost: number): string {
  const store = LocalStore.openReadOnly(dir);
  const notes = store.checkpoints().filter((n) => Number(parseCheckpoint(parseNote(n).body).size) <= atMost);
  void store.close();
  const note = notes.at(-1);
  assert.ok(note, `no checkpoint of size ≤ ${atMost}`);
  return note;
}

describe('verify a real log', () => {
  let keys: LogKeys;
  let store: string;
  let pinned: VerifyOptions;

  /** Exports the store (all of it, or `selection`) into a new directory, signed; returns the bundle. */
  const exportStore = async (selection: Partial<ExportOptions> = {}): Promise<string> => {
    const outDir = join(tempDir(), 'bundle');
    await exportBundle({ provider: p, storeDir: store, outDir, signer: keys.signer, ...selection });
    return outDir;
  };

  before(async () => {
    keys = await makeKeys(p);
    pinned = { trustedSigners: [keys.signer.publicKey] };
    store = join(tempDir(), 'store');
    // Run 1: heartbeats every 25 ms while three sessions record; segments roll over every 5 records.
    await writeRun(p, store, keys, { create: true, policy: { heartbeatMs: 25 }, waitMs: 120 });
    // Run 2 dies in a child process with a session open.
    crashRun(p, store, keys);
    // Runs 3 and 4 start (the first with CRASH_RECOVERY) and stop cleanly.
    await writeRun(p, store, keys, { sessions: 2, records: 3 });
    await writeRun(p, store, keys, { sessions: 1, records: 12 });
  });

  it('verifies the store: runs, heartbeats, rollover, and the crash accounted for', () => {
    const r = verifyPath(store, { ...pinned, heartbeatSeconds: 0.025 });
    assertOk(r);
    assert.equal(r.source.kind, 'store');
    assert.equal(r.source.mode, 'complete');
    assert.equal(r.counts.runs, 4);
    assert.ok(r.counts.heartbeats >= 2, `heartbeats: ${r.counts.heartbeats}`);
    assert.equal(r.counts.sessions, 3 + 2 + 2 + 1);
    assert.ok(r.counts.segments > r.counts.sessions, 'segments roll over');
    assert.equal(r.trust, 'pinned');
    assert.equal(r.result, 'VERIFIED');
    const recoveries = systemEntries(store, SystemType.CRASH_RECOVERY);
    assert.equal(recoveries.length, 1);
    const named = (recoveries[0]?.body.open_segments as { segment_id: string }[]).map((s) => s.segment_id);
    assert.equal(named.length, 1);
    const crashed = r.provenance.filter((s) => s.state === 'crashed').map((s) => s.segment);
    assert.deepEqual(crashed, named);
    assert.equal(r.provenance.filter((s) => s.state === 'open').length, 0);
    // Normal mode: every segment says it was not sealed in FIPS mode, and the summary says so.
    assert.ok(r.provenance.every((s) => s.fips === false && s.backend === 'openssl'));
    assert.match(r.summary, /NOT sealed in FIPS mode/);
  });

  it('hashing the tree in a worker thread gives the same report, also for a tampered bundle', async () => {
    const out = await exportStore();
    const strip = (r: VerifyReport) => ({ ...r, source: { ...r.source, path: '' } });
    for (const path of [store, out]) {
      const inThread = verifyPath(path, { ...pinned, parallel: false });
      assertOk(inThread);
      assert.deepEqual(strip(verifyPath(path, { ...pinned, parallel: true })), strip(inThread));
    }
    const entries = join(out, 'entries.bin');
    const bytes = readFileSync(entries);
    bytes[bytes.length - 7] ^= 0x40;
    writeFileSync(entries, bytes);
    const a = verifyPath(out, { ...pinned, parallel: true });
    assert.ok(codes(a).has('ROOT_MISMATCH'), show(a));
    assert.deepEqual(strip(a), strip(verifyPath(out, { ...pinned, parallel: false })));
  });

  it('a store whose writer died is live: its open segment and unsigned tail are warnings', () => {
    const dir = join(tempDir(), 'store');
    cpSync(store, dir, { recursive: true });
    crashRun(p, dir, keys);
    const r = verifyPath(dir, pinned);
    assertOk(r);
    assert.ok(
      r.warnings.some((w) => w.code === 'SEGMENT_OPEN'),
      show(r),
    );
  });

  it('a complete bundle verifies with the same counts, and the export is logged', async () => {
    const out = join(tempDir(), 'bundle');
    const result = await exportBundle({ provider: p, storeDir: store, outDir: out, signer: keys.signer });
    assert.equal(result.manifest.complete, true);
    assert.deepEqual(readdirSync(out).sort(), [
      'checkpoints.bin',
      'entries.bin',
      'keys',
      'manifest.json',
      'manifest.sig',
      'proofs.json',
    ]);
    const r = verifyPath(out, pinned);
    assertOk(r);
    const s = verifyPath(store, pinned);
    assert.deepEqual(r.counts, s.counts);
    assert.equal(r.source.treeSize, result.manifest.tree_size);
    // FORMAT.md §6.1: the export is an audit event in the store's spool, sealed at the next start.
    const spool = join(store, SPOOL_DIR);
    const event = JSON.parse(readFileSync(join(spool, result.auditSpoolFile), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(event.action, 'export');
    assert.equal((event.details as Record<string, unknown>).manifest_sha256, result.manifestSha256);
  });

  it('the spooled export event is sealed into the log at the next start, and the log still verifies', async () => {
    const dir = join(tempDir(), 'store');
    cpSync(store, dir, { recursive: true });
    const { manifestSha256 } = await exportBundle({
      provider: p,
      storeDir: dir,
      outDir: join(tempDir(), 'b'),
      signer: keys.signer,
    });
    await writeRun(p, dir, keys, { sessions: 1, records: 1 });
    const events = systemEntries(dir, SystemType.AUDIT_EVENT).filter(
      (e) => (e.body.details as Record<string, unknown>).manifest_sha256 === manifestSha256,
    );
    assert.equal(events.length, 1);
    assert.equal(events[0]?.body.action, 'export');
    assert.equal(readdirSync(join(dir, SPOOL_DIR)).filter((n) => n.endsWith('.json')).length, 0);
    assertOk(verifyPath(dir, pinned));
  });

  it('a range export verifies through inclusion proofs', async () => {
    const out = join(tempDir(), 'bundle');
    const result = await exportBundle({
      provider: p,
      storeDir: store,
      outDir: out,
      signer: keys.signer,
      from: 7,
      to: 41,
    });
    assert.equal(result.manifest.complete, false);
    // Leaves 7..40, and before them the headers of the segments the range starts inside (FORMAT.md §7).
    const st = LocalStore.openReadOnly(store);
    const all = [...st.entries(0, 41)].map((b) => b.slice());
    void st.close();
    const open = new Map<string, number>();
    for (const [i, bytes] of all.slice(0, 7).entries()) {
      const e = decodeEntry(bytes);
      if (e.kind === EntryKind.SEGMENT_HEADER) open.set(Buffer.from(e.segmentId).toString('hex'), i);
      if (e.kind === EntryKind.SEALED_RECORD && e.final)
        open.delete(Buffer.from(e.segmentId).toString('hex'));
    }
    const needed = new Set<number>();
    for (const bytes of all.slice(7)) {
      const e = decodeEntry(bytes);
      const h =
        e.kind === EntryKind.SEALED_RECORD ? open.get(Buffer.from(e.segmentId).toString('hex')) : undefined;
      if (h !== undefined) needed.add(h);
    }
    assert.ok(needed.size > 0, 'the range starts inside a segment');
    assert.equal(result.manifest.entries, 41 - 7 + needed.size);
    const r = verifyPath(out, pinned);
    assertOk(r);
    assert.equal(r.source.mode, 'range');
    assert.equal(r.counts.entries, 34 + needed.size);
    assert.ok(r.warnings.some((w) => w.code === 'PARTIAL_CHECKS'));
    // Their headers are in the bundle, so their provenance is known.
    for (const h of needed) {
      const seg = r.provenance.find((s) => s.headerIndex === h);
      assert.ok(seg && seg.backend === 'openssl' && seg.records > 0, `segment with header ${h}`);
    }
  });

  it('a range carries only headers of segments it starts inside: another header before it fails', async () => {
    const a = await exportStore({ from: 30, to: 41 });
    const frames = [...readEntryFrames(readFileSync(join(a, BUNDLE_FILES.entries)))];
    const carried = new Set(frames.filter((f) => f.index < 30).map((f) => f.index));
    // A header before the range whose segment has no record in it, with its own valid inclusion proof
    // (from a one-leaf export of the same tree).
    const st = LocalStore.openReadOnly(store);
    const before = [...st.entries(0, 30)].map((b, index) => ({ index, bytes: b.slice() }));
    void st.close();
    const extra = before.find((e) => e.bytes[0] === EntryKind.SEGMENT_HEADER && !carried.has(e.index));
    assert.ok(extra, 'a closed segment before the range');
    const b = await exportStore({ from: extra.index, to: extra.index + 1 });
    const proofsOf = (dir: string) =>
      JSON.parse(readFileSync(join(dir, BUNDLE_FILES.proofs), 'utf8')) as {
        tree_size: number;
        inclusion: { index: number }[];
      };
    const [pa, pb] = [proofsOf(a), proofsOf(b)];
    assert.equal(pa.tree_size, pb.tree_size);
    pa.inclusion = [...pa.inclusion, ...pb.inclusion.filter((x) => x.index === extra.index)].sort(
      (x, y) => x.index - y.index,
    );
    const bundle = openBundle(a);
    const files = new Map(bundle.fileNames.map((n) => [n, bundle.file(n) ?? new Uint8Array(0)]));
    files.set(BUNDLE_FILES.entries, encodeEntryFrames([...frames, extra].sort((x, y) => x.index - y.index)));
    files.set(BUNDLE_FILES.proofs, Buffer.from(JSON.stringify(pa)));
    const r = verifyLog(p, bundleSource('<memory>', new Bundle(files)), pinned);
    assert.ok(!codes(r).has('INCLUSION_PROOF_INVALID'), show(r));
    assert.ok(
      r.failures.some(
        (f) =>
          f.code === 'MANIFEST_CONTENT_MISMATCH' &&
          f.location === `entries.bin leaf ${extra.index}` &&
          /none of its records is in the range/.test(f.message),
      ),
      show(r),
    );
  });

  it('a session export verifies, including the crashed session (its CRASH_RECOVERY travels with it)', async () => {
    const full = verifyPath(store, pinned);
    const crashed = full.provenance.find((s) => s.state === 'crashed');
    const ended = full.provenance.find((s) => s.state === 'final' && s.session !== crashed?.session);
    assert.ok(crashed?.session && ended?.session);
    const out = join(tempDir(), 'bundle');
    const result = await exportBundle({
      provider: p,
      storeDir: store,
      outDir: out,
      signer: keys.signer,
      sessions: [crashed.session, ended.session],
    });
    assert.deepEqual(result.manifest.sessions, [crashed.session, ended.session].sort());
    const r = verifyPath(out, pinned);
    assertOk(r);
    assert.equal(r.source.mode, 'sessions');
    assert.equal(r.counts.sessions, 2);
    assert.equal(r.provenance.find((s) => s.segment === crashed.segment)?.state, 'crashed');
    assert.ok(!r.warnings.some((w) => w.code === 'SEGMENT_OPEN'), show(r));
  });

  it('tampering with a partial bundle fails its inclusion proofs and its segments', async () => {
    const full = verifyPath(store, pinned);
    const session = full.provenance.find((s) => s.records >= 3 && s.state === 'final')?.session;
    assert.ok(session);
    for (const selection of [{ from: 7, to: 41 }, { sessions: [session] }]) {
      const out = await exportStore(selection);
      const bundle = openBundle(out);
      const frames = [...readEntryFrames(readFileSync(join(out, BUNDLE_FILES.entries)))];
      const records = frames.filter((f) => f.bytes[0] === EntryKind.SEALED_RECORD);
      // A changed record: its inclusion proof no longer leads to the signed root.
      const changed = frames.map((f) => ({ index: f.index, bytes: Uint8Array.from(f.bytes) }));
      const victim = changed.find((f) => f.index === records[1]?.index);
      assert.ok(victim);
      victim.bytes[victim.bytes.length - 1]! ^= 1;
      const files = new Map(bundle.fileNames.map((n) => [n, bundle.file(n) ?? new Uint8Array(0)]));
      files.set(BUNDLE_FILES.entries, encodeEntryFrames(changed));
      const r1 = verifyLog(p, bundleSource('<memory>', new Bundle(files)), pinned);
      assert.deepEqual([...codes(r1)].sort(), ['FILE_HASH_MISMATCH', 'INCLUSION_PROOF_INVALID'], show(r1));
      // A record removed: proofs still hold for the rest; the range's leaf numbers, or the session's
      // sequence numbers, show the hole.
      files.set(BUNDLE_FILES.entries, encodeEntryFrames(frames.filter((f) => f.index !== records[1]?.index)));
      const r2 = verifyLog(p, bundleSource('<memory>', new Bundle(files)), pinned);
      assert.ok(codes(r2).has('sessions' in selection ? 'SEQUENCE_GAP' : 'INDEX_NOT_CONTIGUOUS'), show(r2));
      assert.ok(codes(r2).has('FILE_HASH_MISMATCH'), show(r2));
    }
  });

  it('export refuses bad selections with a typed error', async () => {
    const attempt = (o: Partial<Parameters<typeof exportBundle>[0]>) =>
      exportBundle({ provider: p, storeDir: store, outDir: join(tempDir(), 'b'), signer: keys.signer, ...o });
    const code = (c: string) => (err: unknown) => err instanceof AuditError && err.code === c;
    await assert.rejects(attempt({ from: 5, to: 5 }), code('EXPORT_INVALID'));
    await assert.rejects(attempt({ to: 10 ** 9 }), code('EXPORT_INVALID'));
    await assert.rejects(attempt({ sessions: ['00'.repeat(16)] }), code('EXPORT_INVALID'));
    await assert.rejects(attempt({ sessions: ['nothex'] }), code('EXPORT_INVALID'));
    await assert.rejects(attempt({ storeDir: join(tempDir(), 'none') }), code('SOURCE_NOT_FOUND'));
    await assert.rejects(attempt({ signer: keys.recipient }), code('EXPORT_INVALID'));
    const out = join(tempDir(), 'b');
    await exportBundle({ provider: p, storeDir: store, outDir: out, signer: keys.signer });
    await assert.rejects(attempt({ outDir: out }), code('OUTPUT_EXISTS'));
  });

  const refused = (code: string, pattern: RegExp) => (err: unknown) =>
    err instanceof AuditError && err.code === code && pattern.test(err.message);

  it('without a trust root verify refuses before any check, and says what to pass', async () => {
    const out = await exportStore();
    const whatToPass =
      /no trust root: pass --keys DIR .* or --trust-bundle-signers .*\(origin not verified\)/;
    assert.throws(() => verifyPath(out, {}), refused('TRUST_ROOT_MISSING', whatToPass));
    assert.throws(() => verifyPath(out, { trustedSigners: [] }), refused('TRUST_ROOT_MISSING', whatToPass));
    // A retained checkpoint is checked against the signers; it does not choose them.
    assert.throws(
      () => verifyPath(out, { trustedCheckpoint: checkpointOfSize(store, 30) }),
      refused('TRUST_ROOT_MISSING', /--trusted-checkpoint is checked against the signers/),
    );
    // A store carries no keys at all, so the bundle-only flag cannot apply.
    assert.throws(() => verifyPath(store, {}), refused('TRUST_ROOT_MISSING', /a store holds no signer keys/));
    assert.throws(
      () => verifyPath(store, { trustBundleSigners: true }),
      refused('TRUST_ROOT_MISSING', /--trust-bundle-signers applies to export bundles/),
    );
    assert.throws(
      () => verifyPath(out, { ...pinned, trustBundleSigners: true }),
      refused('TRUST_INPUT_INVALID', /--keys and --trust-bundle-signers contradict each other/),
    );
  });

  it('--trust-bundle-signers: the genuine bundle is intact but its origin is not verified', async () => {
    const out = await exportStore();
    const r = verifyPath(out, { trustBundleSigners: true });
    assertOk(r);
    assert.equal(r.trust, 'bundle-only');
    assert.equal(r.result, 'INTEGRITY_ONLY');
    assert.deepEqual(
      r.signers.map((s) => s.via),
      ['bundle'],
    );
    assert.ok(r.warnings.some((w) => w.code === 'SIGNERS_NOT_PINNED'));
    const v = verifyPath(out, pinned);
    assert.equal(v.result, 'VERIFIED', show(v));
  });

  it("a bundle re-signed with an attacker's key: integrity only without --keys, FAILED with them", async () => {
    const attacker = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const genuine = await exportStore();
    const forged = join(tempDir(), 'forged');
    await resignBundle(p, genuine, forged, attacker);
    // No trust root: refused, never a verdict.
    assert.throws(() => verifyPath(forged, {}), refused('TRUST_ROOT_MISSING', /--keys DIR/));
    // Bundle-only trust cannot tell it from the real one: that is what "integrity only" means.
    const own = verifyPath(forged, { trustBundleSigners: true });
    assertOk(own);
    assert.equal(own.result, 'INTEGRITY_ONLY');
    assert.notEqual(own.signers[0]?.keyId, verifyPath(genuine, pinned).signers[0]?.keyId);
    // The gate's key, pinned: every checkpoint and the manifest are by an unknown signer, and nothing else.
    const r = verifyPath(forged, pinned);
    assert.equal(r.ok, false);
    assert.equal(r.result, 'FAILED');
    assert.deepEqual(
      [...codes(r)].sort(),
      ['CHECKPOINT_UNKNOWN_SIGNER', 'MANIFEST_SIGNATURE_INVALID'],
      show(r),
    );
    assert.equal(r.failureCounts.CHECKPOINT_UNKNOWN_SIGNER, r.counts.checkpoints);
    // The genuine bundle, pinned: verified.
    assert.equal(verifyPath(genuine, pinned).result, 'VERIFIED');
    // A retained checkpoint is only as trusted as the signers it is checked against: the forger's keys
    // do not verify the gate's checkpoint.
    const tc = verifyPath(forged, {
      trustBundleSigners: true,
      trustedCheckpoint: checkpointOfSize(store, 30),
    });
    assert.deepEqual([...codes(tc)], ['TRUSTED_CHECKPOINT_INVALID'], show(tc));
  });

  it('a bundle signed by another key fails on every signature, naming the unknown signer', async () => {
    const other = await makeKeys(p);
    const out = await exportStore();
    const r = verifyPath(out, { trustedSigners: [other.signer.publicKey] });
    assert.equal(r.ok, false);
    assert.ok(codes(r).has('CHECKPOINT_UNKNOWN_SIGNER'));
    assert.ok(codes(r).has('MANIFEST_SIGNATURE_INVALID'));
    assert.equal(r.failureCounts.CHECKPOINT_UNKNOWN_SIGNER, r.counts.checkpoints);
  });

  describe('trusted checkpoints', () => {
    let early: string;
    let fork: string;
    let foreign: string;

    before(async () => {
      early = checkpointOfSize(store, 30);
      // A fork: another store with the same origin and the same signer key, but other entries.
      const forkDir = join(tempDir(), 'fork');
      await writeRun(p, forkDir, keys, { create: true, sessions: 4, records: 4 });
      fork = checkpointOfSize(forkDir, 30);
      // Another log altogether.
      const otherKeys = await makeKeys(p);
      const otherDir = join(tempDir(), 'other');
      await writeRun(p, otherDir, otherKeys, { create: true, origin: 'other.example/log' });
      foreign = checkpointOfSize(otherDir, 30);
    });

    it('an earlier checkpoint of the same log is consistent: store, complete and partial bundles', async () => {
      assertOk(verifyPath(store, { ...pinned, trustedCheckpoint: early }));
      const complete = await exportStore({ trustedCheckpoint: early });
      assertOk(verifyPath(complete, { ...pinned, trustedCheckpoint: early }));
      const partial = await exportStore({ from: 40, to: 50, trustedCheckpoint: early });
      assertOk(verifyPath(partial, { ...pinned, trustedCheckpoint: early }));
    });

    it('a partial bundle exported without the trusted checkpoint cannot prove it', async () => {
      const partial = await exportStore({ from: 40, to: 50 });
      const size = Number(parseCheckpoint(parseNote(early).body).size);
      const r = verifyPath(partial, { ...pinned, trustedCheckpoint: early });
      const bundled = openBundle(partial)
        .checkpoints()
        .map((n) => Number(parseCheckpoint(parseNote(n).body).size));
      if (bundled.includes(size)) assertOk(r);
      else assert.deepEqual([...codes(r)], ['TRUSTED_CHECKPOINT_UNPROVEN'], show(r));
    });

    it('a forked checkpoint (same origin and key, other entries) is inconsistent', async () => {
      const r = verifyPath(store, { ...pinned, trustedCheckpoint: fork });
      assert.deepEqual([...codes(r)], ['TRUSTED_CHECKPOINT_INCONSISTENT'], show(r));
      const complete = await exportStore();
      assert.deepEqual(
        [...codes(verifyPath(complete, { ...pinned, trustedCheckpoint: fork }))],
        ['TRUSTED_CHECKPOINT_INCONSISTENT'],
      );
      const partial = await exportStore({ from: 40, to: 50, trustedCheckpoint: fork });
      assert.deepEqual(
        [...codes(verifyPath(partial, { ...pinned, trustedCheckpoint: fork }))],
        ['TRUSTED_CHECKPOINT_INCONSISTENT'],
      );
    });

    it("another log's checkpoint is refused as the trusted checkpoint", () => {
      const r = verifyPath(store, { ...pinned, trustedCheckpoint: foreign });
      assert.deepEqual([...codes(r)], ['TRUSTED_CHECKPOINT_INVALID'], show(r));
      assert.deepEqual(
        [...codes(verifyPath(store, { ...pinned, trustedCheckpoint: 'garbage' }))],
        ['TRUSTED_CHECKPOINT_INVALID'],
      );
    });

    it('a trusted checkpoint beyond the log shows its tail was cut off', async () => {
      const snapshot = join(tempDir(), 'store');
      cpSync(store, snapshot, { recursive: true });
      const grown = join(tempDir(), 'store');
      cpSync(store, grown, { recursive: true });
      await writeRun(p, grown, keys, { sessions: 1, records: 2 });
      const later = LocalStore.openReadOnly(grown).lastCheckpoint();
      assert.ok(later);
      assert.deepEqual(
        [...codes(verifyPath(snapshot, { ...pinned, trustedCheckpoint: later }))],
        ['TAIL_TRUNCATED'],
      );
      const bundle = join(tempDir(), 'bundle');
      await exportBundle({ provider: p, storeDir: snapshot, outDir: bundle, signer: keys.signer });
      assert.deepEqual(
        [...codes(verifyPath(bundle, { ...pinned, trustedCheckpoint: later }))],
        ['TAIL_TRUNCATED'],
      );
    });
  });
});

describe('verify: heartbeats and signer rotation', () => {
  it('a gap in time longer than the heartbeat policy is HEARTBEAT_GAP', async () => {
    const keys = await makeKeys(p);
    const dir = join(tempDir(), 'store');
    let now = 1_764_000_000_000_000n;
    const clock = (): bigint => (now += 1000n);
    const log = await SealedLog.open({
      provider: p,
      dir,
      origin: ORIGIN,
      recipients: [keys.recipient.publicKey],
      signingKey: keys.signer,
      create: true,
      clock,
    });
    const s = log.openSession();
    s.event(RecordType.EXEC, { channel: 0, command: 'sleep 600' });
    now += 600_000_000n; // ten minutes without a heartbeat
    s.end('closed');
    await log.close();
    const r = verifyPath(dir, { trustedSigners: [keys.signer.publicKey] });
    assert.deepEqual([...codes(r)], ['HEARTBEAT_GAP'], show(r));
    assert.match(r.failures[0]?.message ?? '', /600\.0 s since the previous entry/);
    // With a policy that allows it (2 × 300 + 5 s), it passes.
    assertOk(verifyPath(dir, { trustedSigners: [keys.signer.publicKey], heartbeatSeconds: 300 }));
  });

  it('signer rotation extends trust from the pinned first key; the retired key cannot sign after it', async () => {
    const keys = await makeKeys(p);
    const next = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const dir = join(tempDir(), 'store');
    const options = { provider: p, dir, origin: ORIGIN, recipients: [keys.recipient.publicKey] };
    const log = await SealedLog.open({ ...options, signingKey: keys.signer, create: true });
    log.openSession().end('before rotation');
    await log.rotateSigner(next);
    log.openSession().end('after rotation');
    await log.close();
    const again = await SealedLog.open({ ...options, signingKey: next });
    again.openSession().end('next run');
    await again.close();

    const r = verifyPath(dir, { trustedSigners: [keys.signer.publicKey] });
    assertOk(r);
    assert.deepEqual(
      r.signers.map((s) => s.via),
      ['pinned', 'rotation'],
    );
    assert.ok(r.signers[0]?.retiredAfter !== undefined);
    // Pinning only the new key leaves the checkpoints before the rotation unverified.
    const onlyNew = verifyPath(dir, { trustedSigners: [next.publicKey] });
    assert.deepEqual([...codes(onlyNew)], ['CHECKPOINT_UNKNOWN_SIGNER'], show(onlyNew));

    // The bundle's manifest is signed with the current key; the retired one no longer counts.
    const good = join(tempDir(), 'bundle');
    await exportBundle({
      provider: p,
      storeDir: dir,
      outDir: good,
      signer: next,
      signers: [keys.signer.publicKey],
    });
    assertOk(verifyPath(good, { trustedSigners: [keys.signer.publicKey] }));
    const stale = join(tempDir(), 'bundle');
    await exportBundle({ provider: p, storeDir: dir, outDir: stale, signer: keys.signer });
    assert.deepEqual(
      [...codes(verifyPath(stale, { trustedSigners: [keys.signer.publicKey] }))],
      ['MANIFEST_SIGNATURE_INVALID'],
    );
    // A range export after the rotation still carries the rotation entry, so the chain holds.
    const size = r.source.treeSize;
    const partial = join(tempDir(), 'bundle');
    await exportBundle({
      provider: p,
      storeDir: dir,
      outDir: partial,
      signer: next,
      from: size - 3,
      to: size,
    });
    const pr = verifyPath(partial, { trustedSigners: [keys.signer.publicKey] });
    assertOk(pr);
    assert.equal(pr.counts.entries, 4); // 3 in the range and the SIGNER_ROTATION
    assert.ok(existsSync(join(partial, BUNDLE_FILES.signers)));
  });
});
