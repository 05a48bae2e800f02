/**
 * Certificates from `sealgate ca issue` log in to a real sshd that trusts the CA (`TrustedUserCAKeys`)
 * with an empty authorized_keys, with the real `ssh`; sshd honours the principals and `force-command`,
 * and logs the key id and serial we issued.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, showRun } from '../helpers/cli.js';
import { runSsh } from '../helpers/ssh-client.js';
import { startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'sealgate-ca-sshd-'));
let sshd: Sshd;

const CAS = [
  { name: 'p384', flags: ['--curve', 'P-384'] },
  { name: 'rsa', flags: ['--rsa', '3072'] },
] as const;

async function sealgate(args: string[]): Promise<void> {
  const r = await runCli(args);
  assert.equal(r.status, 0, showRun(r));
}

/** Issues a certificate for a fresh ssh-keygen ECDSA key; returns the private key path. */
async function issue(ca: string, name: string, extra: string[]): Promise<string> {
  const key = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-C', name, '-f', key]);
  await sealgate([
    'ca',
    'issue',
    '--ca',
    `file:${join(dir, ca, 'user_ca.pem')}`,
    '--ttl',
    '10m',
    '--pubkey',
    `${key}.pub`,
    ...extra,
  ]);
  return key;
}

function ssh(key: string, command: string) {
  return runSsh([
    '-F',
    'none',
    '-i',
    key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-p',
    String(sshd.port),
    `${TEST_USER}@127.0.0.1`,
    command,
  ]);
}

describe('certificates from sealgate ca issue, with a real sshd', () => {
  before(async () => {
    for (const ca of CAS)
      await sealgate(['ca', 'init', '--out', join(dir, ca.name), ...ca.flags, '--unencrypted']);
    const trusted = join(dir, 'trusted_cas');
    execFileSync('sh', [
      '-c',
      `cat ${join(dir, 'p384', 'user_ca.pub')} ${join(dir, 'rsa', 'user_ca.pub')} > ${trusted}`,
    ]);
    sshd = await startSshd({ extraConfig: [`TrustedUserCAKeys ${trusted}`] });
    writeFileSync(join(dir, 'known_hosts'), `${sshd.knownHostsLine}\n`);
  });
  after(async () => {
    await sshd?.stop();
  });

  for (const ca of CAS) {
    it(`a ${ca.name} CA's certificate logs in with no authorized key; sshd logs its key id and serial`, async () => {
      const key = await issue(ca.name, `user-${ca.name}`, [
        '--principal',
        'nobody',
        '--principal',
        TEST_USER,
        '--serial',
        '4242',
        '--key-id',
        `alice via ${ca.name}`,
      ]);
      const r = await ssh(key, 'echo logged-in');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'logged-in\n');
      assert.match(
        sshd.log(),
        new RegExp(
          `Accepted publickey for ${TEST_USER} .*ECDSA-CERT .*ID alice via ${ca.name} \\(serial 4242\\) CA ${ca.name === 'rsa' ? 'RSA' : 'ECDSA'}`,
        ),
      );
    });
  }

  it('sshd refuses a certificate for another principal, and runs the forced command', async () => {
    const wrong = await issue('p384', 'wrong-principal', ['--principal', 'someone-else']);
    const refused = await ssh(wrong, 'echo should-not-run');
    assert.equal(refused.code, 255, refused.stderr);
    assert.match(refused.stderr, /Permission denied/);
    assert.match(sshd.log(), /name is not a listed principal/);

    const forced = await issue('p384', 'forced', [
      '--principal',
      TEST_USER,
      '--force-command',
      'echo forced:$SSH_ORIGINAL_COMMAND',
    ]);
    const r = await ssh(forced, 'asked-for');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'forced:asked-for\n');

    const elsewhere = await issue('p384', 'elsewhere', [
      '--principal',
      TEST_USER,
      '--source-address',
      '192.0.2.0/24',
    ]);
    const r2 = await ssh(elsewhere, 'echo should-not-run');
    assert.equal(r2.code, 255, r2.stderr);
    assert.match(sshd.log(), /not from a permitted source address/);
  });
});
