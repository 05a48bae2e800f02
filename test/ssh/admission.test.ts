/**
 * The pre-authentication admission rules (src/ssh/admission.ts) and source blocks
 * (src/ssh/source-address.ts), driven with a fake clock and random source.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import winston from 'winston';
import {
  Admission,
  defaultMaxWaiting,
  MAX_PENALTY_BLOCKS,
  maxWaitingProblem,
  parseMaxStartups,
  type AdmissionPolicy,
} from '../../src/ssh/admission.js';
import { MAX_SUPPRESSED_KEYS, RefusalLog } from '../../src/ssh/listener.js';
import { AddressList, isAddressOrBlock, sourceBlock } from '../../src/ssh/source-address.js';

function policy(over: Partial<AdmissionPolicy> = {}, exempt: string[] = []): AdmissionPolicy {
  return {
    maxConnections: 1000,
    maxStartups: { start: 10, rate: 30, full: 100 },
    perSourceMaxStartups: 1000,
    perSourceMaxConnections: 1000,
    maxWaiting: 1000,
    netBlockSize: { v4: 32, v6: 128 },
    penalties: {
      enabled: true,
      authfailSeconds: 5,
      noauthSeconds: 1,
      graceExceededSeconds: 20,
      minSeconds: 15,
      maxSeconds: 600,
      exempt: new AddressList(exempt),
    },
    ...over,
  };
}

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('admission: max_startups (random early drop)', () => {
  it('admits below start, drops with rate% at start rising to 100% at full', () => {
    let r = 0;
    const a = new Admission(policy({ perSourceMaxStartups: 1000 }), { random: () => r });
    for (let i = 0; i < 10; i++) assert.equal(a.admit(`10.0.0.${i}`).ok, true);
    // 10 startups: p = 30%. A draw of 0.29 (29 < 30) drops; 0.30 does not.
    r = 0.29;
    const dropped = a.admit('10.0.1.1');
    assert.equal(dropped.ok, false);
    assert.equal(!dropped.ok && dropped.reason, 'max-startups');
    r = 0.3;
    assert.equal(a.admit('10.0.1.2').ok, true);
    // 11 startups: p = 30 + 70 * 1/90 ≈ 30.8%.
    r = 0.305;
    assert.equal(a.admit('10.0.1.3').ok, false);
    r = 0.31;
    assert.equal(a.admit('10.0.1.4').ok, true);
  });

  it('drops every new one at full, and admits again once connections authenticate', () => {
    const a = new Admission(policy({ maxStartups: { start: 3, rate: 30, full: 5 } }), { random: () => 0.99 });
    const tickets = [];
    for (let i = 0; i < 5; i++) {
      const d = a.admit(`10.0.0.${i}`);
      assert.equal(d.ok, true, `connection ${i}`);
      if (d.ok) tickets.push(d.ticket);
    }
    const full = a.admit('10.0.0.9');
    assert.equal(!full.ok && full.reason, 'max-startups');
    tickets[0]!.authenticated();
    tickets[1]!.closed('noauth');
    assert.equal(a.stats().startups, 3);
    assert.equal(a.admit('10.0.0.9').ok, true, 'room again below full');
    assert.equal(a.stats().connections, 5);
  });

  it('parses start:rate:full and refuses impossible orders', () => {
    assert.deepEqual(parseMaxStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
    assert.deepEqual(parseMaxStartups('20'), { start: 20, rate: 100, full: 20 });
    assert.match(String(parseMaxStartups('10:30:5')), /full \(5\) must not be less than start \(10\)/);
    assert.match(String(parseMaxStartups('10:0:100')), /rate must be a percentage/);
    assert.match(String(parseMaxStartups('0:30:100')), /start must be at least 1/);
  });
});

describe('admission: per-source caps and the connection cap', () => {
  it('lets a source hold perSourceMaxStartups handshakes; the next ones wait, in order, for a free slot', () => {
    const a = new Admission(policy({ perSourceMaxStartups: 2 }));
    const started: string[] = [];
    const admit = (name: string, address = '192.0.2.1') => {
      const d = a.admit(address);
      assert.ok(d.ok, name);
      d.ticket.whenStarted(() => started.push(name));
      return d;
    };
    const one = admit('one');
    const two = admit('two');
    const three = admit('three');
    const four = admit('four');
    const five = admit('five');
    assert.equal(one.waiting || two.waiting, false);
    assert.equal(three.waiting && four.waiting && five.waiting, true);
    assert.deepEqual(started, ['one', 'two']);
    assert.equal(admit('other source', '192.0.2.2').waiting, false, 'another source is not affected');
    assert.deepEqual(
      { startups: a.stats().startups, waiting: a.stats().waiting },
      { startups: 3, waiting: 3 },
    );
    one.ticket.authenticated();
    assert.deepEqual(started, ['one', 'two', 'other source', 'three'], 'an authenticated one frees its slot');
    four.ticket.closed('noauth'); // gave up while waiting: leaves the queue
    two.ticket.closed('authfail');
    assert.deepEqual(started.slice(4), ['five']);
    assert.deepEqual(
      { startups: a.stats().startups, waiting: a.stats().waiting },
      { startups: 3, waiting: 0 },
    );
    // A waiting connection counts for the per-source connection cap and is penalised like any other.
    assert.equal(a.stats().penalties.noauth, 1);
  });

  it('waiting connections never count as startups, so one source never starts random early drop', () => {
    const a = new Admission(policy({ perSourceMaxStartups: 5 }), { random: () => 0 });
    for (let i = 0; i < 500; i++) assert.ok(a.admit('198.51.100.9').ok, `connection ${i}`);
    assert.equal(a.stats().startups, 5);
    assert.equal(a.admit('198.51.100.10').ok, true, 'below start (10): never dropped');
  });

  it('caps the waiting connections of all sources together at maxWaiting; starting ones are not affected', () => {
    const a = new Admission(policy({ perSourceMaxStartups: 1, maxWaiting: 3 }));
    // Each source holds its one slot and queues one more: three sources fill the queue.
    for (let i = 1; i <= 3; i++) {
      assert.equal(a.admit(`192.0.2.${i}`).ok, true);
      const queued = a.admit(`192.0.2.${i}`);
      assert.ok(queued.ok && queued.waiting, `source ${i} waits`);
    }
    const fourth = a.admit('192.0.2.1');
    assert.equal(!fourth.ok && fourth.reason, 'max-waiting');
    assert.match(!fourth.ok ? fourth.detail : '', /3 connections wait for a startup slot, the limit is 3/);
    const fresh = a.admit('192.0.2.9');
    assert.ok(fresh.ok && !fresh.waiting, 'a fresh source starts at once');
    assert.deepEqual(
      { waiting: a.stats().waiting, refused: a.stats().refused['max-waiting'] },
      { waiting: 3, refused: 1 },
    );
    // sshd's behaviour (refuse beyond the per-source slots) is maxWaiting 0.
    const none = new Admission(policy({ perSourceMaxStartups: 1, maxWaiting: 0 }));
    assert.equal(none.admit('192.0.2.1').ok, true);
    const refused = none.admit('192.0.2.1');
    assert.equal(!refused.ok && refused.reason, 'max-waiting');
  });

  it('maxWaiting defaults to a quarter of maxConnections, at most 1,000, and may not exceed half', () => {
    assert.equal(defaultMaxWaiting(85), 21);
    assert.equal(defaultMaxWaiting(400), 100);
    assert.equal(defaultMaxWaiting(500_000), 1000);
    assert.equal(maxWaitingProblem(200, 400, 'configured'), undefined);
    assert.match(
      String(maxWaitingProblem(201, 400, 'configured')),
      /more than half of max_connections \(400/,
    );
  });

  it('caps all connections per source, and all connections at maxConnections', () => {
    const a = new Admission(policy({ perSourceMaxConnections: 2, maxConnections: 3 }));
    for (let i = 0; i < 2; i++) {
      const d = a.admit('192.0.2.1');
      assert.ok(d.ok);
      d.ticket.authenticated();
    }
    const over = a.admit('192.0.2.1');
    assert.equal(!over.ok && over.reason, 'per-source-connections');
    assert.equal(a.admit('192.0.2.2').ok, true);
    const full = a.admit('192.0.2.3');
    assert.equal(!full.ok && full.reason, 'max-connections');
    assert.deepEqual(
      { ...a.stats().refused },
      {
        'max-connections': 1,
        penalty: 0,
        'per-source-connections': 1,
        'max-waiting': 0,
        'max-startups': 0,
      },
    );
  });

  it('groups sources by net block size, and reads IPv4-mapped IPv6 as IPv4', () => {
    const a = new Admission(policy({ perSourceMaxConnections: 1, netBlockSize: { v4: 24, v6: 64 } }));
    assert.equal(a.admit('198.51.100.7').ok, true);
    const sameBlock = a.admit('::ffff:198.51.100.200');
    assert.equal(!sameBlock.ok && sameBlock.block, '198.51.100.0/24');
    assert.equal(a.admit('2001:db8:1:2:3::4').ok, true);
    const v6 = a.admit('2001:db8:1:2:ffff::1');
    assert.equal(!v6.ok && v6.block, '2001:db8:1:2:0:0:0:0/64');
    assert.equal(sourceBlock('2001:db8::1', { v4: 32, v6: 128 }), '2001:db8:0:0:0:0:0:1/128');
    assert.equal(sourceBlock('::1', { v4: 32, v6: 128 }), '0:0:0:0:0:0:0:1/128');
  });
});

describe('admission: per-source penalties', () => {
  it('refuses a source once its penalties reach min, for as long as they add up to', () => {
    const c = clock();
    const a = new Admission(policy(), { now: c.now });
    const fail = () => {
      const d = a.admit('203.0.113.9');
      assert.ok(d.ok, 'admitted');
      d.ticket.closed('authfail');
    };
    fail(); // 5 s outstanding
    fail(); // 10 s
    assert.equal(a.admit('203.0.113.9').ok, true, 'below min: still admitted');
    // (that admitted connection stays open and uncounted for penalties)
    fail(); // 15 s: at min, refused from now on
    const refused = a.admit('203.0.113.9');
    assert.equal(!refused.ok && refused.reason, 'penalty');
    assert.match(!refused.ok ? refused.detail : '', /penalised for 15 s more/);
    assert.equal(a.admit('203.0.113.10').ok, true, 'another source is not affected');
    assert.equal(a.stats().penalisedBlocks, 1);
    c.advance(14_000);
    assert.equal(a.admit('203.0.113.9').ok, false, 'still serving');
    c.advance(1_001);
    assert.equal(a.admit('203.0.113.9').ok, true, 'served');
    assert.equal(a.stats().penalisedBlocks, 0);
  });

  it('grace-exceeded is heavier than noauth; max caps the sum; authenticated closes cost nothing', () => {
    const c = clock();
    const a = new Admission(policy({ penalties: { ...policy().penalties, maxSeconds: 30 } }), { now: c.now });
    const ok = a.admit('198.51.100.1');
    assert.ok(ok.ok);
    ok.ticket.authenticated();
    ok.ticket.closed('noauth'); // ignored: it authenticated
    assert.equal(a.stats().penalties.noauth, 0);
    const quiet = a.admit('198.51.100.1');
    assert.ok(quiet.ok);
    quiet.ticket.closed('noauth');
    assert.equal(a.admit('198.51.100.1').ok, true, '1 s is below min');
    // Three held at once, then all cut by the grace time: 60 s of penalties, capped at 30. One alone
    // (20 s) is already past min.
    const held = [0, 1, 2].map(() => a.admit('198.51.100.2'));
    for (const d of held) {
      assert.ok(d.ok);
      d.ticket.closed('grace-exceeded');
    }
    assert.equal(a.admit('198.51.100.2').ok, false);
    c.advance(30_001);
    assert.equal(a.admit('198.51.100.2').ok, true);
    assert.deepEqual({ ...a.stats().penalties }, { authfail: 0, 'grace-exceeded': 3, noauth: 1 });
  });

  it('never penalises an exempt source, and does nothing when disabled', () => {
    const a = new Admission(policy({}, ['10.1.0.0/16', '2001:db8::7']));
    for (let i = 0; i < 10; i++) {
      const d = a.admit(i % 2 ? '10.1.2.3' : '2001:db8::7');
      assert.ok(d.ok, `attempt ${i}`);
      d.ticket.closed('grace-exceeded');
    }
    const off = new Admission(policy({ penalties: { ...policy().penalties, enabled: false } }));
    for (let i = 0; i < 10; i++) {
      const d = off.admit('10.9.9.9');
      assert.ok(d.ok, `attempt ${i}`);
      d.ticket.closed('authfail');
    }
  });

  it('an exempt address is admitted while its block serves a penalty others earned', () => {
    const a = new Admission(policy({ netBlockSize: { v4: 24, v6: 64 } }, ['198.51.100.7']));
    for (let i = 0; i < 3; i++) {
      const d = a.admit('198.51.100.66');
      assert.ok(d.ok);
      d.ticket.closed('authfail'); // 15 s: the block is refused
    }
    const other = a.admit('198.51.100.66');
    assert.equal(!other.ok && other.reason, 'penalty');
    const exempt = a.admit('198.51.100.7');
    assert.ok(exempt.ok, 'exempt wins over the block penalty');
    assert.equal(exempt.block, '198.51.100.0/24');
  });

  it('a full penalty table drops the soonest-expiring entries, never a longer active penalty', () => {
    const c = clock();
    const a = new Admission(policy(), { now: c.now });
    const fail = (address: string, outcome: 'grace-exceeded' | 'noauth') => {
      const d = a.admit(address);
      assert.ok(d.ok, address);
      d.ticket.closed(outcome);
    };
    fail('203.0.113.1', 'grace-exceeded'); // 20 s, active: the oldest entry of the table
    c.advance(1);
    // A table's worth of other sources, each 1 s (noauth), penalised after it.
    for (let i = 0; i < MAX_PENALTY_BLOCKS; i++)
      fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'noauth');
    const still = a.admit('203.0.113.1');
    assert.equal(!still.ok && still.reason, 'penalty', 'the active penalty survived the overflow');
    assert.equal(a.stats().penalisedBlocks, 1);
  });

  it('closed() is idempotent', () => {
    const a = new Admission(policy());
    const d = a.admit('192.0.2.5');
    assert.ok(d.ok);
    d.ticket.closed('authfail');
    d.ticket.closed('authfail');
    assert.equal(a.stats().connections, 0);
    assert.equal(a.stats().penalties.authfail, 1);
  });
});

describe('refusal log', () => {
  it('counts at most MAX_SUPPRESSED_KEYS sources per window; the rest are summed per reason', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = winston.createLogger({
      format: winston.format.json(),
      transports: [
        new winston.transports.Stream({
          stream: new Writable({
            write(chunk: Buffer, _enc, cb) {
              for (const l of chunk.toString('utf8').split('\n').filter(Boolean))
                lines.push(JSON.parse(l) as Record<string, unknown>);
              cb();
            },
          }),
        }),
      ],
    });
    const log = new RefusalLog(logger, 60_000);
    const n = 5_000;
    for (let i = 0; i < n; i++) {
      const address = `2001:db8::${i.toString(16)}`;
      log.refused('max-startups', `${address}/128`, address, 'test');
    }
    log.stop();
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        const own = lines.filter((l) => l.message === 'connection refused before authentication');
        const summary = lines.find(
          (l) => l.message === 'connections refused before authentication (summary)',
        );
        assert.equal(own.length, 50);
        assert.ok(summary);
        assert.equal(summary.refused_total, n - 50);
        const by = summary.refused_by_reason_and_source as Record<string, number>;
        assert.equal(by['max-startups other'], n - 50 - MAX_SUPPRESSED_KEYS);
        resolve();
      });
    });
  });
});

describe('source addresses', () => {
  it('checks addresses and CIDR blocks', () => {
    for (const ok of ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32', '::1', '0.0.0.0/0'])
      assert.equal(isAddressOrBlock(ok), true, ok);
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0/8', '2001:db8::/129', '1.2.3.4/8/9', ''])
      assert.equal(isAddressOrBlock(bad), false, bad);
    const list = new AddressList(['10.0.0.0/8', '::1']);
    assert.equal(list.has('10.200.1.1'), true);
    assert.equal(list.has('::ffff:10.200.1.1'), true);
    assert.equal(list.has('11.0.0.1'), false);
    assert.equal(list.has('::1'), true);
  });
});
