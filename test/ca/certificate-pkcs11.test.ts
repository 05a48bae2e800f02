/**
 * `sealgate ca issue` with the CA key in a PKCS#11 token (SoftHSM2): the key is made with `keys gen
 * --pkcs11`, its OpenSSH line comes from `keys export-public --format openssh`, and the certificate the
 * token signs is read by `ssh-keygen -L` and verified through our decoder.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { decodeCertificate } from '../../src/ca/certificate.js';
import { verifyCertificateSignature } from '../../src/ca/signature.js';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { runCli, showRun } from '../helpers/cli.js';
import { makeSoftHsm2, type TestToken } from '../tokens/tokens.js';

describe('sealgate ca issue with a CA key in a token', () => {
  let token: TestToken;
  before(() => {
    token = makeSoftHsm2();
  });

  it('signs with a pkcs11: P-384 key; ssh-keygen -L names that CA, our check verifies it', async () => {
    const env = { ...token.env, SEALGATE_PKCS11_MODULE: token.module };
    const gen = await runCli(
      [
        'keys',
        'gen',
        '--pkcs11',
        '--token',
        'sealgate',
        '--label',
        'user-ca',
        '--type',
        'ec-p384',
        '--usage',
        'sign',
        '--pin-file',
        token.pinFile,
      ],
      env,
    );
    assert.equal(gen.status, 0, showRun(gen));
    const ref = /^key reference: (pkcs11:\S+)$/m.exec(gen.stdout)?.[1];
    assert.ok(ref, showRun(gen));
    const caPub = join(token.dir, 'user_ca.pub');
    const exp = await runCli(['keys', 'export-public', ref, '--format', 'openssh', '-o', caPub], env);
    assert.equal(exp.status, 0, showRun(exp));

    const key = join(token.dir, 'id_ecdsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-C', 'bob', '-f', key]);
    const issue = await runCli(
      [
        'ca',
        'issue',
        '--ca',
        ref,
        '--pin-file',
        token.pinFile,
        '--principal',
        'ops',
        '--ttl',
        '1h',
        '--pubkey',
        `${key}.pub`,
      ],
      env,
    );
    assert.equal(issue.status, 0, showRun(issue));

    const listed = execFileSync('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], { encoding: 'utf8' });
    const caFp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', caPub], { encoding: 'utf8' }).split(
      ' ',
    )[1];
    assert.match(
      listed,
      new RegExp(
        `Signing CA: ECDSA ${(caFp ?? '').replace(/[+/]/g, '\\$&')} \\(using ecdsa-sha2-nistp384\\)`,
      ),
    );
    const cert = decodeCertificate(
      Buffer.from(readFileSync(`${key}-cert.pub`, 'utf8').split(' ')[1] ?? '', 'base64'),
    );
    assert.deepEqual(
      cert.signatureKey,
      Buffer.from(readFileSync(caPub, 'utf8').split(' ')[1] ?? '', 'base64'),
    );
    assert.equal(verifyCertificateSignature(new OpenSslProvider(), cert), true);
  });
});
