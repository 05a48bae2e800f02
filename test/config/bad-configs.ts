/**
 * The bad-config corpus: a small valid config and edits that break it, each with the exact issues the
 * loader must report. config.test.ts checks the loader against it; test/cli/startup-checks.test.ts checks
 * that `config check` and `serve` refuse each one with the same message.
 */
import type { ConfigErrorCode, ConfigIssue } from '../../src/config/errors.js';

// Bad configs are ill-typed on purpose (a string where a number belongs), so edits work on loose data.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = Record<string, any>;

/** A small valid config with only required keys, three targets and two users. */
export function minimal(): Loose {
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

export function edited(edit: (c: Loose) => void): Loose {
  const c = minimal();
  edit(c);
  return c;
}

export interface BadCase {
  name: string;
  edit: (c: Loose) => void;
  fips?: boolean;
  code: ConfigErrorCode;
  issues: ConfigIssue[];
}

const KEY_REF = 'a key reference ("file:" and a PEM path, or an RFC 7512 "pkcs11:" URI)';

export const BAD: BadCase[] = [
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
    // A segment header holds at most 16 (FORMAT.md §3.1.1); serve would fail at the first segment.
    name: 'recording.recipients over 16',
    edit: (c) =>
      (c.recording.recipients = Array.from({ length: 17 }, (_, i) => `file:/etc/sealgate/r${i}.pem`)),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.recipients', message: 'must NOT have more than 16 items' }],
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
    name: 'a max_unlogged_bytes smaller than one SSH packet (a chunk could exceed it)',
    edit: (c) => ((c.recording as Record<string, unknown>).max_unlogged_bytes = 4096),
    code: 'CONFIG_INVALID',
    issues: [{ path: 'recording.max_unlogged_bytes', message: 'must be >= 32768' }],
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
  {
    name: 'limits: impossible max_startups, net block sizes, exempt entries and penalty window',
    edit: (c) => {
      c.limits = {
        max_startups: '10:30:5',
        per_source_net_block_size: '33:64',
        penalties: { min_seconds: 700, max_seconds: 600, exempt: ['10.0.0.0/8', 'gateway.example.com'] },
      };
    },
    code: 'CONFIG_INVALID',
    issues: [
      { path: 'limits.max_startups', message: 'full (5) must not be less than start (10)' },
      {
        path: 'limits.per_source_net_block_size',
        message: 'prefix lengths must be 1..32 for IPv4 and 1..128 for IPv6, got 33:64',
      },
      {
        path: 'limits.penalties.min_seconds',
        message: '700 is more than max_seconds (600): no penalty could ever apply',
      },
      {
        path: 'limits.penalties.exempt[1]',
        message:
          'must be an IP address or a CIDR block (for example "10.0.0.0/8"), got "gateway.example.com"',
      },
    ],
  },
  {
    name: 'limits: a waiting queue that could fill max_connections',
    edit: (c) => {
      c.limits = { max_connections: 400, max_waiting_connections: 300 };
    },
    code: 'CONFIG_INVALID',
    issues: [
      {
        path: 'limits.max_waiting_connections',
        message:
          'is 300, more than half of max_connections (400, configured): waiting connections could fill the gate; set it to 200 or less',
      },
    ],
  },
  {
    name: 'limits: max_waiting_connections below 0 and per_user_max_jumps 0',
    edit: (c) => {
      c.limits = { max_waiting_connections: -1, per_user_max_jumps: 0 };
    },
    code: 'CONFIG_INVALID',
    issues: [
      { path: 'limits.max_waiting_connections', message: 'must be >= 0' },
      { path: 'limits.per_user_max_jumps', message: 'must be >= 1' },
    ],
  },
  {
    name: 'limits: a misspelt key and a max_startups that is not start:rate:full',
    edit: (c) => {
      c.limits = { max_startup: 10, max_startups: '10:30', login_grace_seconds: 0 };
    },
    code: 'CONFIG_INVALID',
    issues: [
      { path: 'limits', message: 'unknown key "max_startup"' },
      { path: 'limits.login_grace_seconds', message: 'must be >= 1' },
      {
        path: 'limits.max_startups',
        message:
          'must be MaxStartups as "start:rate:full" (for example "10:30:100") or one number, got "10:30"',
      },
    ],
  },
];
