/**
 * Sessions in the FIPS pass: a store sealed by a FIPS-mode Node reads back, through the index, with every
 * session's provenance saying FIPS, and the commands derived.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { openIndexedLog } from '../../src/audit/index/indexed-log.js';
import { openLogSource } from '../../src/audit/source.js';
import { buildFixture } from './decrypt-fixture.js';

const p = new OpenSslProvider();

describe('sessions and commands, FIPS-mode Node', () => {
  it('every session of a FIPS-sealed store says fips, and the index gives the commands', async () => {
    assert.equal(p.info().fipsMode, true);
    const fx = await buildFixture(p);
    const dir = mkdtempSync(join(tmpdir(), 'sealgate-index-fips-'));
    const source = openLogSource(fx.dir);
    try {
      const built = await openIndexedLog({
        provider: p,
        source,
        key: fx.r1,
        useIndex: true,
        dir: join(dir, 'i'),
      });
      assert.equal(built.use, 'built');
      assert.equal(built.sessions.length, fx.sessions.length);
      for (const row of built.sessions) {
        assert.equal(row.fips, true, row.session);
        assert.deepEqual(
          row.provenance.map((pr) => [pr.fips, pr.backend]),
          [[true, 'openssl']],
        );
      }
      const again = await openIndexedLog({
        provider: p,
        source,
        key: fx.r1,
        useIndex: true,
        dir: join(dir, 'i'),
      });
      assert.equal(again.use, 'current');
      assert.deepEqual(
        [...again.commands()].filter((c) => c.derivation === 'exec').map((c) => c.text),
        ['id -a && cat /etc/hostname', 'printf "héllo ✓"', 'uptime'],
      );
    } finally {
      source.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
