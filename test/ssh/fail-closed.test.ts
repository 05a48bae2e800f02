/**
 * Fail-closed recording, with the failure injected into the SealedLog (the same path a store I/O error
 * takes: the log fails, refuses every later append, and calls onFailure). The session is cut within 1 s,
 * nothing typed after the failure reaches the target, and an ALERT is in the operational log. A fail-open
 * target keeps relaying, unrecorded, and says so loudly.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { SealedLog } from '../../src/seal/log.js';
import { dataText, openStore, ORIGIN, startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

/** Fails the log as a store error would (SealedLog's private fail(): onFailure, then LOG_FAILED). */
function failLog(log: SealedLog, message: string): void {
  (log as unknown as { fail(err: Error): void }).fail(new Error(message));
}

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

for (const mode of ['fail-closed', 'fail-open'] as const) {
  describe(`recording failure, target ${mode}`, () => {
    let sshd: Sshd;
    let fx: GateFixture;
    let file: string;
    before(async () => {
      sshd = await startSshd();
      fx = await startGateFixture({
        sshd,
        configure: (c) => {
          c.targets[0]!.on_record_failure = mode;
        },
      });
      file = `/home/${sshd.user}/sealgate-${mode}-${process.pid}`;
    });
    after(async () => {
      await fx?.close();
      await sshd?.stop();
      rmSync(file, { force: true });
    });

    it(
      mode === 'fail-closed'
        ? 'cuts the session within 1 s; nothing typed after the failure passes'
        : 'keeps relaying, unrecorded, and logs it',
      async () => {
        const child = spawn('ssh', [...fx.sshOptions(), 'ops+local@127.0.0.1', `cat > ${file}`], {
          stdio: ['pipe', 'ignore', 'pipe'],
        });
        child.stdin.on('error', () => undefined);
        const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
        try {
          child.stdin.write('before the failure\n');
          await waitFor(() => read(file) === 'before the failure\n');

          const failedAt = Date.now();
          failLog(fx.log, 'injected: no space left on device');
          child.stdin.write('after the failure\n');

          if (mode === 'fail-closed') {
            const code = await Promise.race([
              exited,
              new Promise((r) => setTimeout(() => r('still running'), 1_000).unref()),
            ]);
            assert.notEqual(code, 'still running', 'the session was not cut within 1 s');
            assert.ok(Date.now() - failedAt < 1_000);
            await new Promise((r) => setTimeout(r, 300));
            assert.equal(read(file), 'before the failure\n');
            assert.ok(fx.opsLog.some((l) => l.alert === 'recording.failed' && l.level === 'error'));
            // New sessions to a fail-closed target are refused while the log is down.
            const again = await fx.ssh('ops+local', ['echo should-not-run']);
            assert.equal(again.code, 255);
            assert.equal(again.stdout.toString(), '');
            assert.match(
              again.stderr,
              /sealgate: session recording is unavailable; refusing \(fail-closed\)/,
            );
          } else {
            await waitFor(() => read(file) === 'before the failure\nafter the failure\n');
            child.stdin.end();
            assert.equal(await exited, 0);
            assert.ok(fx.opsLog.some((l) => l.alert === 'recording.failed-open'));
            assert.ok(fx.opsLog.some((l) => /is fail-open/.test(String(l.message))));
          }
        } finally {
          child.kill('SIGKILL');
        }
      },
    );
  });
}

/**
 * The same rule with a real failure: the gate's store lives on a small tmpfs that fills up mid-session,
 * with each `forward_input` setting.
 * ENOSPC fails the store; the session is cut within 1 s of it; no line written after it reaches the
 * target; the ALERT is in the operational log. After the operator frees space, the next start recovers
 * the log, which then verifies, with the session's start and its bytes up to the failure.
 */
for (const forwardInput of ['when-sealed', 'when-durable'] as const) {
  describe(`recording failure from a real full disk (tmpfs), fail-closed, forward_input ${forwardInput}`, () => {
    let sshd: Sshd;
    let fx: GateFixture | undefined;
    let mnt: string;
    let mounted = false;
    let file: string;
    before(async () => {
      sshd = await startSshd();
      mnt = mkdtempSync(join(tmpdir(), 'sealgate-gate-tmpfs-'));
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', mnt], {
        encoding: 'utf8',
      });
      mounted = m.status === 0;
      file = `/home/${sshd.user}/sealgate-tmpfs-${forwardInput}-${process.pid}`;
    });
    after(async () => {
      await fx?.close().catch(() => undefined);
      await sshd?.stop();
      if (mounted) spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
      rmSync(file, { force: true });
    });

    it('ENOSPC cuts the session within 1 s; nothing written after it passes; the log recovers and verifies', async (t) => {
      // The tests run as root (they start sshd); a machine that cannot mount a tmpfs cannot run this one.
      if (!mounted) return t.skip('cannot mount a tmpfs here (needs root)');
      const store = join(mnt, 'store');
      let failedAt = 0;
      const gate = await startGateFixture({
        sshd,
        configure: (c) => {
          (c as unknown as { recording: { store: string } }).recording.store = store;
          c.targets[0]!.forward_input = forwardInput;
        },
        onLogFailure: () => (failedAt ||= Date.now()),
      });
      fx = gate;

      const child = spawn('ssh', [...gate.sshOptions(), 'ops+local@127.0.0.1', `cat > ${file}`], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      child.stdin.on('error', () => undefined);
      let exitedAt = 0;
      const exited = new Promise<number | null>((resolve) =>
        child.on('close', (code) => {
          exitedAt = Date.now();
          resolve(code);
        }),
      );
      // Numbered 1 KiB lines, each with the time it was written, until the gate hangs up.
      const writtenAt: number[] = [];
      const line = (n: number) => `${String(n).padStart(8, '0')} ${'x'.repeat(1014)}\n`;
      try {
        for (let n = 0; !exitedAt && n < 20_000; n++) {
          writtenAt.push(Date.now());
          child.stdin.write(line(n));
          await new Promise((r) => setTimeout(r, 2));
        }
        await exited;
      } finally {
        child.kill('SIGKILL');
      }
      assert.ok(failedAt > 0, 'the store failed');
      assert.ok(exitedAt - failedAt < 1_000, `cut ${exitedAt - failedAt} ms after the store failed`);

      const received = read(file);
      const lines = received.split('\n').filter(Boolean);
      assert.ok(lines.length > 0, 'some lines passed before the disk was full');
      lines.forEach((l, i) => assert.equal(`${l}\n`, line(i), `line ${i} arrived intact and in order`));
      const lateLines = lines.filter((_, i) => writtenAt[i]! > failedAt);
      assert.deepEqual(lateLines.length, 0, `${lateLines.length} lines written after the failure passed`);

      const alert = gate.opsLog.find((l) => l.alert === 'recording.failed' && l.level === 'error');
      assert.ok(alert, 'an ALERT is in the operational log');
      assert.match(String(alert.error), /STORE_FAILED|no space|ENOSPC/i);

      // The operator frees space; the next start recovers the log, and it verifies.
      await gate.close();
      fx = undefined;
      const grown = spawnSync('mount', ['-o', 'remount,size=8m', mnt], { encoding: 'utf8' });
      assert.equal(grown.status, 0, grown.stderr);
      const reopened = await SealedLog.open({
        provider: gate.provider,
        dir: store,
        origin: ORIGIN,
        recipients: [gate.recipient.publicKey],
        signingKey: gate.signer,
      });
      await reopened.close('test done');
      const recs = await openStore(gate.provider, store, gate.recipient);
      assert.ok(recs.some((r) => r.type === 'SESSION_START'));
      assert.ok(recs.some((r) => r.type === 'CRASH_RECOVERY'));
      const logged = dataText(recs, 'DATA_IN');
      // when-durable: every line at the target is in the log. when-sealed: all but at most the last
      // group-commit batch (64 records), which had passed when its write hit ENOSPC (SECURITY.md).
      const loggedLines = new Set(logged.split('\n'));
      const unlogged = lines.filter((l) => !loggedLines.has(l));
      const allowed = forwardInput === 'when-durable' ? 0 : 64;
      assert.ok(unlogged.length <= allowed, `${unlogged.length} lines passed but are not in the log`);
      assert.deepEqual(unlogged, lines.slice(lines.length - unlogged.length), 'only a tail is missing');
      const source = storeSource(store);
      try {
        const report = verifyLog(gate.provider, source, { trustedSigners: [gate.signer.publicKey] });
        const shown = report.failures.slice(0, 5).map((f) => `${f.code} at ${f.location}: ${f.message}`);
        assert.ok(report.ok, `verifyLog failed:\n${shown.join('\n')}`);
      } finally {
        source.close();
      }
      // The bytes that passed and the bytes in the log: group commit (FORMAT.md §6) may lose the last
      // batch written before the disk filled, which had already passed.
      t.diagnostic(
        `${lines.length} lines passed, ${unlogged.length} of them not in the recovered log; ` +
          `${logged.length} bytes of input in the log, ` +
          `${received.length} at the target; cut ${exitedAt - failedAt} ms after the failure`,
      );
    });
  });
}

/** A fresh tmpfs of `size` (mount(8) syntax) in a temporary directory; undefined if it cannot be mounted. */
function mountTmpfs(size: string): { dir: string; grow(size: string): void; remove(): void } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-bulk-tmpfs-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], {
    encoding: 'utf8',
  });
  if (m.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    grow(to: string) {
      const r = spawnSync('mount', ['-o', `remount,size=${to}`, dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    },
    remove() {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Bytes of the data records of `type`, all sessions. */
const dataBytes = (recs: readonly { type: string; payload: { data?: Uint8Array } }[], type: string) =>
  recs.filter((r) => r.type === type).reduce((n, r) => n + (r.payload.data?.length ?? 0), 0);

/**
 * The unlogged window (SECURITY.md): the disk fills during a bulk transfer, at full speed, through the
 * gate. Without a cap, the client had received megabytes that were not in the recovered log (group
 * commit: 64 records of 32 KiB, or 50 ms, per fsync). With `recording.max_unlogged_bytes`, the bytes
 * that passed but are not in the log are at most the cap, in either direction; the session is cut
 * (fail-closed) with an ALERT, and the recovered log verifies. The group commit here is long (1024
 * records or 1 s), so that without the cap far more than the cap would pass unlogged (the window's
 * early fsync keeps the transfer going meanwhile).
 */
describe('full disk during a bulk transfer (tmpfs): what passed but is not in the log is within max_unlogged_bytes', () => {
  const CAP = 256 * 1024;
  const TOTAL = 200_000_000; // far more than the 8 MiB store can hold
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.stop();
  });

  for (const direction of ['output', 'input'] as const) {
    it(`${direction}: bytes passed and not in the recovered log ≤ ${CAP}; cut with an ALERT; the log verifies`, async (t) => {
      const disk = mountTmpfs('8m');
      if (!disk) return t.skip('cannot mount a tmpfs here (needs root)');
      const file = `/home/${sshd.user}/sealgate-bulk-${direction}-${process.pid}`;
      const store = join(disk.dir, 'store');
      try {
        let failedAt = 0;
        const gate = await startGateFixture({
          sshd,
          configure: (c) => {
            const recording = (c as unknown as { recording: Record<string, unknown> }).recording;
            recording.store = store;
            recording.max_unlogged_bytes = CAP;
          },
          logPolicy: { fsyncEveryEntries: 1024, fsyncEveryMs: 1_000 },
          onLogFailure: () => (failedAt ||= Date.now()),
        });
        let received = 0;
        let exitedAt = 0;
        let code: number | null = null;
        try {
          const command = direction === 'output' ? `head -c ${TOTAL} /dev/zero` : `cat > ${file}`;
          const ssh = spawn('ssh', [...gate.sshOptions(), 'ops+local@127.0.0.1', command], {
            stdio: [direction === 'input' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
          });
          ssh.stdout!.on('data', (b: Buffer) => (received += b.length));
          const feeder =
            direction === 'input' ? spawn('head', ['-c', String(TOTAL), '/dev/zero']) : undefined;
          if (feeder) {
            ssh.stdin!.on('error', () => undefined);
            feeder.stdout.pipe(ssh.stdin!);
          }
          const timer = setTimeout(() => ssh.kill('SIGKILL'), 60_000);
          code = await new Promise<number | null>((resolve) => ssh.on('close', (c) => resolve(c)));
          exitedAt = Date.now();
          clearTimeout(timer);
          feeder?.kill('SIGKILL');
          if (direction === 'input') {
            // What the target received: the file, once the target's `cat` has written all it read.
            let size = -1;
            for (let stable = 0; stable < 5;) {
              await new Promise((r) => setTimeout(r, 100));
              const now = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
              stable = now === size ? stable + 1 : 0;
              size = now;
            }
            received = size;
          }
          assert.ok(failedAt > 0, 'the store failed (the disk filled)');
          assert.notEqual(code, 0, 'the session did not end normally');
          assert.ok(received < TOTAL, 'the transfer was cut short');
          assert.ok(exitedAt - failedAt < 1_000, `cut ${exitedAt - failedAt} ms after the store failed`);
          const alert = gate.opsLog.find((l) => l.alert === 'recording.failed' && l.level === 'error');
          assert.ok(alert, 'an ALERT is in the operational log');
          assert.match(String(alert.error), /STORE_FAILED|no space|ENOSPC/i);
        } finally {
          await gate.close().catch(() => undefined);
        }

        // The operator frees space; the next start recovers the log.
        disk.grow('64m');
        const reopened = await SealedLog.open({
          provider: gate.provider,
          dir: store,
          origin: ORIGIN,
          recipients: [gate.recipient.publicKey],
          signingKey: gate.signer,
        });
        await reopened.close('test done');
        const recs = await openStore(gate.provider, store, gate.recipient);
        assert.ok(recs.some((r) => r.type === 'CRASH_RECOVERY'));
        const logged = dataBytes(recs, direction === 'output' ? 'DATA_OUT' : 'DATA_IN');
        const unlogged = Math.max(0, received - logged);
        t.diagnostic(
          `${direction}: ${received} bytes passed, ${logged} in the recovered log, ${unlogged} passed ` +
            `but not logged (cap ${CAP}); cut ${exitedAt - failedAt} ms after the failure`,
        );
        assert.ok(received > 1_000_000, `only ${received} bytes passed: the transfer did not get going`);
        assert.ok(unlogged <= CAP, `${unlogged} bytes passed but are not in the log (cap ${CAP})`);
        const source = storeSource(store);
        try {
          const report = verifyLog(gate.provider, source, { trustedSigners: [gate.signer.publicKey] });
          const shown = report.failures.slice(0, 5).map((f) => `${f.code} at ${f.location}: ${f.message}`);
          assert.ok(report.ok, `verifyLog failed:\n${shown.join('\n')}`);
        } finally {
          source.close();
        }
      } finally {
        disk.remove();
        rmSync(file, { force: true });
      }
    });
  }
});
