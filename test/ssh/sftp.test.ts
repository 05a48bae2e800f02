/**
 * sftp and scp through the gate, both ways, with a small file: the bytes arrive intact and the session
 * is recorded as the `sftp` subsystem. (SFTP_OP records with paths, and the 100 MB runs, come later.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const provider = new OpenSslProvider();
const sha256 = (b: Uint8Array) => Buffer.from(provider.digest('sha256', b)).toString('hex');

function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('sftp and scp through the gate', () => {
  let sshd: Sshd;
  let fx: GateFixture;
  let dir: string;
  let remote: string;
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-sftp-'));
    chmodSync(dir, 0o777); // the target user writes here too (same machine)
    remote = join(dir, 'remote');
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `-p PORT` for ssh is `-P PORT` for sftp and scp. */
  const options = () => fx.sshOptions().map((o, i, all) => (o === '-p' && i === all.length - 2 ? '-P' : o));

  it('sftp put and get: the bytes arrive intact, recorded as the sftp subsystem', async () => {
    const data = Buffer.from(provider.randomBytes(1024 * 1024 + 17));
    const local = join(dir, 'local');
    writeFileSync(local, data);
    const put = await run(
      'sftp',
      ['-b', '-', ...options(), 'ops+local@127.0.0.1'],
      `put ${local} ${remote}\nget ${remote} ${local}.back\n`,
    );
    assert.equal(put.code, 0, put.stderr);
    assert.equal(sha256(readFileSync(remote)), sha256(data));
    assert.equal(sha256(readFileSync(`${local}.back`)), sha256(data));
    const recs = await fx.recordsAfterSessions(1);
    assert.ok(recs.some((r) => r.type === 'SUBSYSTEM' && r.payload.name === 'sftp'));
    const inBytes = recs
      .filter((r) => r.type === 'DATA_IN')
      .reduce((n, r) => n + (r.payload.data?.length ?? 0), 0);
    assert.ok(inBytes > data.length, 'the uploaded bytes are in the log');
  });

  it('scp both ways (the sftp protocol in OpenSSH 9)', async () => {
    const data = Buffer.from(provider.randomBytes(300_000));
    const local = join(dir, 'scp-local');
    writeFileSync(local, data);
    const up = await run('scp', [...options(), local, `ops+local@127.0.0.1:${remote}.scp`]);
    assert.equal(up.code, 0, up.stderr);
    const down = await run('scp', [...options(), `ops+local@127.0.0.1:${remote}.scp`, `${local}.back`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(sha256(readFileSync(`${local}.back`)), sha256(data));
  });
});
