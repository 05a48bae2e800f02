/**
 * The user CA in FIPS mode: `sealgate --fips ca init` and `ca issue` (the CLI re-launches itself in a
 * FIPS-mode Node) make certificates that ssh-keygen reads, and this FIPS-mode Node's provider verifies
 * them; an Ed25519 CA made by ssh-keygen is refused by name, before any key is imported.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { decodeCertificate } from '../../src/ca/certificate.js';
import { CertError } from '../../src/ca/errors.js';
import { verifyCertificateSignature } from '../../src/ca/signature.js';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { runCli, showRun } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

const FIPS_DIR = resolve(process.env.SEALGATE_FIPS_DIR ?? join(repoRoot(), '.cache', 'fips'));
const dir = mkdtempSync(join(tmpdir(), 'sealgate-ca-fips-'));
const provider = new OpenSslProvider();
const blobOf = (file: string) => Buffer.from(readFileSync(file, 'utf8').split(' ')[1] ?? '', 'base64');

async function fipsCli(args: string[]) {
  const r = await runCli(['--fips', ...args], { SEALGATE_FIPS_DIR: FIPS_DIR });
  assert.equal(r.status, 0, showRun(r));
  return r;
}

describe('user CA in FIPS mode', () => {
  it('runs in a FIPS-mode provider', () => assert.equal(provider.policy.fips, true));

  for (const [name, flags, alg] of [
    ['p384', ['--curve', 'P-384'], 'ecdsa-sha2-nistp384'],
    ['rsa', ['--rsa', '3072'], 'rsa-sha2-512'],
  ] as const) {
    it(`a ${name} CA issues in FIPS mode; ssh-keygen reads it, the FIPS provider verifies it`, async () => {
      await fipsCli(['ca', 'init', '--out', join(dir, name), ...flags, '--unencrypted']);
      const key = join(dir, `id_${name}`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', key]);
      await fipsCli([
        'ca',
        'issue',
        '--ca',
        `file:${join(dir, name, 'user_ca.pem')}`,
        '--principal',
        'ops',
        '--ttl',
        '8h',
        '--pubkey',
        `${key}.pub`,
      ]);
      const listed = execFileSync('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], { encoding: 'utf8' });
      assert.match(listed, new RegExp(`\\(using ${alg}\\)`));
      assert.equal(verifyCertificateSignature(provider, decodeCertificate(blobOf(`${key}-cert.pub`))), true);
    });
  }

  it('refuses an Ed25519 CA by name', () => {
    const ca = join(dir, 'ed_ca');
    const key = join(dir, 'id_for_ed');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-s', ca, '-I', 'x', '-n', 'ops', `${key}.pub`]);
    assert.throws(
      () => verifyCertificateSignature(provider, decodeCertificate(blobOf(`${key}-cert.pub`))),
      (err: unknown) => err instanceof CertError && err.code === 'UNSUPPORTED_SIGNATURE',
    );
  });
});
