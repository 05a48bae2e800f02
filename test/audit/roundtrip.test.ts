/**
 * The whole auditor path at scale: 100,000 records across many segments, sealed to two recipients,
 * exported as a signed bundle, verified offline with the signer's public key alone, and decrypted with
 * each recipient's key. The decrypted output must equal what was written, record for record.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decryptLog } from '../../src/audit/decrypt.js';
import { exportBundle } from '../../src/audit/export.js';
import { openLogSource } from '../../src/audit/source.js';
import { verifyLog } from '../../src/audit/verify/verifier.js';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';

const RECORDS = 100_000;
const SESSIONS = 7;
const ORIGIN = 'roundtrip.sealgate/log';

describe('round trip: 100,000 records, two recipients, export → verify → decrypt', () => {
  const p = new OpenSslProvider();
  const work = mkdtempSync(join(tmpdir(), 'sealgate-roundtrip-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  it('gives back exactly what was written, to each recipient', async (t) => {
    const alice = await p.generateKey({ type: 'rsa', bits: 3072 });
    const bob = await p.generateKey({ type: 'rsa', bits: 2048 });
    const signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const storeDir = join(work, 'store');
    const log = await SealedLog.open({
      provider: p,
      dir: storeDir,
      origin: ORIGIN,
      recipients: [alice.publicKey, bob.publicKey],
      signingKey: signer,
      create: true,
      policy: { maxRecords: 4096, checkpointEveryEntries: 10_000 },
    });

    // What each session wrote, as the decrypted events should show it: [type, text or command].
    const written = new Map<string, [string, string][]>();
    const sessions = Array.from({ length: SESSIONS }, () => log.openSession());
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    for (const s of sessions) written.set(hex(s.sessionId), []);
    for (let i = 0; i < RECORDS - SESSIONS; i++) {
      const s = sessions[i % SESSIONS] as (typeof sessions)[number];
      const mine = written.get(hex(s.sessionId)) as [string, string][];
      if (i % 50 === 0) {
        const command = `echo record ${i}`;
        s.event(RecordType.EXEC, { channel: 0, command });
        mine.push(['EXEC', command]);
      } else {
        const text = `output line ${i} ${'x'.repeat(i % 97)}\n`;
        s.event(RecordType.DATA_OUT, { channel: 0, data: new TextEncoder().encode(text) });
        mine.push(['DATA_OUT', text]);
      }
    }
    for (const s of sessions) {
      s.end('done');
      written.get(hex(s.sessionId))?.push(['SESSION_END', 'done']);
    }
    await log.close('round trip done');

    const bundleDir = join(work, 'bundle');
    await exportBundle({ provider: p, storeDir, outDir: bundleDir, signer });

    const source = openLogSource(bundleDir);
    try {
      const report = verifyLog(p, source, { trustedSigners: [signer.publicKey] });
      assert.deepEqual(report.failures, []);
      assert.equal(report.ok, true);
      assert.equal(report.counts.records, RECORDS);
      assert.ok(report.counts.segments > RECORDS / 4096, `only ${report.counts.segments} segments`);
      t.diagnostic(
        `verified: ${report.counts.entries} entries, ${report.counts.segments} segments, ${report.counts.records} records`,
      );
    } finally {
      source.close();
    }

    for (const [name, key] of [
      ['alice (RSA-3072)', alice],
      ['bob (RSA-2048)', bob],
    ] as const) {
      const got = new Map<string, [string, string][]>();
      const bundle = openLogSource(bundleDir);
      try {
        const decryption = decryptLog(p, bundle.entries(), key, { recordsOnly: true });
        for await (const e of decryption) {
          const ev = e as unknown as Record<string, unknown>;
          const list = got.get(String(ev.session)) ?? [];
          got.set(String(ev.session), list);
          const value = ev.type === 'EXEC' ? ev.command : ev.type === 'SESSION_END' ? ev.reason : ev.text;
          list.push([String(ev.type), String(value)]);
        }
      } finally {
        bundle.close();
      }
      assert.equal(got.size, SESSIONS, name);
      for (const [session, events] of written)
        assert.deepEqual(got.get(session), events, `${name}, session ${session}`);
      t.diagnostic(
        `${name}: ${[...got.values()].reduce((n, l) => n + l.length, 0)} records decrypted, equal to the input`,
      );
    }
  });
});
