/**
 * The SSH gate in a FIPS-mode Node (issue 5, design brief §4), with the real OpenSSH client, real sshds
 * and ssh-audit:
 * - an exec session works end to end for every cipher the gate offers in FIPS mode, and its segments
 *   say fips: true; so do sftp (with SFTP_OP records) and ssh -J (the inner session);
 * - clients offering only non-approved algorithms (chacha20-poly1305, curve25519, ssh-ed25519) are
 *   refused in the handshake;
 * - targets offering only non-approved algorithms are refused by the gate (NO_COMMON_ALGORITHM), with a
 *   message on the client's stderr and an ALERT (sealed and in the operational log);
 * - ssh-audit sees nothing on the client leg that FIPS_APPROVED_SSH does not list.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FIPS_APPROVED_SSH, FIPS_DEFAULT_SSH, OpenSslProvider } from '../../src/crypto/index.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { EntryKind } from '../../src/seal/format/types.js';
import { LocalStore } from '../../src/seal/store.js';
import { dataText, startGateFixture, type GateFixture, type Rec } from '../helpers/gate-fixture.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

/** The records of the session whose EXEC is `command`. */
function sessionOf(recs: readonly Rec[], command: string): Rec[] {
  const exec = recs.find((r) => r.type === 'EXEC' && r.payload.command === command);
  assert.ok(exec, `no EXEC ${command}`);
  return recs.filter((r) => r.session === exec.session);
}

/** Runs a tool without blocking the event loop (the gate under test runs in this process). */
function runTool(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The provenance of every segment header in the store at `dir`, by session id (hex). */
async function segmentProvenance(dir: string): Promise<Map<string, Record<string, unknown>[]>> {
  const store = LocalStore.openReadOnly(dir);
  const out = new Map<string, Record<string, unknown>[]>();
  try {
    for (const bytes of store.entries(0, store.size)) {
      const e = decodeEntry(bytes);
      if (e.kind !== EntryKind.SEGMENT_HEADER) continue;
      const session = Buffer.from(e.sessionId).toString('hex');
      out.set(session, [...(out.get(session) ?? []), e.provenance]);
    }
  } finally {
    await store.close();
  }
  return out;
}

describe('SSH gate in a FIPS-mode Node', () => {
  let sshd: Sshd;
  /** Targets that offer only non-approved algorithms, by target name. */
  const bad = new Map<string, Sshd>();
  let fx: GateFixture;
  let dir: string;

  before(async () => {
    assert.equal(new OpenSslProvider().policy.fips, true, 'this file must run in the FIPS pass');
    dir = mkdtempSync(join(tmpdir(), 'sealgate-fips-ssh-'));
    const edKey = join(dir, 'host_ed25519');
    const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-ed', '-f', edKey], {
      encoding: 'utf8',
    });
    assert.equal(kg.status, 0, kg.stderr);
    const badConfigs: Record<string, string[]> = {
      kex25519: ['KexAlgorithms curve25519-sha256'],
      chacha: ['Ciphers chacha20-poly1305@openssh.com'],
      // The helper's ECDSA key stays pinned, as an operator would pin it; sshd offers only Ed25519.
      ed25519: [`HostKey ${edKey}`, 'HostKeyAlgorithms ssh-ed25519'],
    };
    const [main, ...others] = await Promise.all([
      startSshd(),
      ...Object.values(badConfigs).map((extraConfig) => startSshd({ extraConfig })),
    ]);
    sshd = main!;
    Object.keys(badConfigs).forEach((name, i) => bad.set(name, others[i]!));
    for (const [name, s] of bad) writeFileSync(join(dir, `kh_${name}`), `${s.knownHostsLine}\n`);
    fx = await startGateFixture({
      sshd,
      limits: { refusalGraceMs: 3_000 },
      configure: (raw) => {
        for (const [name, s] of bad) {
          raw.targets.push({
            name,
            host: '127.0.0.1',
            port: s.port,
            user: s.user,
            known_hosts: join(dir, `kh_${name}`),
          });
        }
      },
    });
  });
  after(async () => {
    await fx?.close();
    await Promise.all([sshd?.stop(), ...[...bad.values()].map((s) => s.stop())]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('offers exactly the FIPS default ciphers (AES-GCM)', () => {
    assert.deepEqual(FIPS_DEFAULT_SSH.cipher, ['aes256-gcm@openssh.com', 'aes128-gcm@openssh.com']);
  });

  for (const cipher of FIPS_DEFAULT_SSH.cipher) {
    it(`runs an exec session end to end with ssh -c ${cipher}, sealed with fips: true`, async () => {
      const command = `echo fips-${cipher}; echo e >&2; exit 4`;
      const before = (await fx.records()).filter((r) => r.type === 'SESSION_END').length;
      const r = await fx.ssh('ops+local', [command], { extra: ['-v', '-c', cipher] });
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stdout.toString(), `fips-${cipher}\n`);
      assert.match(r.stderr, new RegExp(`cipher: ${cipher.replace(/[.@]/g, '\\$&')}`));
      const recs = sessionOf(await fx.recordsAfterSessions(before + 1), command);
      assert.equal(recs[0]?.type, 'SESSION_START');
      assert.equal(dataText(recs, 'DATA_OUT'), `fips-${cipher}\n`);
      assert.equal(dataText(recs, 'DATA_ERR'), 'e\n');
      assert.equal(recs.find((x) => x.type === 'EXIT_STATUS')?.payload.code, 4);
      assert.equal(recs.at(-1)?.type, 'SESSION_END');
      const prov = (await segmentProvenance(fx.config.recording.store)).get(recs[0]!.session);
      assert.ok(prov && prov.length > 0, 'no segment header for the session');
      for (const p of prov) assert.equal(p.fips, true, JSON.stringify(p));
    });
  }

  const refusedClients: [string, string[], RegExp][] = [
    ['chacha20-poly1305 only', ['-c', 'chacha20-poly1305@openssh.com'], /no matching cipher found/],
    ['curve25519 KEX only', ['-o', 'KexAlgorithms=curve25519-sha256'], /no matching key exchange method/],
    ['ssh-ed25519 host keys only', ['-o', 'HostKeyAlgorithms=ssh-ed25519'], /no matching host key type/],
  ];
  for (const [what, extra, message] of refusedClients) {
    it(`refuses a client offering ${what} in the handshake`, async () => {
      const starts = (await fx.records()).filter((r) => r.type === 'SESSION_START').length;
      const upstream = sshd.connections();
      const r = await fx.ssh('ops+local', ['true'], { extra });
      assert.equal(r.code, 255, r.stderr);
      assert.match(r.stderr, message);
      assert.equal((await fx.records()).filter((x) => x.type === 'SESSION_START').length, starts);
      assert.equal(sshd.connections(), upstream, 'the gate connected upstream for a refused client');
    });
  }

  const refusedTargets: [string, RegExp][] = [
    ['kex25519', /\(Handshake failed: no matching key exchange algorithm\)/],
    ['chacha', /\(Handshake failed: no matching C->S cipher\)/],
    ['ed25519', /\(Handshake failed: no matching host key format\)/],
  ];
  for (const [name, detail] of refusedTargets) {
    it(`refuses a target offering only non-approved algorithms (${name}): NO_COMMON_ALGORITHM`, async () => {
      const target = bad.get(name)!;
      const reached = target.connections();
      const r = await fx.ssh(`ops+${name}`, ['echo should-not-run'], { timeoutMs: 15_000 });
      assert.equal(r.code, 255, r.stderr);
      assert.equal(r.stdout.toString(), '');
      const text = new RegExp(
        `sealgate: target ${name} \\(127\\.0\\.0\\.1:${target.port}\\) offers no algorithm the gate's policy allows`,
      );
      assert.match(r.stderr, text);
      assert.match(r.stderr, detail);
      // The gate did reach the target (the refusal is the handshake's), and nobody logged in.
      assert.ok(target.connections() > reached);
      assert.doesNotMatch(target.log(), /Accepted publickey/);
      const alert = fx.opsLog.find(
        (l) => l.alert === 'upstream.no_common_algorithm' && l.level === 'error' && l.target === name,
      );
      assert.ok(alert, JSON.stringify(fx.opsLog.filter((l) => l.alert)));
      // What the gate does (src/ssh/connection.ts): the session is recorded with an ALERT and ends
      // "refused: …", with no output and no exit status.
      // The client's EXEC request is recorded only if it arrived before the upstream handshake failed.
      // The client may exit before the gate has written SESSION_END, so wait for it.
      let session: Rec[] = [];
      for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
        const recs = await fx.records();
        const start = recs.find((x) => x.type === 'SESSION_START' && x.payload.target === name);
        session = start ? recs.filter((x) => x.session === start.session) : [];
        if (session.at(-1)?.type === 'SESSION_END') break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(session.length > 0, `no SESSION_START for ${name}`);
      const types = session.map((x) => x.type);
      assert.deepEqual(types.slice(0, 2), ['SESSION_START', 'AUTH_RESULT']);
      assert.equal(types.at(-1), 'SESSION_END');
      const allowed = new Set([
        'SESSION_START',
        'AUTH_RESULT',
        'CHANNEL_OPEN',
        'EXEC',
        'ALERT',
        'CHANNEL_CLOSE',
        'SESSION_END',
      ]);
      const sealedAlert = session.find((x) => x.type === 'ALERT');
      assert.equal(sealedAlert?.payload.rule, 'upstream.no_common_algorithm');
      assert.equal(sealedAlert?.payload.severity, 'warning');
      assert.match(String(sealedAlert?.payload.message), /offers no algorithm the gate's policy allows/);
      assert.deepEqual(
        types.filter((t) => !allowed.has(t)),
        [],
        `unexpected records: ${types.join(' ')}`,
      );
      const reason = String(session.at(-1)?.payload.reason);
      assert.match(
        reason,
        /^refused: target \S+ \(127\.0\.0\.1:\d+\) offers no algorithm the gate's policy allows/,
      );
      assert.match(reason, detail);
      assert.equal(session.at(-1)?.final, true);
    });
  }

  it('ssh-audit sees only FIPS-approved algorithms on the client leg', async () => {
    // Asynchronously: the gate runs in this process, so a blocking spawnSync would starve it.
    const r = await runTool('ssh-audit', ['-j', '-p', String(fx.gate.port), '127.0.0.1'], 30_000);
    assert.ok(r.stdout.trim().startsWith('{'), `ssh-audit: ${r.status} ${r.stderr} ${r.stdout}`);
    const audit = JSON.parse(r.stdout) as Record<string, unknown>;
    // ssh-audit 2.5 lists kex and key as {algorithm} objects, enc and mac as plain names.
    const names = (key: string): string[] =>
      ((audit[key] as (string | { algorithm: string })[] | null | undefined) ?? []).map((a) =>
        typeof a === 'string' ? a : a.algorithm,
      );
    const seen = {
      kex: names('kex'),
      serverHostKey: names('key'),
      cipher: names('enc'),
      hmac: names('mac'),
    };
    assert.ok(seen.kex.length > 0 && seen.cipher.length > 0 && seen.serverHostKey.length > 0, r.stdout);
    // ssh2 lists the strict-KEX marker (the Terrapin countermeasure): a flag in the KEX list, not a key
    // exchange method. Nothing else that is not an algorithm may appear.
    assert.ok(seen.kex.includes('kex-strict-s-v00@openssh.com'), seen.kex.join(' '));
    seen.kex = seen.kex.filter((a) => a !== 'kex-strict-s-v00@openssh.com');
    for (const [kind, list] of Object.entries(seen) as [keyof typeof seen, string[]][]) {
      const approved: readonly string[] = FIPS_APPROVED_SSH[kind];
      const outside = list.filter((a) => !approved.includes(a));
      assert.deepEqual(outside, [], `${kind}: not approved: ${outside.join(', ')}`);
    }
    assert.deepEqual(seen.cipher.sort(), [...FIPS_DEFAULT_SSH.cipher].sort());
    const all = Object.values(seen).flat().join(' ');
    assert.doesNotMatch(all, /curve25519|chacha20|ed25519|ssh-rsa|sha1|md5|group-exchange|cbc/i);
    assert.deepEqual(audit.compression, ['none']);
    assert.deepEqual(seen.serverHostKey, ['ecdsa-sha2-nistp256']);
  });
  it('sftp and ssh -J work end to end too: SFTP_OP paths and the inner session sealed with fips: true', async () => {
    const remote = `/home/${sshd.user}/sealgate-fips-sftp-${process.pid}`;
    const local = join(dir, 'upload');
    writeFileSync(local, Buffer.from(new OpenSslProvider().randomBytes(256 * 1024)));
    const config = fx.jumpConfig(['local']);
    const batch = join(dir, 'batch');
    writeFileSync(batch, `put ${local} ${remote}\nrm ${remote}\n`);
    try {
      const put = await runTool('sftp', ['-F', config, '-b', batch, 'ops+local@gate'], 60_000);
      assert.equal(put.status, 0, put.stderr);
      const jumped = await runTool('ssh', ['-F', config, 'local', 'echo jumped-in-fips'], 60_000);
      assert.equal(jumped.status, 0, jumped.stderr);
      assert.equal(jumped.stdout, 'jumped-in-fips\n');
    } finally {
      rmSync(remote, { force: true });
    }

    let recs: Rec[] = [];
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      recs = await fx.records();
      if (recs.some((r) => r.type === 'EXEC' && r.payload.command === 'echo jumped-in-fips')) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const open = recs.find(
      (r) => r.type === 'SFTP_OP' && r.payload.op === 'open' && r.payload.path === remote,
    );
    assert.ok(open, 'the upload is an SFTP_OP open of its exact path');
    assert.ok(
      recs.some((r) => r.type === 'SFTP_OP' && r.payload.op === 'remove' && r.payload.path === remote),
    );
    const inner = recs.find((r) => r.type === 'EXEC' && r.payload.command === 'echo jumped-in-fips');
    assert.ok(inner, 'the inner session of the jump is recorded');
    assert.equal(dataText(sessionOf(recs, 'echo jumped-in-fips'), 'DATA_OUT'), 'jumped-in-fips\n');
    const provenance = await segmentProvenance(fx.config.recording.store);
    for (const session of [open.session, inner.session]) {
      const headers = provenance.get(session) ?? [];
      assert.ok(headers.length > 0);
      for (const h of headers) assert.equal(h.fips, true);
    }
  });
});
