/**
 * `sealgate keys gen --pkcs11 …` and `sealgate keys export-public …` as operators run them: the CLI in a
 * child process against fresh SoftHSM2 and NSS tokens, with the PIN from a file or a variable, and the
 * results checked by other tools (ssh-keygen reads the OpenSSH line; openssl reads the PEM).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import { repoRoot } from '../helpers/paths.js';
import { makeNss, makeSoftHsm2, type TestToken } from '../tokens/tokens.js';
import { runCli } from '../helpers/cli.js';

const ROOT = repoRoot();
const FIPS_DIR = resolve(process.env.SEALGATE_FIPS_DIR ?? join(ROOT, '.cache', 'fips'));
const STACK_LINE = /^\s+at /m;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sealgate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCli(args, { SEALGATE_FIPS_DIR: FIPS_DIR, ...env });
}

const show = (r: Run) => `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function assertCleanFailure(r: Run, status: number, text: RegExp): void {
  assert.equal(r.status, status, show(r));
  assert.doesNotMatch(r.stderr, STACK_LINE, show(r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, show(r));
  assert.match(lines[0] ?? '', /^sealgate: /);
  assert.match(lines[0] ?? '', text);
}

describe('sealgate keys gen --pkcs11 / keys export-public', () => {
  let shsm: TestToken;
  let nss: TestToken;
  before(() => {
    shsm = makeSoftHsm2();
    nss = makeNss();
  });

  it('makes a P-384 checkpoint key in SoftHSM2 and exports its public key as PEM and OpenSSH', async () => {
    const pubFile = join(shsm.dir, 'cli-signer.pub.pem');
    const gen = await sealgate(
      [
        'keys',
        'gen',
        '--pkcs11',
        '--module',
        shsm.module,
        '--token',
        'sealgate',
        '--label',
        'cli-signer',
        '--type',
        'ec-p384',
        '--pin-file',
        shsm.pinFile,
        '-o',
        pubFile,
      ],
      shsm.env,
    );
    assert.equal(gen.status, 0, show(gen));
    assert.match(
      gen.stdout,
      /^generated an EC P-384 key in token "sealgate" \(SoftHSM project SoftHSM v2, serial [0-9a-f]+\)/,
    );
    const ref = /^key reference: (pkcs11:token=sealgate;object=cli-signer;id=(%[0-9a-f]{2}){16})$/m.exec(
      gen.stdout,
    )?.[1];
    assert.ok(ref, show(gen));
    assert.match(gen.stdout, /^signed-note key id: [0-9a-f]{8} /m);
    const pem = readFileSync(pubFile, 'utf8');
    // openssl reads it as a P-384 key.
    assert.match(
      execFileSync('openssl', ['pkey', '-pubin', '-in', pubFile, '-text', '-noout'], { encoding: 'utf8' }),
      /384 bit/,
    );

    // The module from the environment, and no PIN: the public key object is readable without one.
    const env = { ...shsm.env, SEALGATE_PKCS11_MODULE: shsm.module };
    const asPem = await sealgate(['keys', 'export-public', ref], env);
    assert.equal(asPem.status, 0, show(asPem));
    assert.equal(asPem.stdout, pem);
    const asSsh = await sealgate(
      ['keys', 'export-public', ref, '--format', 'openssh', '--comment', 'gate-ca'],
      env,
    );
    assert.equal(asSsh.status, 0, show(asSsh));
    assert.match(asSsh.stdout, /^ecdsa-sha2-nistp384 AAAA[A-Za-z0-9+/=]+ gate-ca\n$/);
    const sshPub = join(shsm.dir, 'cli-signer.pub');
    writeFileSync(sshPub, asSsh.stdout);
    assert.match(
      execFileSync('ssh-keygen', ['-l', '-f', sshPub], { encoding: 'utf8' }),
      /^384 SHA256:\S+ gate-ca \(ECDSA\)/,
    );
  });

  it('makes an RSA-3072 auditor key in the NSS softoken, PIN from an environment variable', async () => {
    const pin = readFileSync(nss.pinFile, 'utf8').trim();
    const gen = await sealgate(
      [
        'keys',
        'gen',
        '--pkcs11',
        '--module',
        nss.module,
        '--library-parameters',
        nss.libraryParameters ?? '',
        '--token',
        'NSS Certificate DB',
        '--label',
        'auditor',
        '--type',
        'rsa-3072',
        '--pin-env',
        'SEALGATE_TEST_NSS_PIN',
      ],
      { ...nss.env, SEALGATE_TEST_NSS_PIN: pin },
    );
    assert.equal(gen.status, 0, show(gen));
    assert.match(
      gen.stdout,
      /^generated an RSA-3072 key in token "NSS Certificate DB" \(Mozilla Foundation NSS 3,/,
    );
    assert.match(gen.stdout, /^key reference: pkcs11:token=NSS%20Certificate%20DB;object=auditor;id=/m);
    assert.match(gen.stdout, /^recipient key id \(SHA-256 of SPKI\): [0-9a-f]{64}$/m);
    assert.match(gen.stdout, /-----BEGIN PUBLIC KEY-----/);
  });

  it('an auditor decrypts a store with the RSA key held in the NSS token (sealgate decrypt --key pkcs11:…)', async () => {
    const ref = nss.uri('auditor');
    const tokenArgs = [
      '--module',
      nss.module,
      '--library-parameters',
      nss.libraryParameters ?? '',
      '--pin-file',
      nss.pinFile,
    ];
    const pub = await sealgate(['keys', 'export-public', ref, ...tokenArgs], nss.env);
    assert.equal(pub.status, 0, show(pub));
    const p = new OpenSslProvider();
    const recipient = p.importPublicKey(pub.stdout.slice(pub.stdout.indexOf('-----BEGIN')));
    const signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const dir = join(mkdtempSync(join(tmpdir(), 'sealgate-nss-decrypt-')), 'store');
    const log = await SealedLog.open({
      provider: p,
      dir,
      origin: 'test.sealgate/hsm',
      recipients: [recipient],
      signingKey: signer,
      create: true,
    });
    const session = log.openSession();
    session.event(RecordType.EXEC, { channel: 0, command: 'cat /etc/hostname' });
    session.event(RecordType.DATA_OUT, { channel: 0, data: new TextEncoder().encode('web1\n') });
    session.end('closed');
    await log.close();

    const signerPub = join(dirname(dir), 'signer.pub.pem');
    writeFileSync(signerPub, signer.publicKey.spkiPem());
    const r = await sealgate(
      ['decrypt', dir, '--keys', signerPub, '--key', ref, '--records-only', ...tokenArgs],
      nss.env,
    );
    assert.equal(r.status, 0, show(r));
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      events.map((e) => [e.type, e.command ?? e.text ?? e.reason]),
      [
        ['EXEC', 'cat /etc/hostname'],
        ['DATA_OUT', 'web1\n'],
        ['SESSION_END', 'closed'],
      ],
    );
  });

  it('works in FIPS mode (the CLI re-launches itself under the FIPS provider)', async () => {
    const gen = await sealgate(
      [
        '--fips',
        'keys',
        'gen',
        '--pkcs11',
        '--module',
        shsm.module,
        '--token',
        'sealgate',
        '--label',
        'fips-ca',
        '--type',
        'ec-p256',
        '--pin-file',
        shsm.pinFile,
      ],
      shsm.env,
    );
    assert.equal(gen.status, 0, show(gen));
    assert.match(gen.stdout, /^generated an EC P-256 key in token "sealgate"/);
  });

  it('exports the public key of a file: key (encrypted private PEM, with its passphrase)', async () => {
    const dir = shsm.dir;
    const pass = join(dir, 'pass');
    writeFileSync(pass, 'correct horse\n', { mode: 0o600 });
    const made = await sealgate(['keys', 'gen-signer', '-o', join(dir, 'soft'), '--passphrase-file', pass]);
    assert.equal(made.status, 0, show(made));
    const key = `file:${join(dir, 'soft', 'signer.key.pem')}`;
    const out = await sealgate(['keys', 'export-public', key, '--passphrase-file', pass]);
    assert.equal(out.status, 0, show(out));
    assert.equal(out.stdout, readFileSync(join(dir, 'soft', 'signer.pub.pem'), 'utf8'));
  });

  it('failures are one line and exit 2: wrong PIN, missing token, missing module, usage', async () => {
    const wrong = join(shsm.dir, 'wrong.pin');
    writeFileSync(wrong, '999999\n', { mode: 0o600 });
    const base = ['keys', 'gen', '--pkcs11', '--module', shsm.module, '--label', 'x', '--type', 'ec-p384'];
    assertCleanFailure(
      await sealgate([...base, '--token', 'sealgate', '--pin-file', wrong], shsm.env),
      2,
      /token "sealgate" refused the PIN from file .*wrong\.pin: wrong PIN \(CKR_PIN_INCORRECT\)/,
    );
    assertCleanFailure(
      await sealgate([...base, '--token', 'absent', '--pin-file', shsm.pinFile], shsm.env),
      2,
      /no token "absent" in PKCS#11 module .*libsofthsm2\.so \(tokens present: "sealgate"\)/,
    );
    assertCleanFailure(
      await sealgate(
        [
          'keys',
          'gen',
          '--pkcs11',
          '--module',
          '/nonexistent/p11.so',
          '--token',
          'sealgate',
          '--label',
          'x',
          '--type',
          'ec-p384',
          '--pin-file',
          shsm.pinFile,
        ],
        shsm.env,
      ),
      2,
      /cannot load PKCS#11 module \/nonexistent\/p11\.so/,
    );
    assertCleanFailure(
      await sealgate(['keys', 'gen', '--token', 'sealgate', '--label', 'x', '--type', 'ec-p384'], shsm.env),
      2,
      /add --pkcs11/,
    );
    assertCleanFailure(
      await sealgate(
        [...base.slice(0, -2), '--type', 'ed25519', '--token', 'sealgate', '--pin-file', shsm.pinFile],
        shsm.env,
      ),
      2,
      /--type must be one of ec-p256, ec-p384, rsa-3072, rsa-4096/,
    );
    assertCleanFailure(
      await sealgate(
        ['keys', 'export-public', 'pkcs11:token=sealgate;object=nothing', '--module', shsm.module],
        shsm.env,
      ),
      2,
      /token "sealgate" has no public key object object="nothing"; give the PIN/,
    );
    // There is no way to pass a PIN as an argument.
    const r = await sealgate([...base, '--token', 'sealgate', '--pin', '1234'], shsm.env);
    assert.equal(r.status, 2, show(r));
    assert.match(r.stderr, /unknown option '--pin'/);
  });
});
