/**
 * The `sealgate` command as users run it: `node bin/sealgate.js …` in a child process, against the
 * compiled dist/ and the FIPS provider that fips/build.sh made (or SEALGATE_FIPS_DIR). These tests check
 * exit statuses and what is printed, including that known failures give one message and no stack trace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { runCli } from '../helpers/cli.js';

const ROOT = repoRoot();
/** The provider the FIPS tests use: the same choice test/run.js makes. */
const FIPS_DIR = resolve(process.env.SEALGATE_FIPS_DIR ?? join(ROOT, '.cache', 'fips'));
const EXAMPLE = 'deploy/examples/sealgate.yaml';
const STACK_LINE = /^\s+at /m;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with SEALGATE_FIPS_DIR set explicitly (test/helpers/cli.ts scrubs inherited FIPS state). */
function sealgate(args: string[], opts: { fipsDir?: string } = {}): Promise<Run> {
  return runCli(args, { SEALGATE_FIPS_DIR: opts.fipsDir ?? FIPS_DIR });
}

/** Shows the whole run when an assertion about it fails. */
function show(r: Run): string {
  return `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** A known failure: the given status, exactly one line on stderr starting "sealgate: ", no stack trace. */
function assertCleanFailure(r: Run, status: number): string {
  assert.equal(r.status, status, show(r));
  assert.doesNotMatch(r.stderr, STACK_LINE, show(r));
  assert.doesNotMatch(r.stdout, STACK_LINE, show(r));
  assert.ok(r.stderr.startsWith('sealgate: '), show(r));
  assert.ok(r.stderr.endsWith('\n'), show(r));
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `expected one line\n${show(r)}`);
  return r.stderr.trimEnd();
}

/** Help text wraps at 80 columns; compare with runs of white space folded to one space. */
const flat = (s: string) => s.replace(/\s+/g, ' ');

/** The rows of the table printed after `title` (cli-table3 box drawing): cells, trimmed, per line. */
function tableLines(text: string, title: string): string[][] {
  const lines = text.split('\n');
  const start = lines.indexOf(title);
  assert.notEqual(start, -1, `no "${title}" section in:\n${text}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('└')) break;
    if (line.startsWith('│'))
      rows.push(
        line
          .split('│')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
  }
  return rows;
}

// --- temporary files ---------------------------------------------------------------------------------

let tmp: string;
/** A config `sealgate init` wrote, with every key it names, and its target pinned: serve would start. */
let good: string;
/** A copy of the provider whose fipsmodule.cnf has one module-mac hex digit changed. */
let tamperedDir: string;
/** An unaltered copy of the provider, prepared the same way (the control for `tamperedDir`). */
let copiedDir: string;

function copyProvider(dir: string, edit?: (cnf: string) => string): void {
  copyFileSync(join(FIPS_DIR, 'fips.so'), join(dir, 'fips.so'));
  const cnf = readFileSync(join(FIPS_DIR, 'fipsmodule.cnf'), 'utf8');
  writeFileSync(join(dir, 'fipsmodule.cnf'), edit ? edit(cnf) : cnf);
  const r = spawnSync('bash', [join(ROOT, 'fips', 'write-openssl-cnf.sh'), dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `write-openssl-cnf.sh failed: ${r.stderr}`);
}

/** Changes the first hex digit of the module-mac value (and nothing else). */
function alterModuleMac(cnf: string): string {
  const m = /^(module-mac\s*=\s*)([0-9A-Fa-f])/m.exec(cnf);
  assert.ok(m, `no module-mac line in fipsmodule.cnf:\n${cnf}`);
  const digit = m[2] === '0' ? '1' : '0';
  const at = m.index + (m[1] ?? '').length;
  const out = cnf.slice(0, at) + digit + cnf.slice(at + 1);
  assert.notEqual(out, cnf);
  return out;
}

/** Writes a variant of the example config (or of `from`) and returns its path. */
function exampleWith(name: string, edit: (text: string) => string, from = join(ROOT, EXAMPLE)): string {
  const text = readFileSync(from, 'utf8');
  const out = edit(text);
  assert.notEqual(out, text, `the edit for ${name} changed nothing`);
  const path = join(tmp, name);
  writeFileSync(path, out);
  return path;
}

const replaceOnce = (text: string, from: string | RegExp, to: string): string => {
  const out = text.replace(from, to);
  assert.notEqual(out, text, `pattern ${String(from)} not found`);
  return out;
};

const CHACHA_CLIENT_LEG = (t: string) =>
  replaceOnce(
    t,
    /(client_leg:\n(?:.*\n)*?\s+cipher: )\[aes256-gcm@openssh\.com, aes128-gcm@openssh\.com\]/,
    '$1[chacha20-poly1305@openssh.com, aes256-gcm@openssh.com]',
  );
const FIPS_ON = (t: string) => replaceOnce(t, /^fips: false$/m, 'fips: true');

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sealgate-cli-'));
  const gate = join(tmp, 'gate');
  const init = await sealgate(['init', gate]);
  assert.equal(init.status, 0, show(init));
  // Pin the target (any key will do: nothing connects), so the check has nothing to warn about.
  const pin = readFileSync(join(gate, 'keys', 'upstream_key.pub'), 'utf8');
  writeFileSync(join(gate, 'known_hosts', 'local'), `127.0.0.1 ${pin}`);
  good = join(gate, 'sealgate.yaml');
  tamperedDir = mkdtempSync(join(tmp, 'tampered-'));
  copiedDir = mkdtempSync(join(tmp, 'copied-'));
  copyProvider(tamperedDir, alterModuleMac);
  copyProvider(copiedDir);
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// --- fips status ----------------------------------------------------------------------------------------

const SELF_TESTS = [
  'SHA-256',
  'SHA-384',
  'SHA-512',
  'HMAC-SHA-256',
  'HKDF-SHA-512',
  'AES-256-GCM seal',
  'AES-256-GCM open',
  'RSA-OAEP-SHA-256 decrypt',
  'RSA-OAEP-SHA-256 encrypt (pairwise)',
  'ECDSA P-256 verify',
  'ECDSA P-384 verify',
  'ECDSA P-384 sign (pairwise)',
  'RSA-PSS-SHA-256 verify',
  'Random bytes',
  'Policy refuses Ed25519',
  'Policy refuses X25519',
];
const FIPS_CIPHERS = ['aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'];

test('fips status: proves FIPS mode with the built provider and prints the approved lists', async () => {
  const r = await sealgate(['fips', 'status']);
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stderr, '', show(r));
  assert.match(r.stdout, /^FIPS mode: OK$/m);
  assert.doesNotMatch(r.stdout, /FAIL/);

  const module = Object.fromEntries(tableLines(r.stdout, 'FIPS module').map(([k, v]) => [k, v]));
  assert.match(module['FIPS provider'] ?? '', /^OpenSSL FIPS Provider 3\.\d+\.\d+$/);
  assert.equal(module['module path'], join(FIPS_DIR, 'fips.so'));
  assert.match(module['module SHA-256'] ?? '', /^[0-9a-f]{64}$/);

  const checks = tableLines(r.stdout, 'Start-up checks').slice(1); // after the header row
  const names = checks.map(([name]) => name);
  assert.deepEqual(names, ['crypto.getFips() === 1', 'OpenSSL refuses MD5', ...SELF_TESTS]);
  for (const [name, result, detail] of checks) assert.equal(result, 'PASS', `${name}: ${detail}`);
  assert.deepEqual(checks[0], ['crypto.getFips() === 1', 'PASS', 'getFips() returned 1']);

  // The cipher cell spans one line per name, until the next row separator.
  const lines = r.stdout.split('\n');
  const first = lines.findIndex((l) => l.includes('SSH cipher (both legs)'));
  assert.notEqual(first, -1, show(r));
  const ciphers: string[] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('│')) break;
    ciphers.push(line.split('│')[2]?.trim() ?? '');
  }
  assert.deepEqual(ciphers, FIPS_CIPHERS);
  assert.match(r.stdout, /SSH kex \(both legs\)\s+│ ecdh-sha2-nistp256/);
  assert.doesNotMatch(r.stdout, /chacha20|curve25519|-ctr\b|ssh-rsa|ssh-ed25519/i);
});

test('fips status --json: ok, getFips() in the runtime checks, GCM-only SSH ciphers', async () => {
  const r = await sealgate(['fips', 'status', '--json']);
  assert.equal(r.status, 0, show(r));
  const report = JSON.parse(r.stdout) as {
    ok: boolean;
    fipsRequested: boolean;
    runtime: { name: string; ok: boolean; detail: string }[];
    selfTests: { name: string; ok: boolean; detail: string }[];
    module: { module: string; providerName: string; providerVersion: string; moduleSha256: string };
    ssh: Record<string, string[]>;
  };
  assert.equal(report.ok, true);
  assert.equal(report.fipsRequested, true);
  const getFips = report.runtime.find((c) => c.name.includes('getFips'));
  assert.deepEqual(getFips, { name: 'crypto.getFips() === 1', ok: true, detail: 'getFips() returned 1' });
  assert.ok(
    report.runtime.some((c) => c.name === 'OpenSSL refuses MD5' && c.ok),
    r.stdout,
  );
  assert.deepEqual(
    report.selfTests.map((t) => t.name),
    SELF_TESTS,
  );
  assert.ok(
    report.selfTests.every((t) => t.ok),
    r.stdout,
  );
  assert.equal(report.module.providerName, 'OpenSSL FIPS Provider');
  assert.equal(report.module.module, join(FIPS_DIR, 'fips.so'));
  assert.deepEqual(report.ssh.cipher, FIPS_CIPHERS);
  assert.deepEqual(report.ssh.compress, ['none']);
  assert.doesNotMatch(JSON.stringify(report.ssh), /chacha20|curve25519|ed25519|ssh-rsa/);
});

test('fips status: a missing provider directory fails with exit 3 and says how to fix it', async () => {
  const missing = join(tmp, 'no-such-fips-dir');
  const r = await sealgate(['fips', 'status'], { fipsDir: missing });
  const message = assertCleanFailure(r, 3);
  assert.ok(message.includes(`fips.so not found at ${join(missing, 'fips.so')}`), show(r));
  assert.ok(message.includes('run fips/build.sh'), show(r));
  assert.equal(r.stdout, '');
});

test('fips status: an unaltered copy of the provider in another directory works (control)', async () => {
  const r = await sealgate(['fips', 'status', '--json'], { fipsDir: copiedDir });
  assert.equal(r.status, 0, show(r));
  const report = JSON.parse(r.stdout) as { ok: boolean; module: { module: string } };
  assert.equal(report.ok, true);
  assert.equal(report.module.module, join(copiedDir, 'fips.so'));
});

test('fips status: an altered module-mac fails the provider self-test with exit 3', async () => {
  const r = await sealgate(['fips', 'status'], { fipsDir: tamperedDir });
  const message = assertCleanFailure(r, 3);
  assert.ok(message.includes(`the OpenSSL FIPS provider in ${tamperedDir} could not be loaded`), show(r));
  assert.ok(message.includes('SELF_TEST_post'), show(r));
  assert.equal(r.stdout, '');
});

// --- config check ---------------------------------------------------------------------------------------

const STATIC_OK = 'keys, files and the crypto provider not checked: serve may still refuse it';

test('config check: a config whose keys exist is OK in normal mode', async () => {
  const r = await sealgate(['config', 'check', good]);
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout, `${good}: OK (1 target(s), 1 user(s), FIPS mode off)\n`);
  assert.equal(r.stderr, '');
});

test('config check: the example config passes the static checks, but its keys are not on this machine', async () => {
  const r = await sealgate(['config', 'check', '--static', EXAMPLE]);
  assert.equal(r.status, 0, show(r));
  assert.equal(
    r.stdout,
    `${EXAMPLE}: static checks OK (2 target(s), 2 user(s), FIPS mode off); ${STATIC_OK}\n`,
  );
  assert.equal(r.stderr, '');
  // Without --static every key is loaded, as serve loads it, and each missing one is named.
  const full = await sealgate(['config', 'check', EXAMPLE]);
  assert.equal(full.status, 2, show(full));
  const lines = full.stderr.trimEnd().split('\n');
  assert.equal(lines[0], `sealgate: ${EXAMPLE}: the gate cannot start with this config`);
  assert.ok(
    lines.includes(
      'listen.host_key (file:/etc/sealgate/host_key.pem): cannot read key file /etc/sealgate/host_key.pem: ENOENT',
    ),
    show(full),
  );
  assert.ok(
    lines.some((l) =>
      l.startsWith('recording.checkpoint_signer (pkcs11:token=sealgate;object=checkpoint-signer): '),
    ),
    show(full),
  );
  assert.doesNotMatch(full.stderr, STACK_LINE);
  assert.equal(full.stdout, '');
});

test('config check --fips: a config whose keys exist is OK in a FIPS-mode Node', async () => {
  for (const args of [
    ['--fips', 'config', 'check', good],
    ['config', 'check', '--fips', good],
  ]) {
    const r = await sealgate(args);
    assert.equal(r.status, 0, `${args.join(' ')}\n${show(r)}`);
    assert.equal(r.stdout, `${good}: OK (1 target(s), 1 user(s), FIPS mode on)\n`);
    assert.equal(r.stderr, '');
  }
});

test('config check --fips: needs the provider (so it really re-launches in FIPS mode)', async () => {
  const missing = join(tmp, 'no-such-fips-dir');
  const r = await sealgate(['--fips', 'config', 'check', EXAMPLE], { fipsDir: missing });
  const message = assertCleanFailure(r, 3);
  assert.ok(message.includes(`fips.so not found at ${join(missing, 'fips.so')}`), show(r));
  const tampered = await sealgate(['--fips', 'config', 'check', EXAMPLE], { fipsDir: tamperedDir });
  assert.ok(assertCleanFailure(tampered, 3).includes('could not be loaded'), show(tampered));
});

test('config check: fips: true in the file turns FIPS mode on', async () => {
  const file = exampleWith('fips-on.yaml', (t) => `${t}fips: true\n`, good);
  const r = await sealgate(['config', 'check', file]);
  assert.equal(r.status, 0, show(r));
  assert.equal(r.stdout, `${file}: OK (1 target(s), 1 user(s), FIPS mode on)\n`);
  const missing = await sealgate(['config', 'check', file], { fipsDir: join(tmp, 'no-such-fips-dir') });
  assertCleanFailure(missing, 3);
});

test('config check: a schema error exits 2 naming the path, with no stack trace', async () => {
  const file = exampleWith('bad-port.yaml', (t) => replaceOnce(t, 'port: 22 # default 22', 'port: 70000'));
  const r = await sealgate(['config', 'check', file]);
  assert.equal(r.status, 2, show(r));
  assert.equal(r.stderr, `sealgate: ${file}: the config is invalid\ntargets[0].port: must be <= 65535\n`);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  assert.equal(r.stdout, '');
});

test('config check: several problems are all named, one per line', async () => {
  const file = exampleWith('bad-many.yaml', (t) =>
    replaceOnce(replaceOnce(t, 'port: 22 # default 22', 'port: 70000'), 'level: info', 'level: loud'),
  );
  const r = await sealgate(['config', 'check', file]);
  assert.equal(r.status, 2, show(r));
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines[0], `sealgate: ${file}: the config is invalid`);
  assert.deepEqual(lines.slice(1).sort(), [
    'log.level: must be one of "error", "warn", "info", "debug"',
    'targets[0].port: must be <= 65535',
  ]);
  assert.doesNotMatch(r.stderr, STACK_LINE);
});

test('config check: chacha20 with fips: true exits 2 naming the rule fips.no-chacha20', async () => {
  const file = exampleWith('fips-chacha.yaml', (t) => CHACHA_CLIENT_LEG(FIPS_ON(t)));
  const r = await sealgate(['config', 'check', file]);
  assert.equal(r.status, 2, show(r));
  assert.equal(
    r.stderr,
    `sealgate: ${file}: the config breaks the algorithm policy\n` +
      'ssh.client_leg.cipher[0]: chacha20-poly1305@openssh.com is not FIPS-approved [fips.no-chacha20]\n',
  );
  assert.equal(r.stdout, '');
});

test('config check: the same chacha20 config is accepted in normal mode, refused with --fips', async () => {
  const file = exampleWith('normal-chacha.yaml', CHACHA_CLIENT_LEG);
  const normal = await sealgate(['config', 'check', '--static', file]);
  assert.equal(normal.status, 0, show(normal));
  assert.equal(
    normal.stdout,
    `${file}: static checks OK (2 target(s), 2 user(s), FIPS mode off); ${STATIC_OK}\n`,
  );
  const fips = await sealgate(['--fips', 'config', 'check', file]);
  assert.equal(fips.status, 2, show(fips));
  assert.match(fips.stderr, /^ssh\.client_leg\.cipher\[0\]: .* \[fips\.no-chacha20\]$/m);
  assert.doesNotMatch(fips.stderr, STACK_LINE);
});

test('config check: a missing file exits 2 and says it cannot be read', async () => {
  const file = join(tmp, 'does-not-exist.yaml');
  const r = await sealgate(['config', 'check', file]);
  assert.equal(r.status, 2, show(r));
  assert.ok(r.stderr.startsWith(`sealgate: ${file}: cannot read the config\n`), show(r));
  assert.match(r.stderr, /ENOENT/);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  assert.equal(r.stdout, '');
});

// --- help -----------------------------------------------------------------------------------------------

test('--help: root, fips status and config check', async () => {
  const root = await sealgate(['--help']);
  assert.equal(root.status, 0, show(root));
  assert.ok(root.stdout.startsWith('Usage: sealgate [options] [command]'), show(root));
  assert.ok(
    flat(root.stdout).includes(
      'An SSH gate that records every session into a sealed, signed, tamper-evident log.',
    ),
    show(root),
  );
  assert.match(root.stdout, /^\s+--fips\s+run in FIPS mode/m);
  assert.match(root.stdout, /^\s+fips\s+FIPS mode tools$/m);
  assert.match(root.stdout, /^\s+config\s+configuration tools$/m);

  // Help needs no provider: it must not try to re-launch in FIPS mode.
  const status = await sealgate(['fips', 'status', '--help'], { fipsDir: join(tmp, 'no-such-fips-dir') });
  assert.equal(status.status, 0, show(status));
  assert.ok(status.stdout.startsWith('Usage: sealgate fips status [options]'), show(status));
  assert.ok(flat(status.stdout).includes('run every known-answer test'), show(status));
  assert.match(status.stdout, /^\s+--json\s+print the report as JSON$/m);

  const check = await sealgate(['config', 'check', '--help']);
  assert.equal(check.status, 0, show(check));
  assert.ok(check.stdout.startsWith('Usage: sealgate config check [options] <file>'), show(check));
  assert.ok(flat(check.stdout).includes('check a config file (YAML or JSON) as serve does'), show(check));
  assert.match(check.stdout, /^\s+--static\s+only the checks that read no other file/m);
});

test('keys gen-signer: the operational log states the crypto mode at start, in both modes', async () => {
  const out = mkdtempSync(join(tmpdir(), 'sealgate-cli-keys-'));
  try {
    for (const [flags, fips] of [
      [[], false],
      [['--fips'], true],
    ] as const) {
      process.env.SEALGATE_LOG_LEVEL = 'info';
      const r = await sealgate([...flags, 'keys', 'gen-signer', '-o', out, '--unencrypted', '--force']);
      delete process.env.SEALGATE_LOG_LEVEL;
      assert.equal(r.status, 0, show(r));
      const line = r.stderr.split('\n').find((l) => l.includes('crypto provider started'));
      assert.ok(line, show(r));
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(entry.fips, fips);
      assert.equal(entry.backend, 'openssl');
      if (fips) assert.equal(entry.fipsProvider, 'OpenSSL FIPS Provider');
      assert.match(String(entry.self_tests), /^(\d+)\/\1 passed$/);
      assert.match(readFileSync(join(out, 'signer.pub.pem'), 'utf8'), /BEGIN PUBLIC KEY/);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
