/**
 * Decrypt end to end: a real store written by SealedLog (test/audit/decrypt-fixture.ts), decrypted through
 * the API and through `sealgate decrypt`, with each recipient key, a key that is no recipient, an EC key,
 * and stores with a tampered record and a tampered key commitment.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import {
  decryptLog,
  DecryptError,
  type DecryptedEvent,
  type DecryptOptions,
} from '../../src/audit/decrypt.js';
import { dataBytesOf, isoMicros } from '../../src/audit/decrypt-event.js';
import { exportBundle } from '../../src/audit/export.js';
import { logAuditorRead } from '../../src/audit/auditor-read.js';
import { AuditError } from '../../src/audit/errors.js';
import { openLogSource } from '../../src/audit/source.js';
import { SourceNotVerifiedError, verifyBeforeRead } from '../../src/audit/verified-source.js';
import { BUNDLE_FILES, encodeEntryFrames, readEntryFrames } from '../../src/audit/bundle.js';
import { SPOOL_DIR } from '../../src/seal/audit-spool.js';
import { SealedLog } from '../../src/seal/log.js';
import { STORE_FILES } from '../../src/seal/store.js';
import { buildFixture, storeEntries, withoutPosition, type Fixture } from './decrypt-fixture.js';
import { runCli } from '../helpers/cli.js';

const p = new OpenSslProvider();
const PASS = 'correct horse battery staple';
const STACK_LINE = /^\s+at /m;

let fx: Fixture;
let work: string;
const keyFile: Record<'r1' | 'r2' | 'third' | 'ec', string> = { r1: '', r2: '', third: '', ec: '' };
/** The fixture's checkpoint signer public key: the trust root decrypt verifies against (--keys). */
let signerPub: string;

async function collect(
  dir: string,
  key: PrivateKey,
  options: DecryptOptions = {},
): Promise<{ events: DecryptedEvent[]; run: ReturnType<typeof decryptLog> }> {
  const run = decryptLog(p, storeEntries(dir), key, options);
  const events: DecryptedEvent[] = [];
  for await (const e of run) events.push(e);
  return { events, run };
}

const records = (events: readonly DecryptedEvent[]) => events.filter((e) => e.kind === 'record');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `sealgate …` in a child process, as a user runs it (normal mode). */
function sealgate(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  return runCli(args, { SG_TEST_PASS: PASS, ...extraEnv });
}

const show = (r: Run): string => `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
/** `sealgate decrypt SOURCE --key … ...extra`, with no trust option of its own. */
const decryptBare = (source: string, key: keyof typeof keyFile, ...extra: string[]): Promise<Run> =>
  sealgate([
    'decrypt',
    source,
    '--key',
    `file:${keyFile[key]}`,
    '--passphrase-env',
    'SG_TEST_PASS',
    ...extra,
  ]);
/** `sealgate decrypt` verifying against the fixture's signer (--keys). */
const decrypt = (source: string, key: keyof typeof keyFile, ...extra: string[]): Promise<Run> =>
  decryptBare(source, key, '--keys', signerPub, ...extra);
/** `sealgate decrypt --no-verify`: decrypt's own checks alone (tags, commitment, order). */
const decryptUnverified = (source: string, key: keyof typeof keyFile, ...extra: string[]): Promise<Run> =>
  decryptBare(source, key, '--no-verify', ...extra);
const NO_VERIFY_WARNING = /^sealgate: WARNING: --no-verify: .* was NOT verified/m;
/** stderr without the --no-verify warning line. */
const withoutWarning = (r: Run): Run => ({
  ...r,
  stderr: r.stderr
    .split('\n')
    .filter((l) => !NO_VERIFY_WARNING.test(l))
    .join('\n'),
});
const lines = (text: string): DecryptedEvent[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DecryptedEvent);

/** A known failure: the status, one "sealgate: " line on stderr, no stack trace. */
function assertCleanFailure(r: Run, status: number): string {
  assert.equal(r.status, status, show(r));
  assert.doesNotMatch(r.stderr + r.stdout, STACK_LINE, show(r));
  assert.match(r.stderr, /^sealgate: /, show(r));
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `expected one line\n${show(r)}`);
  return r.stderr.trimEnd();
}

/** A copy of the fixture store, to tamper with. */
function copyStore(name: string): string {
  const dir = join(work, name);
  cpSync(fx.dir, dir, { recursive: true });
  rmSync(join(dir, SPOOL_DIR), { recursive: true, force: true }); // earlier tests' audit events
  return dir;
}

/** Offset in entries.bin of the entry bytes of leaf `index` (after its u32 frame length). */
function entryOffset(dir: string, index: number): { at: number; length: number } {
  const idx = readFileSync(join(dir, STORE_FILES.index));
  const frame = Number(idx.readBigUInt64BE(index * 8));
  const bin = readFileSync(join(dir, STORE_FILES.entries));
  return { at: frame + 4, length: bin.readUInt32BE(frame) };
}

function flipByte(dir: string, at: number): void {
  const path = join(dir, STORE_FILES.entries);
  const bin = readFileSync(path);
  bin[at] ^= 0x01;
  writeFileSync(path, bin);
}

before(async () => {
  fx = await buildFixture(p);
  work = mkdtempSync(join(tmpdir(), 'sealgate-decrypt-cli-'));
  const phrase = new TextEncoder().encode(PASS);
  const [third, ec] = await Promise.all([
    p.generateKey({ type: 'rsa', bits: 2048 }),
    p.generateKey({ type: 'ec', curve: 'P-384' }),
  ]);
  const keys = { r1: fx.r1, r2: fx.r2, third, ec };
  for (const [name, key] of Object.entries(keys) as [keyof typeof keyFile, PrivateKey][]) {
    keyFile[name] = join(work, `${name}.key.pem`);
    writeFileSync(keyFile[name], p.exportPrivateKey(key, phrase), { mode: 0o600 });
  }
  signerPub = join(work, 'signer.pub.pem');
  writeFileSync(signerPub, fx.signer.publicKey.spkiPem());
});

describe('decryptLog (API)', () => {
  it('gives each recipient exactly the records sealed to it, in order, with positions that match the log', async () => {
    const entries = storeEntries(fx.dir);
    for (const [name, key] of [
      ['r1', fx.r1],
      ['r2', fx.r2],
    ] as const) {
      const { events, run } = await collect(fx.dir, key);
      const recs = records(events);
      assert.deepEqual(recs.map(withoutPosition), fx.expected[name], name);
      assert.equal(run.summary.records, fx.expected[name].length);
      assert.deepEqual(run.summary.failures, []);
      // Per segment: seq 0, 1, 2, … and FINAL on the last record only; the index is the record's leaf.
      const bySegment = new Map<string, { seq: number; final: boolean }[]>();
      for (const r of recs) {
        const list = bySegment.get(r.segment) ?? [];
        list.push({ seq: r.seq, final: r.final });
        bySegment.set(r.segment, list);
        assert.equal(entries[r.index]?.bytes[0], 0x02, `leaf ${r.index} is a sealed record`);
        assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      }
      for (const [segment, list] of bySegment) {
        assert.deepEqual(
          list.map((x) => x.seq),
          list.map((_, i) => i),
          segment,
        );
        assert.deepEqual(
          list.map((x) => x.final),
          list.map((_, i) => i === list.length - 1),
          segment,
        );
      }
      const system = events.filter((e) => e.kind === 'system').map((e) => e.type);
      assert.deepEqual(system, ['LOG_START', 'LOG_STOP', 'LOG_START', 'LOG_STOP']);
      const indexes = events.map((e) => e.index);
      assert.deepEqual(
        indexes,
        [...indexes].sort((x, y) => x - y),
        'events in leaf order',
      );
    }
    const r2 = (await collect(fx.dir, fx.r2)).run.summary;
    assert.equal(r2.segmentsNotAddressed, 1);
    assert.equal(r2.recordsNotAddressed, 3);
  });

  it('keeps envelope names apart from payload fields, and gives data once: lossless text, else base64', async () => {
    const recs = records((await collect(fx.dir, fx.r1)).events);
    const open = recs.find((r) => r.type === 'CHANNEL_OPEN');
    assert.deepEqual(open?.payload, { type: 'session' });
    const forward = recs.find((r) => r.type === 'FORWARD');
    assert.deepEqual(forward?.payload, { kind: 'direct-tcpip' });
    assert.equal(forward?.kind, 'record');
    const binary = recs.find(
      (r) =>
        r.type === 'DATA_IN' &&
        r.data === Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i)).toString('base64'),
    );
    assert.ok(binary, 'the 256-byte DATA_IN');
    assert.equal('text' in binary, false, 'bytes that are not UTF-8 have no text');
    const bom = recs.find((r) => r.type === 'DATA_ERR');
    assert.equal(bom?.text, '\ufeffBOM kept\n');
    assert.equal('data' in (bom ?? {}), false, 'UTF-8 bytes have no base64 copy');
    // Every data record carries exactly one of the two, and it gives back the sealed bytes exactly.
    const data = recs.filter((r) => r.type.startsWith('DATA_'));
    assert.ok(data.length >= 8);
    for (const r of data) assert.equal(('text' in r ? 1 : 0) + ('data' in r ? 1 : 0), 1, JSON.stringify(r));
    const sealed = [
      Uint8Array.from({ length: 256 }, (_, i) => i),
      Uint8Array.of(0xff, 0xfe, 0x00, 0x41, 0xc3),
      new TextEncoder().encode('héllo ✓ — ünïcødé 🎉\r\n'),
      new Uint8Array(0),
    ];
    const back = data.map((r) => dataBytesOf(r).toString('hex'));
    for (const bytes of sealed) assert.ok(back.includes(Buffer.from(bytes).toString('hex')));
    const exec = recs.find((r) => r.type === 'EXEC');
    assert.equal(exec?.command, 'id -a && cat /etc/hostname');
  });

  it('filters one session (no system entries) and leaves system entries out with recordsOnly', async () => {
    const session = fx.sessions[1];
    const { events } = await collect(fx.dir, fx.r1, { session });
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => e.kind === 'record' && e.session === session));
    assert.deepEqual(
      events.map(withoutPosition),
      fx.expected.r1.filter((e) => e.session === session),
    );
    const only = (await collect(fx.dir, fx.r1, { recordsOnly: true })).events;
    assert.equal(only.length, fx.expected.r1.length);
    await assert.rejects(
      collect(fx.dir, fx.r1, { session: '00'.repeat(16) }),
      (err: unknown) => err instanceof DecryptError && err.code === 'SESSION_NOT_FOUND',
    );
  });

  it('refuses a key that no segment is addressed to, after releasing no record', async () => {
    const other = await p.generateKey({ type: 'rsa', bits: 2048 });
    const run = decryptLog(p, storeEntries(fx.dir), other);
    const seen: DecryptedEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of run) seen.push(e);
      })(),
      (err: unknown) =>
        err instanceof DecryptError &&
        err.code === 'NO_SEGMENT_FOR_KEY' &&
        /no segment is addressed/.test(err.message),
    );
    assert.equal(records(seen).length, 0);
    assert.throws(
      () => decryptLog(p, [], fx.signer),
      (err: unknown) => err instanceof DecryptError && err.code === 'WRONG_KEY_TYPE',
    );
  });

  it('with keepGoing abandons only the segment of a tampered record', async () => {
    const dir = copyStore('keep-going');
    const { events: clean } = await collect(fx.dir, fx.r1);
    const victim = records(clean).find(
      (r) => r.type === 'DATA_IN' && r.session === fx.sessions[1] && !r.final,
    );
    assert.ok(victim);
    flipByte(dir, entryOffset(dir, victim.index).at + 39 + 1);
    const { events, run } = await collect(dir, fx.r1, { keepGoing: true });
    assert.equal(run.summary.failures.length, 1);
    assert.equal(run.summary.failures[0]?.code, 'RECORD_AUTHENTICATION_FAILED');
    assert.equal(run.summary.failures[0]?.index, victim.index);
    const expected = clean.filter(
      (e) => !(e.kind === 'record' && e.segment === victim.segment && e.index >= victim.index),
    );
    assert.deepEqual(events, expected);
    const withheld = records(clean).filter((e) => e.segment === victim.segment && e.index > victim.index);
    assert.equal(run.summary.recordsAbandoned, withheld.length);
  });

  it('formats times as ISO 8601 with microseconds', () => {
    assert.equal(isoMicros(1764000000000001n), '2025-11-24T16:00:00.000001Z');
    assert.equal(isoMicros(1764000000123456n), '2025-11-24T16:00:00.123456Z');
    assert.equal(isoMicros(0n), '1970-01-01T00:00:00.000000Z');
    assert.equal(isoMicros((1n << 64n) - 1n), `@${(1n << 64n) - 1n}us`);
  });
});

describe('sealgate decrypt (CLI)', () => {
  it('prints the same events as the API, as JSON lines, and spools an audit event into the store', async () => {
    const spool = join(fx.dir, SPOOL_DIR);
    const before = new Set(statSafe(spool) ? readdirSync(spool) : []);
    const r = await decrypt(fx.dir, 'r1');
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stderr, '', show(r));
    const { events } = await collect(fx.dir, fx.r1);
    assert.deepEqual(lines(r.stdout), events);
    const added = readdirSync(spool).filter((n) => !before.has(n) && n.endsWith('.json'));
    assert.equal(added.length, 1, `one new spool file: ${added.join(', ')}`);
    const event = JSON.parse(readFileSync(join(spool, added[0] ?? ''), 'utf8')) as {
      action: string;
      details: Record<string, unknown>;
    };
    assert.equal(event.action, 'decrypt');
    assert.equal(event.details.source_kind, 'store');
    assert.equal(event.details.verified, true);
    assert.equal(event.details.verify_result, 'VERIFIED');
    assert.equal(
      event.details.key_id,
      p.digest('sha256', fx.r1.publicKey.spkiDer()).reduce((s, b) => s + b.toString(16).padStart(2, '0'), ''),
    );
  });

  it('--fips: the same events from a FIPS-mode Node, and the audit event says so', async () => {
    const spool = join(fx.dir, SPOOL_DIR);
    const before = new Set(readdirSync(spool));
    const r = await sealgate([
      '--fips',
      'decrypt',
      fx.dir,
      '--key',
      `file:${keyFile.r1}`,
      '--passphrase-env',
      'SG_TEST_PASS',
      '--keys',
      signerPub,
    ]);
    assert.equal(r.status, 0, show(r));
    assert.deepEqual(lines(r.stdout), (await collect(fx.dir, fx.r1)).events);
    const added = readdirSync(spool).filter((n) => !before.has(n) && n.endsWith('.json'));
    assert.equal(added.length, 1);
    const event = JSON.parse(readFileSync(join(spool, added[0] ?? ''), 'utf8')) as {
      details: { fips: boolean };
    };
    assert.equal(event.details.fips, true);
  });

  it('writes --out 0600, and reports the segments not addressed to the key', async () => {
    const out = join(work, 'r2.jsonl');
    const r = await decrypt(fx.dir, 'r2', '--out', out, '--records-only');
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /1 segment is not addressed to this key/, show(r));
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(lines(readFileSync(out, 'utf8')).map(withoutPosition), fx.expected.r2);
    const again = await decrypt(fx.dir, 'r2', '--out', out);
    assert.match(assertCleanFailure(again, 2), /exists; refusing to overwrite/);
  });

  it('--session gives that session only', async () => {
    const session = fx.sessions[2] ?? '';
    const r = await decrypt(fx.dir, 'r1', '--session', session.toUpperCase());
    assert.equal(r.status, 0, show(r));
    assert.deepEqual(
      lines(r.stdout).map(withoutPosition),
      fx.expected.r1.filter((e) => e.session === session),
    );
  });

  it('a key that is no recipient: exit 1, "no segment is addressed to this key", nothing printed', async () => {
    const r = await decrypt(fx.dir, 'third');
    assert.match(assertCleanFailure(r, 1), /no segment is addressed to this key/);
    assert.equal(r.stdout, '');
  });

  it('an EC key: exit 2, "needs an RSA recipient key"', async () => {
    const r = await decrypt(fx.dir, 'ec');
    assert.match(assertCleanFailure(r, 2), /needs an RSA recipient key/);
  });

  it('a wrong passphrase: exit 2, one line', async () => {
    const r = await sealgate(
      ['decrypt', fx.dir, '--key', `file:${keyFile.r1}`, '--passphrase-env', 'SG_WRONG'],
      {
        SG_WRONG: 'not the passphrase',
      },
    );
    assert.match(assertCleanFailure(r, 2), /wrong passphrase/);
  });

  it("--no-verify, a tampered record: decrypt's own check, exit 1 naming the leaf; nothing from it on released", async () => {
    const dir = copyStore('tampered-record');
    const { events: clean } = await collect(fx.dir, fx.r1);
    const victim = records(clean).find((r) => r.type === 'DATA_OUT' && r.session === fx.sessions[1]);
    assert.ok(victim);
    flipByte(dir, entryOffset(dir, victim.index).at + 39 + 3); // inside the ciphertext
    const r = await decryptUnverified(dir, 'r1');
    assert.match(r.stderr, NO_VERIFY_WARNING, show(r));
    const message = assertCleanFailure(withoutWarning(r), 1);
    assert.match(message, new RegExp(`leaf ${victim.index}\\b`));
    assert.match(message, /RECORD_AUTHENTICATION_FAILED/);
    const out = lines(r.stdout);
    assert.ok(
      out.every((e) => e.index < victim.index),
      show(r),
    );
    assert.deepEqual(
      out,
      clean.filter((e) => e.index < victim.index),
    );
  });

  it('--no-verify --keep-going: exit 1 naming the failure, other segments still released', async () => {
    const dir = copyStore('tampered-keep-going');
    const { events: clean } = await collect(fx.dir, fx.r1);
    const victim = records(clean).find((r) => r.type === 'DATA_OUT' && r.session === fx.sessions[1]);
    assert.ok(victim);
    flipByte(dir, entryOffset(dir, victim.index).at + 39 + 3);
    const r = await decryptUnverified(dir, 'r1', '--keep-going');
    assert.equal(r.status, 1, show(r));
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.match(r.stderr, new RegExp(`leaf ${victim.index}: .*RECORD_AUTHENTICATION_FAILED`));
    assert.match(r.stderr, /1 failure;/);
    assert.deepEqual(
      lines(r.stdout),
      clean.filter((e) => !(e.kind === 'record' && e.segment === victim.segment && e.index >= victim.index)),
    );
  });

  it('--no-verify, a tampered key commitment: exit 1, KEY_COMMITMENT_MISMATCH at the header', async () => {
    const dir = copyStore('tampered-commitment');
    const { events: clean } = await collect(fx.dir, fx.r1);
    const segment = records(clean).find((r) => r.session === fx.sessions[2]);
    assert.ok(segment);
    const entries = storeEntries(dir);
    const header = entries.findIndex(
      (e) => e.bytes[0] === 0x01 && Buffer.from(e.bytes).includes(Buffer.from(segment.segment, 'hex')),
    );
    assert.ok(header > 0);
    const { at, length } = entryOffset(dir, header);
    flipByte(dir, at + length - 5); // inside the 32-byte commitment, the header's last field
    const r = await decryptUnverified(dir, 'r1');
    const message = assertCleanFailure(withoutWarning(r), 1);
    assert.match(message, /KEY_COMMITMENT_MISMATCH/);
    assert.match(message, new RegExp(`leaf ${header}\\b`));
    assert.deepEqual(
      lines(r.stdout),
      clean.filter((e) => e.index < header),
    );
  });

  it('the spooled event is sealed into the log by the next writer, as AUDIT_EVENT', async () => {
    const dir = copyStore('spool-sealed');
    const r = await decrypt(dir, 'r1', '--records-only');
    assert.equal(r.status, 0, show(r));
    assert.ok(readdirSync(join(dir, SPOOL_DIR)).some((n) => n.endsWith('.json')));
    const log = await SealedLog.open({
      provider: p,
      dir,
      origin: 'test.sealgate/decrypt',
      recipients: [fx.r1.publicKey],
      signingKey: fx.signer,
    });
    await log.close();
    assert.deepEqual(
      readdirSync(join(dir, SPOOL_DIR)).filter((n) => n.endsWith('.json')),
      [],
    );
    const audit = (await collect(dir, fx.r1)).events.filter(
      (e) => e.kind === 'system' && e.type === 'AUDIT_EVENT',
    );
    assert.ok(audit.length >= 1);
    const last = audit.at(-1);
    assert.equal(last?.action, 'decrypt');
    assert.equal((last?.details as { records_only?: boolean }).records_only, true);
  });
});

describe('sealgate decrypt of an export bundle', () => {
  it('decrypts a complete bundle like the store, and says the decrypt was not logged to a gate', async () => {
    const dir = copyStore('bundle-source');
    const bundle = join(work, 'bundle-complete');
    await exportBundle({ provider: p, storeDir: dir, outDir: bundle, signer: fx.signer });
    const r = await decrypt(bundle, 'r1');
    assert.equal(r.status, 0, show(r));
    assert.match(r.stderr, /not logged to a gate/, show(r));
    const { events } = await collect(fx.dir, fx.r1);
    assert.deepEqual(records(lines(r.stdout)), records(events));
  });

  it('--audit-spool DIR spools the event there', async () => {
    const dir = copyStore('bundle-source-2');
    const bundle = join(work, 'bundle-spooled');
    await exportBundle({ provider: p, storeDir: dir, outDir: bundle, signer: fx.signer });
    const spool = join(work, 'shipped-spool');
    const r = await decrypt(bundle, 'r1', '--audit-spool', spool, '--records-only');
    assert.equal(r.status, 0, show(r));
    assert.doesNotMatch(r.stderr, /not logged/, show(r));
    const files = readdirSync(spool).filter((n) => n.endsWith('.json'));
    assert.equal(files.length, 1);
    const event = JSON.parse(readFileSync(join(spool, files[0] ?? ''), 'utf8')) as {
      action: string;
      details: { source_kind: string };
    };
    assert.equal(event.action, 'decrypt');
    assert.equal(event.details.source_kind, 'bundle');
  });

  it('a range bundle that starts mid-segment carries the header: it verifies, and the records come out', async () => {
    const dir = copyStore('bundle-source-3');
    const { events } = await collect(fx.dir, fx.r1);
    // Start at the first segment's second record: its header and first record are before the range.
    const first = records(events)[0];
    assert.ok(first);
    const from = records(events).find((e) => e.segment === first.segment && e.seq === 1)?.index;
    assert.ok(from !== undefined && from > first.index + 1, 'the second record is later in the log');
    const bundle = join(work, 'bundle-range');
    const result = await exportBundle({
      provider: p,
      storeDir: dir,
      outDir: bundle,
      signer: fx.signer,
      from,
      to: 20,
    });
    const entries = storeEntries(fx.dir);
    const header = entries.findIndex(
      (e) => e.bytes[0] === 0x01 && Buffer.from(e.bytes).includes(Buffer.from(first.segment, 'hex')),
    );
    assert.ok(header >= 0 && header < from);
    // The header (and every other open segment's with a record in the range) is carried, nothing else.
    const carried = readBundleIndexes(bundle).filter((i) => i < from);
    assert.ok(carried.includes(header), `header leaf ${header} in ${carried.join(',')}`);
    assert.ok(carried.every((i) => entries[i]?.bytes[0] === 0x01));
    assert.equal(result.manifest.entries, 20 - from + carried.length);

    const verified = await sealgate(['verify', bundle, '--keys', signerPub]);
    assert.equal(verified.status, 0, show(verified));
    assert.match(verified.stdout, /^result: VERIFIED$/m, show(verified));

    const r = await decrypt(bundle, 'r1', '--records-only');
    assert.equal(r.status, 0, show(r));
    assert.doesNotMatch(r.stderr, /whose header is not in this bundle/, show(r));
    const inRange = records(events).filter((e) => e.index >= from && e.index < 20);
    assert.ok(inRange.some((e) => e.segment === first.segment));
    assert.deepEqual(lines(r.stdout), inRange);
  });

  it('a range with a record removed: decrypt is refused, verify names INDEX_NOT_CONTIGUOUS', async () => {
    const bundle = join(work, 'bundle-range');
    const cut = join(work, 'bundle-range-cut');
    cpSync(bundle, cut, { recursive: true });
    const frames = [...readEntryFrames(readFileSync(join(cut, BUNDLE_FILES.entries)))];
    const victim = frames.find((f, i) => i > 2 && f.bytes[0] === 0x02);
    assert.ok(victim);
    writeFileSync(
      join(cut, BUNDLE_FILES.entries),
      encodeEntryFrames(frames.filter((f) => f.index !== victim.index)),
    );
    const r = await decrypt(cut, 'r1');
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', 'nothing released');
    assert.match(r.stderr, /^ {2}FAIL INDEX_NOT_CONTIGUOUS /m, show(r));
  });
});

describe('sealgate decrypt verifies first', () => {
  it('a tampered store: refused, exit 1, the verify failure named, nothing released, no audit event', async () => {
    const dir = copyStore('tampered-verify');
    const { events: clean } = await collect(fx.dir, fx.r1);
    const victim = records(clean).find((r) => r.type === 'DATA_OUT' && r.session === fx.sessions[1]);
    assert.ok(victim);
    flipByte(dir, entryOffset(dir, victim.index).at + 39 + 3); // ciphertext: the tag would catch it too
    const r = await decrypt(dir, 'r1');
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '', 'nothing released');
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.match(
      r.stderr,
      /^sealgate: decrypt refused: .* failed verification: \d+ failures? \(.*ROOT_MISMATCH/m,
      show(r),
    );
    // The same lines as `sealgate verify` prints.
    const v = await sealgate(['verify', dir, '--keys', signerPub]);
    assert.equal(v.status, 1, show(v));
    const failLines = v.stdout.split('\n').filter((l) => l.startsWith('  FAIL '));
    assert.ok(failLines.length > 0);
    for (const l of failLines) assert.ok(r.stderr.includes(l), `${l}\n${show(r)}`);
    assert.match(r.stderr, /--no-verify/);
    assert.equal(statSafe(join(dir, SPOOL_DIR)), false, 'a refused decrypt read nothing and logged nothing');
  });

  it('signed by someone else (wrong --keys): refused with CHECKPOINT_UNKNOWN_SIGNER', async () => {
    const other = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const otherPub = join(work, 'other-signer.pub.pem');
    writeFileSync(otherPub, other.publicKey.spkiPem());
    const r = await decryptBare(fx.dir, 'r1', '--keys', otherPub);
    assert.equal(r.status, 1, show(r));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^ {2}FAIL CHECKPOINT_UNKNOWN_SIGNER /m, show(r));
  });

  it('no trust root: exit 2, one line naming --keys and --no-verify', async () => {
    const r = await decryptBare(fx.dir, 'r1');
    const message = assertCleanFailure(r, 2);
    assert.match(message, /--keys DIR/);
    assert.match(message, /--no-verify/);
    assert.equal(r.stdout, '');
  });

  it('--no-verify: decrypts with a prominent warning, and the audit event says verified: false', async () => {
    const dir = copyStore('no-verify');
    const r = await decryptUnverified(dir, 'r1');
    assert.equal(r.status, 0, show(r));
    assert.match(r.stderr, NO_VERIFY_WARNING, show(r));
    assert.deepEqual(lines(r.stdout), (await collect(fx.dir, fx.r1)).events);
    const files = readdirSync(join(dir, SPOOL_DIR)).filter((n) => n.endsWith('.json'));
    assert.equal(files.length, 1);
    const event = JSON.parse(readFileSync(join(dir, SPOOL_DIR, files[0] ?? ''), 'utf8')) as {
      details: Record<string, unknown>;
    };
    assert.equal(event.details.verified, false);
    assert.equal('verify_result' in event.details, false);
    const both = await decryptUnverified(dir, 'r1', '--keys', signerPub);
    assert.match(assertCleanFailure(both, 2), /--no-verify contradicts --keys/);
  });

  it('a bundle with --trust-bundle-signers: decrypted, with an integrity-only notice', async () => {
    const dir = copyStore('bundle-source-4');
    const bundle = join(work, 'bundle-integrity');
    await exportBundle({ provider: p, storeDir: dir, outDir: bundle, signer: fx.signer });
    const r = await decryptBare(bundle, 'r1', '--trust-bundle-signers', '--records-only');
    assert.equal(r.status, 0, show(r));
    assert.match(r.stderr, /integrity only, origin not verified/, show(r));
    assert.deepEqual(lines(r.stdout), records((await collect(fx.dir, fx.r1)).events));
  });

  it('a store whose audit spool cannot be written: refused, exit 2, nothing released', async () => {
    const dir = copyStore('spool-blocked');
    writeFileSync(join(dir, SPOOL_DIR), 'not a directory');
    const r = await decrypt(dir, 'r1');
    assert.match(assertCleanFailure(r, 2), /cannot log this decrypt into .*audit-spool .*nothing was read/);
    assert.equal(r.stdout, '');
  });
});

describe('verifyBeforeRead and logAuditorRead (the API the auditor commands share)', () => {
  it('returns the passing report, throws SourceNotVerifiedError naming the failures, or skips by request', () => {
    const trust = { trustedSigners: [fx.signer.publicKey] };
    const good = openLogSource(fx.dir);
    try {
      const v = verifyBeforeRead(p, good, trust);
      assert.equal(v.verified, true);
      assert.equal(v.verified && v.result, 'VERIFIED');
      assert.equal(v.report?.ok, true);
      assert.deepEqual(verifyBeforeRead(p, good, {}, { noVerify: true }), { verified: false });
      assert.throws(
        () => verifyBeforeRead(p, good, {}),
        (err: unknown) => err instanceof AuditError && err.code === 'TRUST_ROOT_MISSING',
      );
    } finally {
      good.close();
    }
    const dir = copyStore('verify-before-read');
    flipByte(dir, entryOffset(dir, 5).at + 20);
    const bad = openLogSource(dir);
    try {
      assert.throws(
        () => verifyBeforeRead(p, bad, trust),
        (err: unknown) =>
          err instanceof SourceNotVerifiedError &&
          err.code === 'SOURCE_NOT_VERIFIED' &&
          err.report.result === 'FAILED' &&
          (err.report.failureCounts.ROOT_MISMATCH ?? 0) > 0 &&
          /failed verification/.test(err.message),
      );
    } finally {
      bad.close();
    }
  });

  it('spools a read of any action into a store, and into nothing for a bundle without a spool', async () => {
    const dir = copyStore('read-event');
    const source = openLogSource(dir);
    try {
      const logged = logAuditorRead({
        action: 'commands',
        source,
        keyId: 'ab'.repeat(32),
        verification: { verified: false },
        fips: false,
        details: { session: fx.sessions[0] },
      });
      assert.deepEqual(logged.spools, [join(dir, SPOOL_DIR)]);
      const files = readdirSync(join(dir, SPOOL_DIR)).filter((n) => n.endsWith('.json'));
      assert.equal(files.length, 1);
      const event = JSON.parse(readFileSync(join(dir, SPOOL_DIR, files[0] ?? ''), 'utf8')) as {
        action: string;
        details: Record<string, unknown>;
      };
      assert.equal(event.action, 'commands');
      assert.equal(event.details.session, fx.sessions[0]);
      assert.equal(event.details.verified, false);
      assert.equal(event.details.output, 'stdout');
    } finally {
      source.close();
    }
    const bundle = join(work, 'bundle-read-event');
    await exportBundle({
      provider: p,
      storeDir: copyStore('read-event-2'),
      outDir: bundle,
      signer: fx.signer,
    });
    const b = openLogSource(bundle);
    try {
      const logged = logAuditorRead({
        action: 'replay',
        source: b,
        keyId: 'cd'.repeat(32),
        verification: { verified: false },
        fips: false,
      });
      assert.deepEqual(logged.spools, []);
      assert.equal(logged.event.action, 'replay');
    } finally {
      b.close();
    }
  });
});

/** The leaf indexes of a bundle's entries.bin. */
function readBundleIndexes(bundle: string): number[] {
  return [...readEntryFrames(readFileSync(join(bundle, BUNDLE_FILES.entries)))].map((f) => f.index);
}

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
