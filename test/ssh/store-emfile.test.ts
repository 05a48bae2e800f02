/**
 * Issue 10, item 2, through the real gate: `sealgate serve` under a low file descriptor limit
 * (prlimit), flooded with silent TCP connections until it has no descriptor left, goes on sealing
 * (heartbeats and checkpoints every 0.2 s) without the store failing, stops cleanly on SIGTERM, and
 * its store verifies with the signer's key after the next start. Before, the signer failed with
 * `cannot read …/signed.state: EMFILE`, and the restarted store failed with RUN_NOT_CLOSED.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { EntryKind, SystemType } from '../../src/seal/format/types.js';
import { LocalStore } from '../../src/seal/store.js';
import { cliPath } from '../helpers/paths.js';
import { freePort } from '../helpers/sshd.js';

/** The gate's limit: enough to start, few enough for a flood of a few hundred to take them all. */
const FD_LIMIT = 128;
const FLOOD = 300;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function heartbeats(dir: string): number {
  const store = LocalStore.openReadOnly(dir);
  try {
    let n = 0;
    for (const bytes of store.entries(0, store.size)) {
      if (bytes[0] !== EntryKind.SYSTEM) continue;
      const e = decodeEntry(bytes);
      if (e.kind === EntryKind.SYSTEM && e.type === SystemType.HEARTBEAT) n++;
    }
    return n;
  } finally {
    void store.close();
  }
}

describe('serve out of file descriptors (issue 10)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sealgate-fdflood-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`a flood of ${FLOOD} silent connections at ${FD_LIMIT} fds: the store never fails, the log verifies`, async (t: TestContext) => {
    const gateDir = join(dir, 'gate');
    const port = await freePort();
    const init = spawnSync(
      process.execPath,
      [cliPath(), 'init', gateDir, '--target-port', '22', '--listen-port', String(port)],
      { encoding: 'utf8' },
    );
    assert.equal(init.status, 0, init.stderr);
    const configPath = join(gateDir, 'sealgate.yaml');
    const config = parse(readFileSync(configPath, 'utf8')) as { recording: Record<string, unknown> };
    config.recording.heartbeat_seconds = 0.2;
    config.recording.checkpoint_every_seconds = 0.2;
    writeFileSync(configPath, stringify(config));
    const start = async () => {
      const serve = spawn(
        'prlimit',
        [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, cliPath(), 'serve', '--config', configPath],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const run = { log: '', serve, exited: new Promise<number | null>((r) => serve.on('close', r)) };
      serve.stderr.on('data', (b: Buffer) => (run.log += b.toString()));
      const deadline = Date.now() + 15_000;
      while (!run.log.includes('"listening"')) {
        assert.ok(Date.now() < deadline && serve.exitCode === null, `serve did not start: ${run.log}`);
        await sleep(50);
      }
      return run;
    };

    const first = await start();
    const sockets: Socket[] = [];
    let held = 0;
    try {
      for (let i = 0; i < FLOOD; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        sockets.push(s);
      }
      await sleep(500);
      // prlimit execs node: this pid is the gate's. Every descriptor it may have is open.
      held = readdirSync(`/proc/${first.serve.pid}/fd`).length;
      await sleep(1500); // heartbeats and checkpoints while the gate has no descriptor left
    } finally {
      for (const s of sockets) s.destroy();
    }
    await sleep(300);
    first.serve.kill('SIGTERM');
    const code = await Promise.race([first.exited, sleep(15_000).then(() => 'hung')]);
    first.serve.kill('SIGKILL');
    const errors = first.log.split('\n').filter((l) => /EMFILE|too many open files/i.test(l));
    t.diagnostic(`the gate held ${held} descriptors of ${FD_LIMIT} during the flood`);
    assert.ok(held >= FD_LIMIT - 1, `the gate ran out of descriptors (it held ${held} of ${FD_LIMIT})`);
    assert.deepEqual(errors, [], 'no EMFILE reached the log');
    assert.doesNotMatch(first.log, /recording\.failed|the sealed log failed/, 'the store never failed');
    assert.equal(code, 0, first.log.slice(-2000));
    assert.match(first.log, /"stopped"/);

    const second = await start();
    assert.doesNotMatch(second.log, /crash recovery ran/, 'the first run stopped cleanly');
    second.serve.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.log);

    const p = new OpenSslProvider();
    const signer = await p.loadPrivateKey(`file:${join(gateDir, 'keys', 'signer.key.pem')}`);
    const storeDir = join(gateDir, 'store');
    assert.ok(heartbeats(storeDir) >= 5, 'heartbeats went on');
    const source = storeSource(storeDir);
    try {
      const report = verifyLog(p, source, { trustedSigners: [signer.publicKey], heartbeatSeconds: 0.2 });
      assert.deepEqual(report.failures, []);
      assert.equal(report.ok, true);
      assert.equal(report.counts.runs, 2);
    } finally {
      source.close();
    }
  });
});
