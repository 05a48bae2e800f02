import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ConfigError, type ConfigErrorCode, type ConfigIssue } from '../../src/config/errors.js';
import {
  keyRoles,
  loadConfigFile,
  parseConfig,
  toConfigPath,
  toSsh2Algorithms,
} from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { BAD, edited, minimal } from './bad-configs.js';

// dist/test/config/ → repository root.
const EXAMPLE = fileURLToPath(new URL('../../../deploy/examples/sealgate.yaml', import.meta.url));

function parse(doc: unknown, opts: { fips?: boolean; format?: 'yaml' | 'json' } = {}): Config {
  const format = opts.format ?? 'yaml';
  const text = format === 'json' ? JSON.stringify(doc) : stringify(doc);
  return parseConfig(text, { format, source: `test.${format}`, fips: opts.fips });
}

/**
 * Asserts that `fn` throws a ConfigError with `code` whose issues are exactly `issues`, in order, and
 * whose message prints each on its own line. Exactness also proves that no problem is reported twice.
 */
function assertConfigError(fn: () => unknown, code: ConfigErrorCode, issues: ConfigIssue[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.deepEqual(err.issues, issues);
    const lines = err.message.split('\n');
    for (const { path, message } of issues) assert.ok(lines.includes(`${path}: ${message}`), err.message);
    return true;
  });
}

test('the example config loads, in normal and in FIPS mode', () => {
  for (const fips of [false, true]) {
    const c = loadConfigFile(EXAMPLE, { fips });
    assert.equal(c.fips, fips);
    assert.equal(c.listen.port, 2222);
    assert.equal(c.recording.checkpoint_signer, 'pkcs11:token=sealgate;object=checkpoint-signer');
    // db-primary sets only the required keys; the rest come from the schema's defaults.
    const db = c.targets.find((t) => t.name === 'db-primary');
    assert.deepEqual(db, {
      name: 'db-primary',
      host: 'db1.internal.example.com',
      known_hosts: '/etc/sealgate/known_hosts/db-primary',
      port: 22,
      on_record_failure: 'fail-closed',
      forward_input: 'when-sealed',
      allow_port_forwarding: false,
    });
    assert.deepEqual(c.ssh?.upstream_leg, { cipher: ['aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'] });
  }
});

test('defaults fill every omitted key', () => {
  const c = parse(minimal());
  assert.equal(c.fips, false);
  assert.deepEqual(c.log, { level: 'info', format: 'json' });
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 2222, host_key: 'file:/etc/sealgate/host_key.pem' });
  assert.deepEqual(c.metrics, { enabled: false, host: '127.0.0.1', port: 9464 });
  assert.deepEqual(c.recording, {
    ...minimal().recording,
    checkpoint_every_records: 1000,
    checkpoint_every_seconds: 10,
    heartbeat_seconds: 60,
    fsync_every_records: 64,
    fsync_every_ms: 50,
    max_unlogged_bytes: 4194304,
    segment_max_records: 1048576,
    segment_max_seconds: 3600,
    segment_max_bytes: 1073741824,
  });
  assert.equal(c.targets[2]?.port, 22);
  assert.equal(c.targets[2]?.on_record_failure, 'fail-closed');
  assert.equal(c.targets[2]?.forward_input, 'when-sealed');
  assert.equal(c.targets[2]?.allow_port_forwarding, false);
  assert.equal(c.ssh, undefined);
  assert.equal(c.pkcs11, undefined);
});

test('JSON and YAML give the same config, by extension or by sniffing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-config-'));
  try {
    const doc = edited((c) => (c.listen.port = 2200));
    const files = {
      json: [join(dir, 'gate.json'), JSON.stringify(doc, null, 2)],
      yml: [join(dir, 'gate.yml'), stringify(doc)],
      // No known extension: read as YAML, which also accepts JSON.
      bare: [join(dir, 'gate.conf'), JSON.stringify(doc)],
    } as const;
    for (const [path, text] of Object.values(files)) writeFileSync(path, text);
    const fromJson = loadConfigFile(files.json[0]);
    assert.equal(fromJson.listen.port, 2200);
    assert.deepEqual(loadConfigFile(files.yml[0]), fromJson);
    assert.deepEqual(loadConfigFile(files.bare[0]), fromJson);
    assert.deepEqual(parse(doc, { format: 'json' }), fromJson);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const bad of BAD) {
  test(`rejects: ${bad.name}`, () => {
    const doc = edited(bad.edit);
    assertConfigError(() => parse(doc, { fips: bad.fips }), bad.code, bad.issues);
  });
}

test('rejects text that is not a config', async (t) => {
  const cases: {
    name: string;
    text: string;
    format: 'yaml' | 'json';
    code: ConfigErrorCode;
    path: string;
    message: string | RegExp;
  }[] = [
    {
      name: 'YAML duplicate key, with its line',
      text: 'fips: false\nlisten:\n  host_key: file:/k\n  port: 22\n  host_key: file:/other\n',
      format: 'yaml',
      code: 'CONFIG_SYNTAX',
      path: 'gate.yaml:5:3',
      message: 'Map keys must be unique',
    },
    {
      name: 'YAML unclosed flow sequence',
      text: 'listen:\n  host_key: file:/k\n  port: [2222\nusers: []\n',
      format: 'yaml',
      code: 'CONFIG_SYNTAX',
      path: 'gate.yaml:4:1',
      message: /flow sequence/i,
    },
    {
      name: 'JSON trailing comma, with line and column',
      text: '{\n  "listen": {"host_key": "file:/k",}\n}',
      format: 'json',
      code: 'CONFIG_SYNTAX',
      path: 'gate.json:2:36',
      message: /property name/,
    },
    {
      name: 'a list at the top level',
      text: '- listen\n- targets\n',
      format: 'yaml',
      code: 'CONFIG_INVALID',
      path: '(root)',
      message: 'must be object',
    },
    {
      name: 'an empty file',
      text: '',
      format: 'yaml',
      code: 'CONFIG_INVALID',
      path: '(root)',
      message: 'must be object',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.throws(
        () => parseConfig(c.text, { format: c.format, source: `gate.${c.format}` }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.code, c.code);
          assert.equal(err.issues.length, 1, err.message);
          const [issue] = err.issues;
          assert.equal(issue?.path, c.path);
          if (typeof c.message === 'string') assert.equal(issue?.message, c.message);
          else assert.match(issue?.message ?? '', c.message);
          assert.ok(err.message.split('\n').includes(`${issue?.path}: ${issue?.message}`));
          return true;
        },
      );
    });
  }
});

test('normal mode accepts chacha20; FIPS mode rejects the same file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-config-'));
  try {
    const path = join(dir, 'gate.yaml');
    const doc = edited(
      (c) =>
        (c.ssh = { client_leg: { cipher: ['aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] } }),
    );
    writeFileSync(path, stringify(doc));
    const normal = loadConfigFile(path);
    assert.deepEqual(normal.ssh?.client_leg?.cipher, [
      'aes256-gcm@openssh.com',
      'chacha20-poly1305@openssh.com',
    ]);
    assert.equal(normal.fips, false);
    const chacha = {
      path: 'ssh.client_leg.cipher[1]',
      message: 'chacha20-poly1305@openssh.com is not FIPS-approved [fips.no-chacha20]',
    };
    assertConfigError(() => loadConfigFile(path, { fips: true }), 'CONFIG_POLICY', [chacha]);
    // `fips: true` in the file has the same effect as the flag.
    writeFileSync(path, stringify({ ...doc, fips: true }));
    assertConfigError(() => loadConfigFile(path), 'CONFIG_POLICY', [chacha]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FIPS mode names approved ciphers this ssh2 build cannot run', () => {
  const doc = edited((c) => (c.ssh = { upstream_leg: { cipher: ['aes256-ctr'] } }));
  assert.equal(parse(doc).ssh?.upstream_leg?.cipher?.[0], 'aes256-ctr');
  assert.throws(
    () => parse(doc, { fips: true }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.code === 'CONFIG_POLICY' &&
      err.issues.length === 1 &&
      err.issues[0]?.path === 'ssh.upstream_leg.cipher[0]' &&
      err.issues[0].message.endsWith('[fips.approved-ssh-algorithm]'),
  );
});

test('an unreadable file is CONFIG_UNREADABLE and names the file', () => {
  const path = join(tmpdir(), 'sealgate-no-such-dir', 'gate.yaml');
  assert.throws(
    () => loadConfigFile(path),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.code === 'CONFIG_UNREADABLE' &&
      err.issues[0]?.path === path &&
      /ENOENT/.test(err.issues[0].message),
  );
});

test('toSsh2Algorithms maps the config keys to ssh2 names and copies the lists', () => {
  const lists = { kex: ['ecdh-sha2-nistp256'], server_host_key: ['ecdsa-sha2-nistp256'], compress: ['none'] };
  const out = toSsh2Algorithms(lists);
  assert.deepEqual(out, {
    kex: ['ecdh-sha2-nistp256'],
    serverHostKey: ['ecdsa-sha2-nistp256'],
    compress: ['none'],
  });
  out.kex?.push('curve25519-sha256');
  assert.deepEqual(lists.kex, ['ecdh-sha2-nistp256']);
});

test('toConfigPath turns JSON pointers into config paths', () => {
  assert.equal(toConfigPath(''), '(root)');
  assert.equal(toConfigPath('/targets/2/port'), 'targets[2].port');
  assert.equal(toConfigPath('/recording/recipients/0'), 'recording.recipients[0]');
  assert.equal(toConfigPath('/a~1b/c~0d'), 'a/b.c~d');
});

test('each key role gets its provider from its reference: file: is openssl, pkcs11: is the token', () => {
  const c = parse(
    edited((c) => {
      // The NSS softoken needs its database named at C_Initialize; other modules need no parameters.
      c.pkcs11 = {
        module: '/usr/lib/x86_64-linux-gnu/libsoftokn3.so',
        pin_file: '/etc/sealgate/token.pin',
        library_parameters:
          "configdir='sql:/var/lib/sealgate/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
      };
      c.recording.checkpoint_signer = 'pkcs11:token=NSS%20Certificate%20DB;object=checkpoint-signer';
      c.recording.recipients.push('pkcs11:token=NSS%20Certificate%20DB;object=escrow;type=public');
    }),
  );
  assert.match(c.pkcs11?.library_parameters ?? '', /^configdir='sql:/);
  assert.deepEqual(
    keyRoles(c).map((r) => [r.role, r.path, r.provider]),
    [
      ['host key', 'listen.host_key', 'openssl'],
      ['upstream client key', 'upstream.client_key', 'openssl'],
      ['recipient', 'recording.recipients[0]', 'openssl'],
      ['recipient', 'recording.recipients[1]', 'pkcs11'],
      ['checkpoint signer', 'recording.checkpoint_signer', 'pkcs11'],
    ],
  );
});
