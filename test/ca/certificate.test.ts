/**
 * `sealgate ca init` and `sealgate ca issue` as operators run them (the CLI in a child process), with the
 * certificates read back by the real `ssh-keygen -L` (which also checks the CA signature when it parses a
 * certificate) and by our decoder, whose signature check runs through the provider. Subject keys are made
 * by `ssh-keygen`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import {
  CERT_TYPE_USER,
  DEFAULT_EXTENSIONS,
  decodeCertificate,
  optionString,
  type Certificate,
} from '../../src/ca/certificate.js';
import { canonicalOptions, encodeToBeSigned, flagOption } from '../../src/ca/certificate.js';
import { CertError } from '../../src/ca/errors.js';
import { issueUserCertificate } from '../../src/ca/issue.js';
import { decodeSignature, verifyCertificateSignature } from '../../src/ca/signature.js';
import { runCli, showRun, STACK_LINE } from '../helpers/cli.js';

const provider = new OpenSslProvider();
const dir = mkdtempSync(join(tmpdir(), 'sealgate-ca-'));

/** `ssh-keygen -L -f FILE`, parsed: `Key ID: "x"` → fields['Key ID'], indented lines → lists. */
function keygenList(file: string): { fields: Record<string, string>; lists: Record<string, string[]> } {
  const out = execFileSync('ssh-keygen', ['-L', '-f', file], {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
  });
  const fields: Record<string, string> = {};
  const lists: Record<string, string[]> = {};
  let last = '';
  for (const line of out.split('\n').slice(1)) {
    const item = /^ {16}(\S.*)$/.exec(line);
    if (item) {
      (lists[last] ??= []).push(item[1] ?? '');
      continue;
    }
    const field = /^ {8}([A-Za-z ]+): ?(.*)$/.exec(line);
    if (field) {
      last = field[1] ?? '';
      fields[last] = (field[2] ?? '').trim();
      if (fields[last] === '(none)') lists[last] = [];
    }
  }
  return { fields, lists };
}

const fingerprint = (pub: string) =>
  execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1];

const blobOf = (file: string) =>
  Buffer.from(readFileSync(file, 'utf8').trim().split(/\s+/)[1] ?? '', 'base64');

/** ssh-keygen's local time format, in UTC. */
const keygenTime = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString().slice(0, 19);

async function sealgate(args: string[]) {
  const r = await runCli(args);
  assert.equal(r.status, 0, showRun(r));
  return r;
}

const CAS = [
  { name: 'p256', flags: ['--curve', 'P-256'], sigAlg: 'ecdsa-sha2-nistp256', caType: 'ECDSA' },
  { name: 'p384', flags: ['--curve', 'P-384'], sigAlg: 'ecdsa-sha2-nistp384', caType: 'ECDSA' },
  { name: 'rsa', flags: ['--rsa', '3072'], sigAlg: 'rsa-sha2-512', caType: 'RSA' },
] as const;

const SUBJECTS = [
  {
    name: 'ecdsa',
    keygen: ['-t', 'ecdsa', '-b', '256'],
    certType: 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  },
  { name: 'rsa', keygen: ['-t', 'rsa', '-b', '3072'], certType: 'ssh-rsa-cert-v01@openssh.com' },
] as const;

describe('sealgate ca', () => {
  before(async () => {
    writeFileSync(join(dir, 'pass'), 'correct horse battery staple\n', { mode: 0o600 });
    for (const ca of CAS) {
      // The RSA CA is PBES2-encrypted (passphrase file); the EC ones unencrypted.
      const secret = ca.name === 'rsa' ? ['--passphrase-file', join(dir, 'pass')] : ['--unencrypted'];
      await sealgate(['ca', 'init', '--out', join(dir, ca.name), ...ca.flags, ...secret]);
    }
    for (const s of SUBJECTS) {
      execFileSync('ssh-keygen', [
        '-q',
        ...s.keygen,
        '-N',
        '',
        '-C',
        `${s.name}@laptop`,
        '-f',
        join(dir, `id_${s.name}`),
      ]);
    }
  });

  it('init writes a 0600 PEM key (PBES2 with a passphrase) and an OpenSSH public key line', () => {
    for (const ca of CAS) {
      const pem = readFileSync(join(dir, ca.name, 'user_ca.pem'), 'utf8');
      assert.equal(statSync(join(dir, ca.name, 'user_ca.pem')).mode & 0o777, 0o600);
      assert.match(pem, ca.name === 'rsa' ? /BEGIN ENCRYPTED PRIVATE KEY/ : /BEGIN PRIVATE KEY/);
      const fp = fingerprint(join(dir, ca.name, 'user_ca.pub'));
      assert.match(fp ?? '', /^SHA256:/);
    }
  });

  for (const ca of CAS) {
    for (const s of SUBJECTS) {
      it(`a ${ca.name} CA certifies an ${s.name} key: ssh-keygen -L and our decoder show what was issued`, async () => {
        const pub = join(dir, `${ca.name}-${s.name}.pub`);
        writeFileSync(pub, readFileSync(join(dir, `id_${s.name}.pub`)));
        const serial = 1000 + CAS.indexOf(ca) * 10 + SUBJECTS.indexOf(s);
        const secret = ca.name === 'rsa' ? ['--passphrase-file', join(dir, 'pass')] : [];
        const r = await sealgate([
          'ca',
          'issue',
          '--ca',
          `file:${join(dir, ca.name, 'user_ca.pem')}`,
          ...secret,
          '--principal',
          'ops',
          '--principal',
          'db-admin',
          '--ttl',
          '1h30m',
          '--pubkey',
          pub,
          '--serial',
          String(serial),
          '--key-id',
          `alice ${ca.name} ${s.name}`,
          '--valid-from',
          '2030-01-02T03:04:05Z',
          '--source-address',
          '10.0.0.0/8,192.168.1.7',
          '--force-command',
          'echo "hi there"',
        ]);
        const certFile = join(dir, `${ca.name}-${s.name}-cert.pub`);
        assert.match(r.stdout, new RegExp(`serial: ${serial}\\n`));
        assert.match(r.stdout, /valid: from 2030-01-02T03:04:05Z to 2030-01-02T04:34:05Z/);

        const { fields, lists } = keygenList(certFile);
        assert.equal(fields['Type'], `${s.certType} user certificate`);
        assert.equal(fields['Key ID'], `"alice ${ca.name} ${s.name}"`);
        assert.equal(fields['Serial'], String(serial));
        assert.equal(fields['Valid'], 'from 2030-01-02T03:04:05 to 2030-01-02T04:34:05');
        assert.equal(
          fields['Signing CA'],
          `${ca.caType} ${fingerprint(join(dir, ca.name, 'user_ca.pub'))} (using ${ca.sigAlg})`,
        );
        assert.deepEqual(lists['Principals'], ['ops', 'db-admin']);
        assert.deepEqual(lists['Critical Options'], [
          'force-command echo "hi there"',
          'source-address 10.0.0.0/8,192.168.1.7',
        ]);
        assert.deepEqual(lists['Extensions'], [...DEFAULT_EXTENSIONS]);

        const certLine = readFileSync(certFile, 'utf8').trim().split(' ');
        assert.equal(certLine[0], s.certType);
        assert.equal(certLine[2], `${s.name}@laptop`, 'the comment of the public key is kept');
        const cert = decodeCertificate(blobOf(certFile));
        assert.equal(cert.certType, s.certType);
        assert.deepEqual(cert.subjectKey, blobOf(pub));
        assert.deepEqual(cert.signatureKey, blobOf(join(dir, ca.name, 'user_ca.pub')));
        assert.equal(cert.serial, BigInt(serial));
        assert.equal(cert.type, CERT_TYPE_USER);
        assert.equal(cert.keyId, `alice ${ca.name} ${s.name}`);
        assert.deepEqual(cert.principals, ['ops', 'db-admin']);
        assert.equal(keygenTime(cert.validAfter), '2030-01-02T03:04:05');
        assert.equal(cert.validBefore - cert.validAfter, 5400n);
        assert.deepEqual(
          cert.criticalOptions.map((o) => [o.name, optionString(o)]),
          [
            ['force-command', 'echo "hi there"'],
            ['source-address', '10.0.0.0/8,192.168.1.7'],
          ],
        );
        assert.deepEqual(
          cert.extensions.map((o) => [o.name, o.data.length]),
          DEFAULT_EXTENSIONS.map((n) => [n, 0]),
        );
        assert.equal(cert.nonce.length, 32);
        assert.equal(cert.reserved.length, 0);
        assert.equal(decodeSignature(cert.signature).algorithm, ca.sigAlg);
        assert.equal(verifyCertificateSignature(provider, cert), true);
        assertTamperRefused(cert, certFile);
      });
    }
  }

  it('defaults: a random non-zero serial, validity from 5 minutes ago, the key comment as key id', async () => {
    const pub = join(dir, 'defaults.pub');
    writeFileSync(pub, readFileSync(join(dir, 'id_ecdsa.pub')));
    const t0 = BigInt(Math.floor(Date.now() / 1000));
    await sealgate([
      'ca',
      'issue',
      '--ca',
      `file:${join(dir, 'p256', 'user_ca.pem')}`,
      '--principal',
      'ops',
      '--ttl',
      '8h',
      '--pubkey',
      pub,
    ]);
    const t1 = BigInt(Math.floor(Date.now() / 1000));
    const cert = decodeCertificate(blobOf(join(dir, 'defaults-cert.pub')));
    assert.ok(cert.serial > 0n && cert.serial < 2n ** 63n);
    assert.ok(cert.validAfter >= t0 - 300n && cert.validAfter <= t1 - 300n, `${cert.validAfter} vs ${t0}`);
    assert.ok(cert.validBefore >= t0 + 8n * 3600n && cert.validBefore <= t1 + 8n * 3600n);
    assert.equal(cert.keyId, 'ecdsa@laptop');
    assert.deepEqual(cert.criticalOptions, []);
    assert.deepEqual(keygenList(join(dir, 'defaults-cert.pub')).lists['Critical Options'], []);

    const again = await runCli([
      'ca',
      'issue',
      '--ca',
      `file:${join(dir, 'p256', 'user_ca.pem')}`,
      '--principal',
      'ops',
      '--ttl',
      '8h',
      '--pubkey',
      pub,
    ]);
    assert.equal(again.status, 2, showRun(again));
    assert.match(again.stderr, /defaults-cert\.pub exists; refusing to overwrite it \(use --force\)/);
    assert.doesNotMatch(again.stderr, STACK_LINE);
    await sealgate([
      'ca',
      'issue',
      '--ca',
      `file:${join(dir, 'p256', 'user_ca.pem')}`,
      '--principal',
      'ops',
      '--ttl',
      '8h',
      '--pubkey',
      pub,
      '--force',
    ]);
    assert.notEqual(decodeCertificate(blobOf(join(dir, 'defaults-cert.pub'))).serial, cert.serial);
  });

  it('refuses bad input in one line: no passphrase for an encrypted CA, a bad --ttl, a certificate as --pubkey', async () => {
    const ca = `file:${join(dir, 'rsa', 'user_ca.pem')}`;
    const cases: [string[], RegExp][] = [
      [['--ca', ca, '--principal', 'ops', '--ttl', '8h', '--pubkey', join(dir, 'id_rsa.pub')], /passphrase/i],
      [
        [
          '--ca',
          `file:${join(dir, 'p256', 'user_ca.pem')}`,
          '--principal',
          'ops',
          '--ttl',
          '8 hours',
          '--pubkey',
          join(dir, 'id_rsa.pub'),
        ],
        /--ttl must be a span/,
      ],
      [
        [
          '--ca',
          `file:${join(dir, 'p256', 'user_ca.pem')}`,
          '--principal',
          'ops',
          '--ttl',
          '8h',
          '--pubkey',
          join(dir, 'defaults-cert.pub'),
          '--force',
        ],
        /is a certificate/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['ca', 'issue', ...args]);
      assert.equal(r.status, 2, showRun(r));
      assert.match(r.stderr, message, showRun(r));
      assert.doesNotMatch(r.stderr, STACK_LINE, showRun(r));
    }
  });

  it('the decoder reads ssh-keygen -s certificates and names what it refuses', () => {
    const sub = join(dir, 'kg.pub');
    writeFileSync(sub, readFileSync(join(dir, 'id_ecdsa.pub')));
    const keygenSign = (caKey: string, extra: string[]) => {
      execFileSync('ssh-keygen', [
        '-q',
        '-s',
        caKey,
        '-I',
        'kg',
        '-n',
        'ops,web',
        '-z',
        '7',
        '-V',
        '+1h',
        ...extra,
        sub,
      ]);
      return decodeCertificate(blobOf(join(dir, 'kg-cert.pub')));
    };
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-f', join(dir, 'kg_rsa_ca')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'kg_ed_ca')]);

    const good = keygenSign(join(dir, 'kg_rsa_ca'), [
      '-t',
      'rsa-sha2-256',
      '-O',
      'source-address=10.1.0.0/16',
    ]);
    assert.deepEqual(good.principals, ['ops', 'web']);
    assert.equal(good.serial, 7n);
    assert.equal(optionString(good.criticalOptions[0]!), '10.1.0.0/16');
    assert.equal(verifyCertificateSignature(provider, good), true);

    const sha1 = keygenSign(join(dir, 'kg_rsa_ca'), ['-t', 'ssh-rsa']);
    assert.equal(decodeSignature(sha1.signature).algorithm, 'ssh-rsa');
    assertCertError(() => verifyCertificateSignature(provider, sha1), 'UNSUPPORTED_SIGNATURE');

    const ed = keygenSign(join(dir, 'kg_ed_ca'), []);
    assertCertError(() => verifyCertificateSignature(provider, ed), 'UNSUPPORTED_SIGNATURE');

    const blob = blobOf(join(dir, 'kg-cert.pub'));
    assertCertError(() => decodeCertificate(blob.subarray(0, blob.length - 3)), 'MALFORMED');
    assertCertError(() => decodeCertificate(Buffer.concat([blob, Buffer.from([0])])), 'MALFORMED');
    assertCertError(() => decodeCertificate(blobOf(join(dir, 'id_ecdsa.pub'))), 'UNSUPPORTED_KEY_TYPE');
  });

  it('refuses what OpenSSH would not read, and certificates for anyone', async () => {
    const subjectKey = blobOf(join(dir, 'id_ecdsa.pub'));
    const content = {
      subjectKey,
      serial: 1n,
      type: CERT_TYPE_USER,
      keyId: 'k',
      principals: ['ops'],
      validAfter: 0n,
      validBefore: 10n,
      criticalOptions: [],
      extensions: [flagOption('permit-pty'), flagOption('permit-X11-forwarding')],
    };
    const ca = blobOf(join(dir, 'p256', 'user_ca.pub'));
    assertCertError(() => encodeToBeSigned(content, new Uint8Array(32), ca), 'NOT_CANONICAL');
    assertCertError(
      () => canonicalOptions([flagOption('permit-pty'), flagOption('permit-pty')]),
      'NOT_CANONICAL',
    );
    assert.deepEqual(
      canonicalOptions(content.extensions).map((o) => o.name),
      ['permit-X11-forwarding', 'permit-pty'],
    );
    const caKey = await provider.importPrivateKey(readFileSync(join(dir, 'p256', 'user_ca.pem'), 'utf8'));
    const req = { subjectKey, keyId: 'k', validAfter: 0n, validBefore: 10n };
    await assert.rejects(
      issueUserCertificate(provider, caKey, { ...req, principals: [] }),
      (err: unknown) => err instanceof CertError && err.code === 'INVALID_REQUEST',
    );
    await assert.rejects(
      issueUserCertificate(provider, caKey, { ...req, principals: ['ops'], validBefore: 0n }),
      (err: unknown) => err instanceof CertError && err.code === 'INVALID_REQUEST',
    );
    const made = await issueUserCertificate(provider, caKey, { ...req, principals: ['ops'] });
    assert.equal(verifyCertificateSignature(provider, decodeCertificate(made.blob)), true);
  });
});

function assertCertError(run: () => unknown, code: string): void {
  assert.throws(run, (err: unknown) => err instanceof CertError && err.code === code);
}

/** A flipped bit in the signed bytes or the signature: our check says false, ssh-keygen refuses to read it. */
function assertTamperRefused(cert: Certificate, certFile: string): void {
  const signed = Buffer.from(cert.signedBytes);
  const serialOffset = findSerialOffset(cert);
  signed[serialOffset + 7] ^= 1;
  assert.equal(verifyCertificateSignature(provider, { ...cert, signedBytes: signed }), false);

  const blob = blobOf(certFile);
  blob[blob.length - 5] ^= 0x40; // inside the signature
  const bad = join(dirOf(certFile), 'tampered-cert.pub');
  writeFileSync(bad, `${cert.certType} ${blob.toString('base64')}\n`);
  const kg = spawnSync('ssh-keygen', ['-L', '-f', bad], { encoding: 'utf8' });
  assert.notEqual(kg.status, 0, `ssh-keygen accepted a tampered certificate:\n${kg.stdout}`);
  assert.equal(verifyCertificateSignature(provider, decodeCertificate(blob)), false);
}

const dirOf = (file: string) => file.slice(0, file.lastIndexOf('/'));

/** The serial sits right after the subject key fields: cert type, nonce, key fields. */
function findSerialOffset(cert: Certificate): number {
  const typeLen = 4 + cert.certType.length;
  const nonceLen = 4 + cert.nonce.length;
  const keyFieldsLen = cert.subjectKey.length - (4 + cert.keyType.length);
  return typeLen + nonceLen + keyFieldsLen;
}
