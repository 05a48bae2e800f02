/**
 * Fail-closed recording, with the failure injected into the SealedLog (the same path a store I/O error
 * takes: the log fails, refuses every later append, and calls onFailure). The session is cut within 1 s,
 * nothing typed after the failure reaches the target, and an ALERT is in the operational log. A fail-open
 * target keeps relaying, unrecorded, and says so loudly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { SealedLog } from '../../src/seal/log.js';
import { startGateFixture, type GateFixture } from '../helpers/gate-fixture.js';
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
