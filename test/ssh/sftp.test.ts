/**
 * sftp and scp through the gate with the real OpenSSH programs, and the SFTP_OP records they leave
 * (docs/FORMAT.md §3.2.2):
 * - small files both ways: the bytes arrive intact, the session is the `sftp` subsystem;
 * - an `sftp -b` batch of mkdir, put, chmod, ln -s, rename, rm (one failing), rmdir, including a path
 *   that is not UTF-8: each operation is recorded with its exact paths and its outcome;
 * - bytes that are not SFTP on the sftp subsystem: the parser stops with one record, the session is
 *   not disturbed, the bytes are in DATA_IN;
 * - 100 MB both ways with sftp and with scp (OpenSSH 9's scp speaks sftp): the sha256 matches at the
 *   far end, and the CLOSE reply of each handle carries 104857600 bytes written or read;
 * - scp -O (the legacy protocol, an exec of `scp -t` / `scp -f`) still works and is recorded as exec.
 * Each 100 MB test has its own gate, so reading its log back decrypts only its own sessions.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const provider = new OpenSslProvider();
const sha256 = (b: Uint8Array) => Buffer.from(provider.digest('sha256', b)).toString('hex');

const BIG = 100 * 1024 * 1024;
/** 100 MB through the gate takes 5–20 s on a loaded 2-core machine; leave a wide margin. */
const BIG_TIMEOUT = 300_000;

function run(
  cmd: string,
  args: string[],
  input?: string | Buffer,
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

type Op = Record<string, unknown>;

/** The SFTP_OP payloads. */
const sftpOps = (recs: readonly Rec[]): Op[] =>
  recs.filter((r) => r.type === 'SFTP_OP').map((r) => r.payload);

/** The one request record (no `result`) and the one reply record of `op` on `path`. */
function requestAndReply(ops: readonly Op[], op: string, path: string): { request: Op; reply: Op } {
  const all = ops.filter((o) => o.op === op && o.path === path);
  const requests = all.filter((o) => !('result' in o));
  const replies = all.filter((o) => 'result' in o);
  const show = () => `${op} ${path}: ${JSON.stringify(all)}`;
  assert.equal(requests.length, 1, `one request: ${show()}`);
  assert.equal(replies.length, 1, `one reply: ${show()}`);
  const [request, reply] = [requests[0] as Op, replies[0] as Op];
  assert.equal(reply.id, request.id, `the reply answers the request: ${show()}`);
  return { request, reply };
}

/** A gate in front of a real sshd, and a directory both the test and the target user write to. */
function gateAndDir(): { fx: () => GateFixture; dir: () => string; options: () => string[] } {
  let sshd: Sshd | undefined;
  let fx: GateFixture | undefined;
  let dir = '';
  before(async () => {
    sshd = await startSshd();
    fx = await startGateFixture({ sshd });
    dir = mkdtempSync(join(tmpdir(), 'sealgate-sftp-'));
    chmodSync(dir, 0o777); // the target user writes here too (same machine)
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const fixture = () => fx as GateFixture;
  return {
    fx: fixture,
    dir: () => dir,
    /** `-p PORT` for ssh is `-P PORT` for sftp and scp. */
    options: () =>
      fixture()
        .sshOptions()
        .map((o, i, all) => (o === '-p' && i === all.length - 2 ? '-P' : o)),
  };
}

/** A file of `size` random bytes from /dev/urandom; its sha256. */
function randomFile(path: string, size: number): string {
  const r = spawnSync('sh', ['-c', `head -c ${size} /dev/urandom > '${path}'`]);
  assert.equal(r.status, 0, r.stderr.toString());
  return sha256(readFileSync(path));
}

describe('sftp and scp through the gate', () => {
  const { fx, dir, options } = gateAndDir();
  let sessions = 0;

  it('sftp put and get: the bytes arrive intact, recorded as the sftp subsystem', async () => {
    const data = Buffer.from(provider.randomBytes(1024 * 1024 + 17));
    const local = join(dir(), 'local');
    const remote = join(dir(), 'remote');
    writeFileSync(local, data);
    const put = await run(
      'sftp',
      ['-b', '-', ...options(), 'ops+local@127.0.0.1'],
      `put ${local} ${remote}\nget ${remote} ${local}.back\n`,
    );
    assert.equal(put.code, 0, put.stderr);
    assert.equal(sha256(readFileSync(remote)), sha256(data));
    assert.equal(sha256(readFileSync(`${local}.back`)), sha256(data));
    const recs = await fx().recordsAfterSessions(++sessions);
    assert.ok(recs.some((r) => r.type === 'SUBSYSTEM' && r.payload.name === 'sftp'));
    const inBytes = recs
      .filter((r) => r.type === 'DATA_IN')
      .reduce((n, r) => n + (r.payload.data?.length ?? 0), 0);
    assert.ok(inBytes > data.length, 'the uploaded bytes are in the log');
    const ops = sftpOps(recs);
    const closes = ops.filter((o) => o.op === 'close' && o.path === remote && 'result' in o);
    assert.deepEqual(
      closes.map((o) => [o.written_bytes, o.read_bytes]),
      [
        [data.length, 0],
        [0, data.length],
      ],
      'the put, then the get',
    );
  });

  it('an sftp batch: each operation recorded with its exact paths and its outcome', async () => {
    const local = join(dir(), 'ops-local');
    writeFileSync(local, 'hello\n');
    const d = join(dir(), 'd');
    const [a, b, link, missing] = ['a', 'b', 'link', 'missing'].map((n) => join(d, n)) as [
      string,
      string,
      string,
      string,
    ];
    // A name that is not UTF-8 (SFTP v3 paths are bytes): 0xff is never valid UTF-8.
    const oddName = Buffer.concat([Buffer.from(`${d}/odd-`), Buffer.from([0xff, 0xfe]), Buffer.from('-dir')]);
    const batch = Buffer.concat([
      Buffer.from(
        [
          `mkdir ${d}`,
          `put ${local} ${a}`,
          `chmod 600 ${a}`,
          `ln -s ${a} ${link}`,
          `rename ${a} ${b}`,
          `-rm ${missing}`,
          `rm ${link}`,
          `rm ${b}`,
          '',
        ].join('\n'),
      ),
      Buffer.from('mkdir '),
      oddName,
      Buffer.from('\nrmdir '),
      oddName,
      Buffer.from(`\nrmdir ${d}\n`),
    ]);
    const r = await run('sftp', ['-b', '-', ...options(), 'ops+local@127.0.0.1'], batch);
    assert.equal(r.code, 0, r.stderr);
    const ops = sftpOps(await fx().recordsAfterSessions(++sessions));
    const ofThisRun = ops.filter((o) => typeof o.path === 'string' && o.path.startsWith(d));
    assert.ok(
      !ops.some((o) => o.op === 'parser-stopped'),
      JSON.stringify(ops.filter((o) => o.op === 'parser-stopped')),
    );

    assert.equal(requestAndReply(ofThisRun, 'mkdir', d).reply.result, 'ok');

    const open = requestAndReply(ofThisRun, 'open', a);
    assert.deepEqual(open.request.flags, ['write', 'creat', 'trunc']);
    assert.equal(open.reply.result, 'ok');
    assert.match(String(open.reply.handle), /^[0-9a-f]+$/);
    const close = requestAndReply(ofThisRun, 'close', a);
    assert.equal(close.request.handle, open.reply.handle, 'the close names the handle the open returned');
    assert.deepEqual(
      { ...close.reply, id: 0 },
      {
        channel: 0,
        op: 'close',
        id: 0,
        path: a,
        handle: open.reply.handle,
        result: 'ok',
        reads: 0,
        read_bytes: 0,
        read_errors: 0,
        writes: 1,
        written_bytes: 6,
        write_errors: 0,
      },
    );

    const chmod = requestAndReply(ofThisRun, 'setstat', a);
    assert.deepEqual(chmod.request.attrs, { permissions: '600' });
    assert.equal(chmod.reply.result, 'ok');

    const symlink = requestAndReply(ofThisRun, 'symlink', link);
    assert.equal(symlink.request.target, a, 'the link points to a');
    assert.equal(symlink.reply.result, 'ok');

    // OpenSSH's sftp renames with its POSIX extension when the server offers it.
    const rename = requestAndReply(ofThisRun, 'posix-rename@openssh.com', a);
    assert.equal(rename.request.new_path, b);
    assert.equal(rename.reply.new_path, b);
    assert.equal(rename.reply.result, 'ok');

    const failed = requestAndReply(ofThisRun, 'remove', missing);
    assert.equal(failed.reply.result, 'no_such_file');
    assert.equal(typeof failed.reply.message, 'string');
    assert.equal(requestAndReply(ofThisRun, 'remove', link).reply.result, 'ok');
    assert.equal(requestAndReply(ofThisRun, 'remove', b).reply.result, 'ok');

    const odd = ofThisRun.filter((o) => o.path_b64 === oddName.toString('base64'));
    assert.deepEqual(
      odd.map((o) => [o.op, 'result' in o ? o.result : 'request']),
      [
        ['mkdir', 'request'],
        ['mkdir', 'ok'],
        ['rmdir', 'request'],
        ['rmdir', 'ok'],
      ],
      'the non-UTF-8 path is kept exactly, in path_b64',
    );
    assert.equal(odd[0]?.path, `${d}/odd-\ufffd\ufffd-dir`, 'path is the lossy rendering');

    assert.equal(requestAndReply(ofThisRun, 'rmdir', d).reply.result, 'ok');
  });

  it('bytes that are not SFTP on the sftp subsystem: one parser-stopped record, the bytes still recorded', async () => {
    const garbage = 'garbage that is not an SFTP packet\n';
    const r = await run('ssh', [...fx().sshOptions(), '-s', 'ops+local@127.0.0.1', 'sftp'], garbage);
    assert.notEqual(r.code, null, 'ssh ended on its own');
    const recs = await fx().recordsAfterSessions(++sessions);
    const session = recs.filter(
      (x) => x.type === 'DATA_IN' && Buffer.from(x.payload.data ?? []).toString() === garbage,
    );
    assert.equal(session.length, 1, 'the raw bytes are in DATA_IN');
    const ops = sftpOps(recs.filter((x) => x.session === session[0]?.session));
    assert.deepEqual(
      ops.map((o) => [o.op, o.direction]),
      [['parser-stopped', 'in']],
    );
    assert.match(String(ops[0]?.reason), /packet length/);
    assert.ok(
      fx().opsLog.some((l) => l.message === 'sftp parser stopped; the bytes are still recorded'),
      'the operational log says so, without the bytes',
    );
    assert.ok(!JSON.stringify(fx().opsLog).includes('garbage'));
  });

  it('scp both ways (the sftp protocol in OpenSSH 9)', async () => {
    const data = Buffer.from(provider.randomBytes(300_000));
    const local = join(dir(), 'scp-local');
    const remote = join(dir(), 'remote.scp');
    writeFileSync(local, data);
    const up = await run('scp', [...options(), local, `ops+local@127.0.0.1:${remote}`]);
    assert.equal(up.code, 0, up.stderr);
    const down = await run('scp', [...options(), `ops+local@127.0.0.1:${remote}`, `${local}.back`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(sha256(readFileSync(`${local}.back`)), sha256(data));
    sessions += 2;
  });

  it('scp -O (legacy protocol): an exec of scp -t / scp -f, recorded with its command', async () => {
    const data = Buffer.from(provider.randomBytes(200_000));
    const local = join(dir(), 'legacy-local');
    const remote = join(dir(), 'legacy-remote');
    writeFileSync(local, data);
    const up = await run('scp', ['-O', ...options(), local, `ops+local@127.0.0.1:${remote}`]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(sha256(readFileSync(remote)), sha256(data));
    const down = await run('scp', ['-O', ...options(), `ops+local@127.0.0.1:${remote}`, `${local}.back`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(sha256(readFileSync(`${local}.back`)), sha256(data));
    sessions += 2;
    const recs = await fx().recordsAfterSessions(sessions);
    const commands = recs.filter((r) => r.type === 'EXEC').map((r) => String(r.payload.command));
    assert.ok(
      commands.some((c) => /^scp( -\S+)* -t( -\S+)* \S*legacy-remote$/.test(c)),
      `upload: ${commands.join(' | ')}`,
    );
    assert.ok(
      commands.some((c) => /^scp( -\S+)* -f( -\S+)* \S*legacy-remote$/.test(c)),
      `download: ${commands.join(' | ')}`,
    );
  });
});

describe('100 MB with sftp, both ways', { timeout: BIG_TIMEOUT * 2 }, () => {
  const { fx, dir, options } = gateAndDir();

  it(
    'sha256 matches at the far end; open, close totals, rename and remove are recorded',
    { timeout: BIG_TIMEOUT },
    async () => {
      const local = join(dir(), 'big');
      const digest = randomFile(local, BIG);
      const rdir = join(dir(), 'rd');
      const [a, b] = [join(rdir, 'a'), join(rdir, 'b')];

      const up = await run(
        'sftp',
        ['-b', '-', ...options(), 'ops+local@127.0.0.1'],
        `mkdir ${rdir}\nput ${local} ${a}\n`,
        BIG_TIMEOUT,
      );
      assert.equal(up.code, 0, up.stderr);
      assert.equal(sha256(readFileSync(a)), digest, 'upload: the far end has the same bytes');

      const back = `${local}.back`;
      const down = await run(
        'sftp',
        ['-b', '-', ...options(), 'ops+local@127.0.0.1'],
        `get ${a} ${back}\nrename ${a} ${b}\nrm ${b}\nrmdir ${rdir}\n`,
        BIG_TIMEOUT,
      );
      assert.equal(down.code, 0, down.stderr);
      assert.equal(sha256(readFileSync(back)), digest, 'download: the far end has the same bytes');

      const ops = sftpOps(await fx().recordsAfterSessions(2, 120_000));
      assert.ok(!ops.some((o) => o.op === 'parser-stopped'));
      assert.equal(requestAndReply(ops, 'mkdir', rdir).reply.result, 'ok');

      const opens = ops.filter((o) => o.op === 'open' && o.path === a && !('result' in o));
      assert.deepEqual(
        opens.map((o) => o.flags),
        [['write', 'creat', 'trunc'], ['read']],
        'one open to write (the upload), one to read (the download)',
      );
      const closes = ops.filter((o) => o.op === 'close' && o.path === a && 'result' in o);
      assert.equal(closes.length, 2, JSON.stringify(closes));
      const [upload, download] = closes as [Op, Op];
      assert.equal(upload.result, 'ok');
      assert.equal(upload.written_bytes, BIG);
      assert.ok(Number(upload.writes) >= BIG / (256 * 1024), `writes: ${upload.writes}`);
      assert.equal(upload.write_errors, 0);
      assert.equal(upload.read_bytes, 0);
      assert.equal(download.result, 'ok');
      assert.equal(download.read_bytes, BIG);
      assert.equal(download.read_errors, 0);
      assert.equal(download.written_bytes, 0);

      const rename = requestAndReply(ops, 'posix-rename@openssh.com', a);
      assert.equal(rename.request.new_path, b);
      assert.equal(rename.reply.result, 'ok');
      assert.equal(requestAndReply(ops, 'remove', b).reply.result, 'ok');
      assert.equal(requestAndReply(ops, 'rmdir', rdir).reply.result, 'ok');
      // Reads and writes are counted, not recorded one by one.
      assert.ok(ops.length < 100, `${ops.length} SFTP_OP records`);
    },
  );
});

describe('100 MB with scp (sftp protocol), both ways', { timeout: BIG_TIMEOUT * 2 }, () => {
  const { fx, dir, options } = gateAndDir();

  it('sha256 matches at the far end; the close totals are recorded', { timeout: BIG_TIMEOUT }, async () => {
    const local = join(dir(), 'big');
    const digest = randomFile(local, BIG);
    const remote = join(dir(), 'big.remote');
    const up = await run(
      'scp',
      [...options(), local, `ops+local@127.0.0.1:${remote}`],
      undefined,
      BIG_TIMEOUT,
    );
    assert.equal(up.code, 0, up.stderr);
    assert.equal(sha256(readFileSync(remote)), digest, 'upload: the far end has the same bytes');
    const back = `${local}.back`;
    const down = await run(
      'scp',
      [...options(), `ops+local@127.0.0.1:${remote}`, back],
      undefined,
      BIG_TIMEOUT,
    );
    assert.equal(down.code, 0, down.stderr);
    assert.equal(sha256(readFileSync(back)), digest, 'download: the far end has the same bytes');

    const recs = await fx().recordsAfterSessions(2, 120_000);
    assert.equal(recs.filter((r) => r.type === 'SUBSYSTEM' && r.payload.name === 'sftp').length, 2);
    const ops = sftpOps(recs);
    const opens = ops.filter((o) => o.op === 'open' && o.path === remote && !('result' in o));
    assert.deepEqual(
      opens.map((o) => (o.flags as string[]).includes('write')),
      [true, false],
      JSON.stringify(opens),
    );
    const closes = ops.filter((o) => o.op === 'close' && o.path === remote && 'result' in o);
    assert.deepEqual(
      closes.map((o) => [o.result, o.written_bytes, o.read_bytes]),
      [
        ['ok', BIG, 0],
        ['ok', 0, BIG],
      ],
    );
  });
});
