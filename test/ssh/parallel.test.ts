/**
 * Twenty sessions at once through one gate, with mixed traffic: bulk output, a bulk upload, stderr and
 * exit codes, and interactive shells with a PTY. Every client gets exactly what it would get directly,
 * every session is in the log whole (its bytes equal to what the client saw or sent), and the offline
 * verifier accepts the log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { dataText, startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import type { SshResult } from '../helpers/ssh-client.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const SESSIONS = 20;
const provider = new OpenSslProvider();
const sha256 = (b: Uint8Array) => Buffer.from(provider.digest('sha256', b)).toString('hex');

/** One client's job: what it runs, what it sends, and how its result and its records are checked. */
interface Job {
  readonly command: string;
  readonly input?: Buffer;
  readonly pty?: boolean;
  check(result: SshResult): void;
  checkRecords(recs: readonly Rec[], result: SshResult): void;
}

const seqText = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');

function jobFor(i: number): Job {
  switch (i % 4) {
    case 0: {
      const n = 20_000 + i;
      return {
        command: `seq 1 ${n}`,
        check: (r) => {
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.toString(), seqText(n));
        },
        checkRecords: (recs, r) => assert.equal(dataText(recs, 'DATA_OUT'), r.stdout.toString()),
      };
    }
    case 1: {
      const input = Buffer.from(provider.randomBytes(2 * 1024 * 1024 + i));
      return {
        command: `sha256sum # upload ${i}`,
        input,
        check: (r) => {
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.toString(), `${sha256(input)}  -\n`);
        },
        checkRecords: (recs) => {
          const sent = Buffer.concat(
            recs.filter((x) => x.type === 'DATA_IN').map((x) => x.payload.data ?? new Uint8Array(0)),
          );
          assert.equal(sha256(sent), sha256(input), 'the upload is in the log, byte for byte');
        },
      };
    }
    case 2: {
      const code = (i % 7) + 1;
      return {
        command: `echo out-${i}; echo err-${i} >&2; exit ${code}`,
        check: (r) => {
          assert.equal(r.code, code);
          assert.equal(r.stdout.toString(), `out-${i}\n`);
          assert.match(r.stderr, new RegExp(`^err-${i}$`, 'm'));
        },
        checkRecords: (recs) => {
          assert.equal(dataText(recs, 'DATA_OUT'), `out-${i}\n`);
          assert.equal(dataText(recs, 'DATA_ERR'), `err-${i}\n`);
          assert.ok(recs.some((x) => x.type === 'EXIT_STATUS' && x.payload.code === code));
        },
      };
    }
    default:
      return {
        command: '', // an interactive shell
        pty: true,
        input: Buffer.from(`echo marker-$((${i} * 3))\nexit\n`),
        check: (r) => {
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout.toString(), new RegExp(`marker-${i * 3}`));
        },
        checkRecords: (recs, r) => {
          assert.ok(recs.some((x) => x.type === 'SHELL'));
          assert.ok(recs.some((x) => x.type === 'PTY_REQ'));
          assert.match(dataText(recs, 'DATA_IN'), /echo marker-/);
          assert.equal(dataText(recs, 'DATA_OUT'), r.stdout.toString());
        },
      };
  }
}

describe(`${SESSIONS} parallel sessions with mixed traffic`, () => {
  let sshd: Sshd;
  let fx: GateFixture;
  before(async () => {
    // sshd drops unauthenticated connections beyond MaxStartups (default 10:30:100); the gate opens one
    // upstream connection per session, so a target behind a busy gate needs a higher limit.
    sshd = await startSshd({ extraConfig: ['MaxStartups 100'] });
    fx = await startGateFixture({ sshd, limits: { upstreamTimeoutMs: 60_000 } });
  });
  after(async () => {
    await fx?.close();
    await sshd?.stop();
  });

  it('each client gets its own output, each session is recorded whole, the log verifies', async () => {
    const jobs = Array.from({ length: SESSIONS }, (_, i) => jobFor(i));
    const results = await Promise.all(
      jobs.map((job) =>
        fx.ssh('ops+local', job.command ? [job.command] : [], {
          ...(job.input ? { input: job.input } : {}),
          ...(job.pty ? { extra: ['-tt'] } : {}),
          timeoutMs: 120_000,
        }),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r.timedOut, false, `session ${i} timed out`);
      jobs[i]!.check(r);
    });

    const recs = await fx.recordsAfterSessions(SESSIONS, 30_000);
    const sessions = new Map<string, Rec[]>();
    for (const r of recs) if (r.session) sessions.set(r.session, [...(sessions.get(r.session) ?? []), r]);
    assert.equal(sessions.size, SESSIONS);
    for (const s of sessions.values()) {
      assert.equal(s[0]?.type, 'SESSION_START');
      assert.equal(s.at(-1)?.type, 'SESSION_END');
      assert.equal(s.at(-1)?.final, true);
    }

    // Match each session to its client by the command it ran (shells by the marker they typed).
    const matched = new Set<string>();
    jobs.forEach((job, i) => {
      const candidates = [...sessions.entries()].filter(([id, s]) => {
        if (matched.has(id)) return false;
        if (job.command) return s.some((x) => x.type === 'EXEC' && x.payload.command === job.command);
        return dataText(s, 'DATA_IN').includes(`marker-$((${i} * 3))`);
      });
      assert.equal(candidates.length, 1, `session ${i} (${job.command || 'shell'}) is in the log once`);
      const [id, s] = candidates[0]!;
      matched.add(id);
      job.checkRecords(s, results[i]!);
    });

    const report = await fx.verify();
    const shown = report.failures.slice(0, 5).map((f) => `${f.code} at ${f.location}: ${f.message}`);
    assert.ok(report.ok, `verifyLog failed:\n${shown.join('\n')}`);
    assert.ok(report.counts.segments >= SESSIONS);
  });
});
