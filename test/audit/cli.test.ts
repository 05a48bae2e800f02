/**
 * `sealgate export` and `sealgate verify` as an auditor runs them (a child process on dist/): exit 0
 * for a good bundle, 1 with every failure named for a bad one, 2 with one clean line (no stack trace)
 * for input that cannot be read at all.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { LocalStore } from '../../src/seal/store.js';
import { makeKeys, resignBundle, tempDir, writeRun, type LogKeys } from './helpers.js';
import { runCli } from '../helpers/cli.js';

const p = new OpenSslProvider();
const STACK_LINE = /^\s+at /m;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sealgate(args: string[]): Promise<Run> {
  return runCli(args);
}

const show = (r: Run): string => `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Bad input: exit 2, exactly one line on stderr starting "sealgate: ", no stack trace. */
function assertBadInput(r: Run, pattern: RegExp): void {
  assert.equal(r.status, 2, show(r));
  assert.doesNotMatch(r.stderr + r.stdout, STACK_LINE, show(r));
  assert.ok(r.stderr.startsWith('sealgate: '), show(r));
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `expected one line\n${show(r)}`);
  assert.match(r.stderr, pattern, show(r));
}

/** A verification failure: exit 1, each failure on a FAIL line, no stack trace. */
function assertFailed(r: Run, ...codes: string[]): void {
  assert.equal(r.status, 1, show(r));
  assert.doesNotMatch(r.stderr + r.stdout, STACK_LINE, show(r));
  for (const c of codes) assert.match(r.stdout, new RegExp(`^  FAIL ${c} `, 'm'), show(r));
  assert.match(r.stdout, /^result: FAILED/m, show(r));
}

describe('sealgate export and verify (CLI)', () => {
  let keys: LogKeys;
  let work: string;
  let store: string;
  let keysDir: string;
  let signerKey: string;
  let passFile: string;
  let bundle: string;

  before(async () => {
    keys = await makeKeys(p);
    work = tempDir('sealgate-audit-cli-');
    store = join(work, 'store');
    await writeRun(p, store, keys, { create: true });
    await writeRun(p, store, keys, { sessions: 1, records: 2 });
    keysDir = join(work, 'keys');
    mkdirSync(keysDir);
    writeFileSync(join(keysDir, 'signer.pub.pem'), keys.signer.publicKey.spkiPem());
    passFile = join(work, 'pass');
    writeFileSync(passFile, 'correct horse\n');
    signerKey = join(work, 'signer.key.pem');
    writeFileSync(signerKey, p.exportPrivateKey(keys.signer, new TextEncoder().encode('correct horse')));
    bundle = join(work, 'bundle');
    const r = await sealgate([
      'export',
      store,
      '-o',
      bundle,
      '--signer-key',
      `file:${signerKey}`,
      '--passphrase-file',
      passFile,
    ]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^wrote .*bundle \(complete\)$/m);
    assert.match(r.stdout, /export logged: .*audit-spool/);
  });

  it("verifies a bundle: exit 0, the summary and each segment's provenance", async () => {
    const r = await sealgate(['verify', bundle, '--keys', keysDir]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^sealgate verify: complete bundle /m);
    assert.match(r.stdout, /signers: pinned by --keys: [0-9a-f]{8} \(pinned\)/);
    assert.match(r.stdout, /^ {2}\d+ segments: fips=NO backend=openssl library=OpenSSL /m);
    assert.match(r.stdout, /^ {4}segment [0-9a-f]{32} session [0-9a-f]{32} NOT FIPS \d+ records, final/m);
    assert.match(r.stdout, /segments NOT sealed in FIPS mode/);
    assert.match(r.stdout, /^result: VERIFIED$/m);
    assert.equal(r.stderr, '');
  });

  it('verifies the store itself, and prints JSON with --json', async () => {
    const r = await sealgate(['verify', store, '--keys', join(keysDir, 'signer.pub.pem'), '--json']);
    assert.equal(r.status, 0, show(r));
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      trust: string;
      result: string;
      source: { kind: string };
      counts: { runs: number };
      provenance: unknown[];
    };
    assert.equal(report.ok, true);
    assert.equal(report.trust, 'pinned');
    assert.equal(report.result, 'VERIFIED');
    assert.equal(report.source.kind, 'store');
    assert.equal(report.counts.runs, 2);
    assert.ok(report.provenance.length > 0);
  });

  it('a tampered bundle: exit 1, every failure with its location', async () => {
    const bad = join(work, 'tampered');
    cpSync(bundle, bad, { recursive: true });
    const entries = readFileSync(join(bad, 'entries.bin'));
    entries[entries.length - 20] ^= 0x01;
    writeFileSync(join(bad, 'entries.bin'), entries);
    const r = await sealgate(['verify', bad, '--keys', keysDir]);
    assertFailed(r, 'FILE_HASH_MISMATCH', 'ROOT_MISMATCH');
    assert.match(
      r.stdout,
      /FAIL FILE_HASH_MISMATCH entries\.bin: the digest of its frames is [0-9a-f]{64}, the manifest says/,
    );
    assert.match(r.stdout, /FAIL ROOT_MISMATCH checkpoint \d+ \(size \d+\): /);
  });

  it('without --keys: exit 2, never VERIFIED, and the message says what to pass', async () => {
    const whatToPass =
      /no trust root: pass --keys DIR .* or --trust-bundle-signers .*\(origin not verified\)/;
    for (const extra of [[], ['--json']]) {
      const r = await sealgate(['verify', bundle, ...extra]);
      assertBadInput(r, whatToPass);
      assert.equal(r.stdout, '', show(r));
    }
    // A retained checkpoint alone is not a trust root.
    const note = join(work, 'retained.note');
    const s = LocalStore.openReadOnly(store);
    writeFileSync(note, s.lastCheckpoint() ?? '');
    void s.close();
    assertBadInput(
      await sealgate(['verify', bundle, '--trusted-checkpoint', note]),
      /no trust root \(--trusted-checkpoint is checked against the signers; it does not choose them\): pass --keys DIR/,
    );
    assertBadInput(
      await sealgate(['verify', bundle, '--keys', keysDir, '--trust-bundle-signers']),
      /--keys and --trust-bundle-signers contradict each other/,
    );
    assertBadInput(
      await sealgate(['verify', store, '--trust-bundle-signers']),
      /--trust-bundle-signers applies to export bundles/,
    );
  });

  it("a bundle re-signed with an attacker's key: exit 2 bare, integrity only with --trust-bundle-signers, FAILED with --keys", async () => {
    const forged = join(work, 'forged');
    await resignBundle(p, bundle, forged, await p.generateKey({ type: 'ec', curve: 'P-384' }));

    const bare = await sealgate(['verify', forged]);
    assertBadInput(bare, /no trust root: pass --keys DIR/);
    assert.doesNotMatch(bare.stdout + bare.stderr, /VERIFIED/, show(bare));

    const own = await sealgate(['verify', forged, '--trust-bundle-signers']);
    assert.equal(own.status, 0, show(own));
    assert.match(own.stdout, /^ {2}signers: NOT PINNED \(--trust-bundle-signers\): /m, show(own));
    assert.match(own.stdout, /WARN SIGNERS_NOT_PINNED keys\/signers\.json: --trust-bundle-signers: /);
    assert.match(own.stdout, /^result: INTEGRITY ONLY, origin not verified: .*pass --keys/m, show(own));
    assert.doesNotMatch(own.stdout, /^result: VERIFIED/m, show(own));
    const json = await sealgate(['verify', forged, '--trust-bundle-signers', '--json']);
    assert.equal(json.status, 0, show(json));
    const report = JSON.parse(json.stdout) as { ok: boolean; trust: string; result: string };
    assert.deepEqual(
      { ok: report.ok, trust: report.trust, result: report.result },
      { ok: true, trust: 'bundle-only', result: 'INTEGRITY_ONLY' },
    );

    const pinned = await sealgate(['verify', forged, '--keys', keysDir]);
    assertFailed(pinned, 'CHECKPOINT_UNKNOWN_SIGNER', 'MANIFEST_SIGNATURE_INVALID');
    assert.match(pinned.stdout, /FAIL MANIFEST_SIGNATURE_INVALID manifest\.sig: /, show(pinned));
    const genuine = await sealgate(['verify', bundle, '--keys', keysDir]);
    assert.equal(genuine.status, 0, show(genuine));
    assert.match(genuine.stdout, /^result: VERIFIED$/m);
  });

  it('a truncated bundle, garbage files and missing files are failures named by code (exit 1)', async () => {
    const truncated = join(work, 'truncated');
    cpSync(bundle, truncated, { recursive: true });
    truncateSync(join(truncated, 'entries.bin'), 1000);
    assertFailed(
      await sealgate(['verify', truncated, '--keys', keysDir]),
      'FILE_HASH_MISMATCH',
      'ENTRY_MALFORMED',
      'ENTRIES_TRUNCATED',
    );

    const garbage = join(work, 'garbage');
    cpSync(bundle, garbage, { recursive: true });
    for (const f of ['manifest.json', 'checkpoints.bin', 'proofs.json'])
      writeFileSync(join(garbage, f), 'garbage\n');
    assertFailed(
      await sealgate(['verify', garbage, '--keys', keysDir]),
      'MANIFEST_MALFORMED',
      'CHECKPOINT_MALFORMED',
      'PROOFS_MALFORMED',
    );

    const missing = join(work, 'missing');
    cpSync(bundle, missing, { recursive: true });
    rmSync(join(missing, 'proofs.json'));
    rmSync(join(missing, 'keys'), { recursive: true });
    rmSync(join(missing, 'manifest.sig'));
    assertFailed(await sealgate(['verify', missing, '--keys', keysDir]), 'FILE_MISSING');
    assert.match(
      (await sealgate(['verify', missing, '--keys', keysDir])).stdout,
      /FAIL FILE_MISSING manifest\.sig: /,
    );
  });

  it('input that cannot be verified at all: exit 2, one line, no stack trace', async () => {
    assertBadInput(
      await sealgate(['verify', join(work, 'nope'), '--keys', keysDir]),
      /nope: no such file or directory/,
    );
    const file = join(work, 'random.bin');
    writeFileSync(file, p.randomBytes(100));
    assertBadInput(await sealgate(['verify', file, '--keys', keysDir]), /is not a directory/);
    const junk = join(work, 'junk');
    mkdirSync(junk);
    writeFileSync(join(junk, 'whatever.txt'), 'hello');
    assertBadInput(
      await sealgate(['verify', junk, '--keys', keysDir]),
      /neither a store .* nor an export bundle/,
    );
    const badStore = join(work, 'badstore');
    mkdirSync(badStore);
    writeFileSync(join(badStore, 'LOG'), 'not json');
    assertBadInput(await sealgate(['verify', badStore, '--keys', keysDir]), /LOG/);
    assertBadInput(await sealgate(['verify', store]), /a store holds no signer keys: give .*--keys/);
    assertBadInput(
      await sealgate(['verify', bundle, '--keys', keysDir, '--heartbeat-seconds', 'soon']),
      /--heartbeat-seconds must be a positive number/,
    );
    assertBadInput(
      await sealgate(['verify', bundle, '--keys', keysDir, '--trusted-checkpoint', join(work, 'nope')]),
      /--trusted-checkpoint .*cannot read it/,
    );
  });

  it('--keys with an RSA key, a private key or garbage: exit 2 with the reason', async () => {
    const rsa = join(work, 'rsa-keys');
    mkdirSync(rsa);
    writeFileSync(join(rsa, 'recipient.pub.pem'), keys.recipient.publicKey.spkiPem());
    assertBadInput(
      await sealgate(['verify', bundle, '--keys', rsa]),
      /is an RSA key; checkpoint signers are ECDSA P-384 public keys/,
    );
    const priv = join(work, 'priv-keys');
    mkdirSync(priv);
    writeFileSync(join(priv, 'signer.pem'), p.exportPrivateKey(keys.signer));
    assertBadInput(
      await sealgate(['verify', bundle, '--keys', priv]),
      /holds a private key; give the signers' public keys only/,
    );
    const junk = join(work, 'junk-keys');
    mkdirSync(junk);
    writeFileSync(join(junk, 'x.pem'), '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n');
    assertBadInput(await sealgate(['verify', bundle, '--keys', junk]), /is not a public key/);
    const empty = join(work, 'empty-keys');
    mkdirSync(empty);
    assertBadInput(await sealgate(['verify', bundle, '--keys', empty]), /no \*\.pem or \*\.pub files/);
  });

  it('export: partial selections, and bad input exits 2', async () => {
    const size = (() => {
      const s = LocalStore.openReadOnly(store);
      const n = s.size;
      void s.close();
      return n;
    })();
    const range = join(work, 'range');
    const args = ['--signer-key', `file:${signerKey}`, '--passphrase-file', passFile];
    const r = await sealgate(['export', store, '-o', range, '--from', '2', '--to', '9', ...args]);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /\(partial: leaves 2\.\.8\)/);
    const v = await sealgate(['verify', range, '--keys', keysDir]);
    assert.equal(v.status, 0, show(v));
    assert.match(v.stdout, /^sealgate verify: partial bundle \(leaves 2\.\.8\)/m);

    assertBadInput(await sealgate(['export', store, '-o', range, ...args]), /exists and is not empty/);
    assertBadInput(
      await sealgate(['export', store, '-o', join(work, 'x1'), '--from', 'two', ...args]),
      /--from must be a leaf index/,
    );
    assertBadInput(
      await sealgate(['export', store, '-o', join(work, 'x2'), '--to', String(size * 10), ...args]),
      /beyond the store's last checkpoint/,
    );
    assertBadInput(
      await sealgate(['export', store, '-o', join(work, 'x3'), '--sessions', 'abc', ...args]),
      /is not 32 hex digits/,
    );
    assertBadInput(
      await sealgate(['export', join(work, 'nope'), '-o', join(work, 'x4'), ...args]),
      /no such directory/,
    );
    assertBadInput(
      await sealgate(['export', store, '-o', join(work, 'x5'), '--signer-key', `file:${signerKey}`]),
      /./,
    );
  });
});
