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

// dist/test/config/ → repository root.
const EXAMPLE = fileURLToPath(new URL('../../../deploy/examples/sealgate.yaml', import.meta.url));

// Bad configs are ill-typed on purpose (a string where a number belongs), so edits work on loose data.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

/** A small valid config with only required keys, three targets and two users. */
function minimal(): Loose {
  return {
    listen: { host_key: 'file:/etc/sealgate/host_key.pem' },
    targets: [
      { name: 'web1', host: '10.0.0.1', known_hosts: '/etc/sealgate/kh/web1' },
      { name: 'web2', host: 'web2.example.com', known_hosts: '/etc/sealgate/kh/web2' },
      { name: 'db', host: '::1', known_hosts: '/etc/sealgate/kh/db' },
    ],
    users: [
      { name: 'alice', authorized_keys: ['ssh-ed25519 AAAAC3Nza alice@x'], targets: ['*'] },
      { name: 'bob', authorized_keys_file: '/etc/sealgate/ak/bob', targets: ['web1', 'db'] },
    ],
    upstream: { client_key: 'file:/etc/sealgate/upstream.pem' },
    recording: {
      store: '/var/lib/sealgate',
      recipients: ['file:/etc/sealgate/customer.pub.pem'],
      checkpoint_signer: 'file:/etc/sealgate/signer.pem',
    },
  };
}

function parse(doc: unknown, opts: { fips?: boolean; format?: 'yaml' | 'json' } = {}): Config {
  const format = opts.format ?? 'yaml';
  const text = format === 'json' ? JSON.stringify(doc) : stringify(doc);
  return parseConfig(text, { format, source: `test.${format}`, fips: opts.fips });
}

function edited(edit: (c: Loose) => void): Loose {
  const c = minimal();
  edit(c);
  return c;
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

interface BadCase {
  name: string;
  edit: (c: Loose) => void;
  fips?: boolean;
  code: ConfigErrorCode;
  issues: ConfigIssue[];
}

const KEY_REF = 'a key reference ("file:" and a PEM path, or an RFC 7512 "pkcs11:" URI)';

const BAD: BadCase[] = [
  {
    name: 'port above 65535',
    edit: (c) => (c.targets[2].port = 70000),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'targets[2].port', message: 'must be <= 65535' }],
  },
  {
    name: 'unknown key',
    edit: (c) => (c.targets[0].prot = 22),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'targets[0]', message: 'unknown key "prot"' }],
  },
  {
    name: 'unknown top-level key',
    edit: (c) => (c.recordings = {}),
    code: 'CONFIG_INVALID',
    issues: [{ path: '(root)', message: 'unknown key "recordings"' }],
  },
  {
    name: 'missing host_key',
    edit: (c) => delete c.listen.host_key,
    code: 'CONFIG_INVALID',
    issues: [{ path: 'listen', message: 'missing required key "host_key"' }],
  },
  {
    name: 'key reference without file:',
    edit: (c) => (c.listen.host_key = '/etc/key.pem'),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'listen.host_key', message: `must be ${KEY_REF}, got "/etc/key.pem"` }],
  },
  {
    name: 'user names an unknown target',
    edit: (c) => (c.users[1].targets = ['web9', 'web1']),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'users[1].targets[0]', message: 'unknown target "web9"' }],
  },
  {
    name: 'duplicate target names',
    edit: (c) => (c.targets[1].name = 'web1'),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'targets[1].name', message: 'duplicate target name "web1" (first at targets[0])' }],
  },
  {
    name: 'duplicate user names',
    edit: (c) => (c.users[1].name = 'alice'),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'users[1].name', message: 'duplicate user name "alice" (first at users[0])' }],
  },
  {
    name: 'FIPS mode, chacha20 on the client leg',
    edit: (c) =>
      (c.ssh = { client_leg: { cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com'] } }),
    fips: true,
    code: 'CONFIG_POLICY',
    issues: [
      {
        path: 'ssh.client_leg.cipher[0]',
        message: 'chacha20-poly1305@openssh.com is not FIPS-approved [fips.no-chacha20]',
      },
    ],
  },
  {
    name: 'FIPS mode, curve25519 key exchange',
    edit: (c) => (c.ssh = { upstream_leg: { kex: ['ecdh-sha2-nistp256', 'curve25519-sha256'] } }),
    fips: true,
    code: 'CONFIG_POLICY',
    issues: [
      { path: 'ssh.upstream_leg.kex[1]', message: 'curve25519-sha256 is not FIPS-approved [fips.no-x25519]' },
    ],
  },
  {
    name: 'FIPS mode (set in the file), Ed25519 host key algorithm',
    edit: (c) => {
      c.fips = true;
      c.ssh = { client_leg: { server_host_key: ['ssh-ed25519'] } };
    },
    code: 'CONFIG_POLICY',
    issues: [
      // The policy says serverHostKey; the path must use the key the operator wrote.
      {
        path: 'ssh.client_leg.server_host_key[0]',
        message: 'ssh-ed25519 is not FIPS-approved [fips.no-ed25519]',
      },
    ],
  },
  {
    name: 'compression, refused in normal mode too',
    edit: (c) => (c.ssh = { upstream_leg: { compress: ['none', 'zlib@openssh.com'] } }),
    code: 'CONFIG_POLICY',
    issues: [
      {
        path: 'ssh.upstream_leg.compress[1]',
        message: 'zlib@openssh.com: only "none" is supported [fips.no-compression]',
      },
    ],
  },
  {
    name: 'both pin_file and pin_env',
    edit: (c) =>
      (c.pkcs11 = { module: '/usr/lib/softhsm/libsofthsm2.so', pin_file: '/run/pin', pin_env: 'PIN' }),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'pkcs11', message: 'sets "pin_file" and "pin_env"; exactly one is allowed' }],
  },
  {
    name: 'neither pin_file nor pin_env',
    edit: (c) => (c.pkcs11 = { module: '/usr/lib/softhsm/libsofthsm2.so' }),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'pkcs11', message: 'needs exactly one of "pin_file", "pin_env"' }],
  },
  {
    name: 'user without any keys',
    edit: (c) => delete c.users[1].authorized_keys_file,
    code: 'CONFIG_INVALID',
    issues: [{ path: 'users[1]', message: 'needs "authorized_keys" or "authorized_keys_file"' }],
  },
  {
    name: 'recording.recipients empty',
    edit: (c) => (c.recording.recipients = []),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.recipients', message: 'must not be empty' }],
  },
  {
    name: 'segment_max_records over 2^20',
    edit: (c) => (c.recording.segment_max_records = 1048577),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.segment_max_records', message: 'must be <= 1048576' }],
  },
  {
    name: 'a string where a number belongs',
    edit: (c) => (c.listen.port = '2222'),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'listen.port', message: 'must be integer' }],
  },
  {
    name: 'log level outside the enum',
    edit: (c) => (c.log = { level: 'verbose' }),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'log.level', message: 'must be one of "error", "warn", "info", "debug"' }],
  },
  {
    name: 'checkpoint interval of zero seconds',
    edit: (c) => (c.recording.checkpoint_every_seconds = 0),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.checkpoint_every_seconds', message: 'must be > 0' }],
  },
  {
    name: 'authorized key that is not an OpenSSH public key line',
    edit: (c) => (c.users[0].authorized_keys = ['ssh-ed25519 AAAA a@b', 'AAAAC3NzaC1lZDI1NTE5 a@b']),
    code: 'CONFIG_INVALID',
    issues: [
      {
        path: 'users[0].authorized_keys[1]',
        message:
          'must be an OpenSSH public key line ("ssh-ed25519 AAAA...", "ecdsa-sha2-nistp256 AAAA..."), got "AAAAC3NzaC1lZDI1NTE5 a@b"',
      },
    ],
  },
  {
    name: 'the same recipient twice',
    edit: (c) => c.recording.recipients.push(c.recording.recipients[0]),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.recipients[1]', message: 'repeats recording.recipients[0]' }],
  },
  {
    name: 'metrics on the SSH port',
    edit: (c) => (c.metrics = { enabled: true, port: 2222 }),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'metrics.port', message: '2222 is also listen.port' }],
  },
  {
    name: 'a PIN inside a pkcs11: URI',
    edit: (c) => {
      c.pkcs11 = { module: '/usr/lib/softhsm/libsofthsm2.so', pin_env: 'PIN' };
      c.recording.checkpoint_signer = 'pkcs11:token=sealgate;object=signer?pin-value=1234';
    },
    code: 'CONFIG_INVALID',
    issues: [
      {
        path: 'recording.checkpoint_signer',
        message: 'must not contain a PIN (pin-value); set pkcs11.pin_file or pkcs11.pin_env',
      },
    ],
  },
  {
    name: 'a pkcs11: key without a pkcs11 section',
    edit: (c) => (c.upstream.client_key = 'pkcs11:token=sealgate;object=upstream'),
    code: 'CONFIG_INVALID',
    issues: [
      { path: 'upstream.client_key', message: 'is a pkcs11: key, but the config has no "pkcs11" section' },
    ],
  },
  {
    name: 'pkcs11: URIs that name no token, or no object',
    edit: (c) => {
      c.pkcs11 = { module: '/usr/lib/softhsm/libsofthsm2.so', pin_env: 'PIN' };
      c.recording.checkpoint_signer = 'pkcs11:object=signer';
      c.upstream.client_key = 'pkcs11:token=sealgate;x-slot=2;object=upstream';
      c.listen.host_key = 'pkcs11:token=sealgate';
    },
    code: 'CONFIG_INVALID',
    issues: [
      {
        path: 'listen.host_key',
        message: 'names no key; add object=<label> (or id=<percent-encoded CKA_ID>)',
      },
      {
        path: 'upstream.client_key',
        message:
          'unsupported attribute(s) x-slot; supported: token, serial, model, manufacturer, slot-id, object, id, type, library-manufacturer, library-description',
      },
      {
        path: 'recording.checkpoint_signer',
        message: 'names no token; add token=<label> (or serial=<serial>)',
      },
    ],
  },
  {
    name: 'an empty pkcs11.library_parameters',
    edit: (c) =>
      (c.pkcs11 = { module: '/usr/lib/softhsm/libsofthsm2.so', pin_env: 'PIN', library_parameters: '' }),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'pkcs11.library_parameters', message: 'must not be empty' }],
  },
  {
    name: 'several problems at once, each reported once',
    edit: (c) => {
      c.targets[1].port = 0;
      c.users[0].name = 'Alice';
      delete c.upstream;
      c.ssh = { client_leg: { cipher: [] }, upstream_leg: { hmac: ['hmac-sha2-256', 'hmac-sha2-256'] } };
    },
    code: 'CONFIG_INVALID',
    issues: [
      { path: '(root)', message: 'missing required key "upstream"' },
      { path: 'ssh.client_leg.cipher', message: 'must not be empty' },
      { path: 'ssh.upstream_leg.hmac[1]', message: 'repeats ssh.upstream_leg.hmac[0]' },
      { path: 'targets[1].port', message: 'must be >= 1' },
      {
        path: 'users[0].name',
        message:
          'must be a user name (lower-case letters, digits, "_" and "-", not starting with a digit or "-"), got "Alice"',
      },
    ],
  },
];

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
