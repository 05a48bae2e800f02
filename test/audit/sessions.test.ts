/**
 * The pure parts of `sessions` and `commands`: the session summarizer over record sequences as the
 * gate writes them (an exec, a shell killed by a signal, a session a crash cut), and the filters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OpenedEntry, OpenedRecord } from '../../src/audit/decrypt.js';
import { AuditError } from '../../src/audit/errors.js';
import type { CommandLine } from '../../src/audit/index/format.js';
import {
  commandMatches,
  grepPattern,
  parseTime,
  sessionMatches,
  sessionPrefix,
} from '../../src/audit/query.js';
import { SessionSummarizer } from '../../src/audit/sessions.js';
import type { RecordTypeName } from '../../src/seal/format/types.js';

const T0 = 1_767_000_000_000_000n; // µs
let index = 0;
function rec(session: string, type: RecordTypeName, payload: Record<string, unknown>, dt = 0): OpenedRecord {
  index++;
  return {
    kind: 'record',
    index,
    session,
    segment: `${session}-seg`,
    seq: 0,
    type,
    final: type === 'SESSION_END',
    timeUs: T0 + BigInt(dt) * 1_000_000n,
    payload,
  };
}
const data = (session: string, type: RecordTypeName, text: string, dt = 0): OpenedRecord =>
  rec(session, type, { channel: 0, data: new TextEncoder().encode(text) }, dt);
const start = (session: string, gateUser: string, target: string): OpenedRecord =>
  rec(session, 'SESSION_START', {
    user: 'deploy',
    target,
    client: '192.0.2.1:5000',
    gate_user: gateUser,
    target_host: 'h',
    target_port: 22,
  });

describe('SessionSummarizer', () => {
  it('summarizes an exec session: who, where, exit status, bytes in and out, provenance', () => {
    const s = new SessionSummarizer();
    s.segment({
      index: 0,
      segment: 'a-seg',
      session: 'a',
      createdUs: T0,
      provenance: { fips: true, backend: 'openssl' },
    });
    for (const r of [
      start('a', 'alice', 'db1'),
      rec('a', 'CHANNEL_OPEN', { channel: 0, type: 'session' }),
      rec('a', 'EXEC', { channel: 0, command: 'uptime' }),
      data('a', 'DATA_IN', 'abc'),
      data('a', 'DATA_OUT', 'hello\n', 1),
      data('a', 'DATA_ERR', 'oops\n', 1),
      rec('a', 'EXIT_STATUS', { channel: 0, code: 2 }, 2),
      rec('a', 'SESSION_END', { reason: 'closed' }, 3),
    ])
      s.push(r);
    s.countCommands('a', 1);
    const [row] = s.rows();
    assert.ok(row);
    assert.equal(row.gate_user, 'alice');
    assert.equal(row.target, 'db1');
    assert.equal(row.login, 'deploy');
    assert.equal(row.exit_status, 2);
    assert.equal(row.bytes_in, 3);
    assert.equal(row.bytes_out, 11);
    assert.equal(row.state, 'ended');
    assert.equal(row.end_reason, 'closed');
    assert.equal(row.duration_s, 3);
    assert.equal(row.commands, 1);
    assert.equal(row.fips, true);
    assert.deepEqual(row.channels, [{ channel: 0, request: 'exec', command: 'uptime', exit_status: 2 }]);
    assert.ok(s.isDone('a'));
  });

  it('a shell killed by a signal; a non-FIPS segment makes the session non-FIPS', () => {
    const s = new SessionSummarizer();
    s.segment({
      index: 0,
      segment: 'b1',
      session: 'b',
      createdUs: T0,
      provenance: { fips: true, backend: 'openssl' },
    });
    s.segment({
      index: 5,
      segment: 'b2',
      session: 'b',
      prevSegment: 'b1',
      createdUs: T0,
      provenance: { fips: false, backend: 'openssl' },
    });
    s.push(start('b', 'bob', 'web'));
    s.push(rec('b', 'PTY_REQ', { channel: 0, term: 'xterm', cols: 80, rows: 24 }));
    s.push(rec('b', 'SHELL', { channel: 0 }));
    s.push(rec('b', 'EXIT_SIGNAL', { channel: 0, signal: 'KILL', core_dumped: false, message: '' }));
    const [row] = s.rows();
    assert.equal(row?.exit_signal, 'KILL');
    assert.equal(row?.exit_status, null);
    assert.equal(row?.fips, false);
    assert.equal(row?.provenance.length, 2);
    assert.equal(row?.segments, 2);
    assert.equal(row?.channels[0]?.pty, true);
    assert.equal(row?.state, 'open');
    assert.ok(!s.isDone('b'));
  });

  it('a session with no SESSION_END stays open; a CRASH_RECOVERY naming its segment marks it crashed', () => {
    const s = new SessionSummarizer();
    s.segment({
      index: 0,
      segment: 'c-seg',
      session: 'c',
      createdUs: T0,
      provenance: { fips: false, backend: 'openssl' },
    });
    s.push(start('c', 'carol', 'db1'));
    s.push(data('c', 'DATA_OUT', 'x', 5));
    const row = s.get('c');
    assert.equal(row?.state, 'open');
    assert.equal(row?.end, null);
    assert.equal(row?.duration_s, 5);
    const recovery: OpenedEntry = {
      kind: 'system',
      index: 99,
      type: 'CRASH_RECOVERY',
      timeUs: T0,
      body: { open_segments: [{ segment_id: 'c-seg', last_seq: 1 }] },
    };
    s.push(recovery);
    assert.equal(s.get('c')?.crashed, true);
    assert.ok(s.isDone('c'));
  });
});

describe('filters', () => {
  const now = new Date('2026-06-10T12:00:00Z');
  it('parses ISO 8601 dates and times and relative spans', () => {
    assert.equal(parseTime('2026-06-01', '--since', now), '2026-06-01T00:00:00.000000Z');
    assert.equal(parseTime('2026-06-01T10:30', '--since', now), '2026-06-01T10:30:00.000000Z');
    assert.equal(parseTime('2026-06-01T10:30:00+02:00', '--since', now), '2026-06-01T08:30:00.000000Z');
    assert.equal(parseTime('24h', '--since', now), '2026-06-09T12:00:00.000000Z');
    assert.equal(parseTime('7d', '--since', now), '2026-06-03T12:00:00.000000Z');
    assert.equal(parseTime('30m', '--since', now), '2026-06-10T11:30:00.000000Z');
    for (const bad of ['yesterday', '7 days ago', '2026-13-45', '']) {
      assert.throws(
        () => parseTime(bad, '--since', now),
        (e: unknown) => e instanceof AuditError && e.code === 'QUERY_INVALID',
        bad,
      );
    }
  });

  it('a session matches a window it was active in; commands match by their own time', () => {
    const s = new SessionSummarizer();
    s.push(start('d', 'dave', 'web'));
    s.push(rec('d', 'SESSION_END', { reason: 'closed' }, 3600));
    const row = s.get('d')!;
    assert.ok(sessionMatches(row, { since: row.start }));
    assert.ok(sessionMatches(row, { until: row.start }));
    assert.ok(!sessionMatches(row, { since: '2099-01-01T00:00:00.000000Z' }));
    assert.ok(!sessionMatches(row, { until: '2000-01-01T00:00:00.000000Z' }));
    assert.ok(sessionMatches(row, { user: 'dave', target: 'web', session: 'd' }));
    assert.ok(!sessionMatches(row, { user: 'Dave' }));
    const c: CommandLine = {
      session: 'abc',
      gate_user: 'dave',
      target: 'web',
      channel: 0,
      index: 1,
      time: '2026-06-09T00:00:00.000000Z',
      derivation: 'exec',
      text: 'kubectl delete pod x',
      confident: true,
    };
    assert.ok(
      commandMatches(c, { grep: grepPattern('kubectl delete', false), since: '2026-06-03T12:00:00.000000Z' }),
    );
    assert.ok(!commandMatches(c, { grep: grepPattern('KUBECTL', false) }));
    assert.ok(commandMatches(c, { grep: grepPattern('KUBECTL', true) }));
    assert.ok(!commandMatches(c, { until: '2026-06-01T00:00:00.000000Z' }));
    assert.ok(!commandMatches(c, { session: 'abd' }));
    assert.throws(() => grepPattern('(', false), /--grep/);
    assert.equal(sessionPrefix('ABC'), 'abc');
    assert.throws(() => sessionPrefix('xyz'), /not a session id/);
  });
});
