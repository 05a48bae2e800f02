/**
 * The gate's configuration: a JSON Schema (draft-07, checked by ajv in src/config/load.ts) and the
 * TypeScript type of a config after validation, with every default filled in.
 *
 * Conventions:
 * - Every object sets `additionalProperties: false`: a misspelt key is an error, never silently ignored.
 *   For a security gate, `alow_port_forwarding: true` being dropped without a word is the worst outcome.
 * - Defaults live in the schema (ajv `useDefaults`), so the schema is the one place that says what an
 *   omitted key means. Objects whose keys all have defaults default to `{}` so their defaults apply too.
 * - A `pattern` carries a `description` written as a noun phrase; the loader turns a mismatch into
 *   "must be <description>" instead of echoing the regular expression at the operator.
 * - Secrets never live here: keys are references (`file:` or `pkcs11:`), a PIN comes from a file or an
 *   environment variable.
 */

/** A private or public key: `file:` and a PEM path, or an RFC 7512 `pkcs11:` URI. */
export type KeyRef = `file:${string}` | `pkcs11:${string}`;

/** SSH algorithm lists for one leg, in OpenSSH names. An omitted list means the policy's default. */
export interface SshAlgorithmLists {
  kex?: string[];
  cipher?: string[];
  hmac?: string[];
  server_host_key?: string[];
  compress?: string[];
}

export interface LogConfig {
  level: 'error' | 'warn' | 'info' | 'debug';
  /** Log to this file; standard error when omitted. */
  file?: string;
  format: 'json' | 'text';
}

export interface ListenConfig {
  host: string;
  port: number;
  host_key: KeyRef;
}

export interface SshConfig {
  client_leg?: SshAlgorithmLists;
  upstream_leg?: SshAlgorithmLists;
  /** Text shown to clients before authentication. */
  banner?: string;
}

export interface Target {
  /** What users type in `user+name@gate`. */
  name: string;
  host: string;
  port: number;
  /** The remote user; when omitted, the gate user's own name. */
  user?: string;
  /** The target's pinned host keys, in OpenSSH known_hosts format. */
  known_hosts: string;
  /** Whether a session may continue when its recording cannot be sealed or stored. */
  on_record_failure: 'fail-closed' | 'fail-open';
  /**
   * When the client's bytes pass to the target: once sealed (`when-sealed`, the default; durable within
   * one group commit) or only once their record is fsynced (`when-durable`; SECURITY.md).
   */
  forward_input: 'when-sealed' | 'when-durable';
  allow_port_forwarding: boolean;
}

export interface User {
  name: string;
  /** OpenSSH public key lines. */
  authorized_keys?: string[];
  /** A path to an OpenSSH authorized_keys file. */
  authorized_keys_file?: string;
  /** Target names this user may reach; `"*"` means all. */
  targets: string[];
}

export interface UpstreamConfig {
  /** The key the gate authenticates with to targets. */
  client_key: KeyRef;
}

export interface RecordingConfig {
  /** Directory of the append-only segment store. */
  store: string;
  /** The log's origin (docs/FORMAT.md §1): names the log in every checkpoint. `sealgate serve` uses
   * `<hostname>/sealgate` when it is omitted. */
  origin?: string;
  /** The customer's public keys; every segment's data key is wrapped to each. */
  recipients: KeyRef[];
  checkpoint_signer: KeyRef;
  checkpoint_every_records: number;
  checkpoint_every_seconds: number;
  heartbeat_seconds: number;
  fsync_every_records: number;
  fsync_every_ms: number;
  /**
   * Bytes the gate may have forwarded (both directions, all sessions together) whose records are not yet
   * fsynced; beyond it, forwarding waits for the disk. What a failing disk can lose from the log.
   */
  max_unlogged_bytes: number;
  segment_max_records: number;
  segment_max_seconds: number;
  segment_max_bytes: number;
}

/**
 * The token that holds `pkcs11:` keys. There is no per-key `provider` field: a key's reference already
 * says where it lives (`file:` → OpenSSL, `pkcs11:` → this module), so a second field could only
 * contradict it (docs/HSM.md, "Choosing the provider per key").
 */
export interface Pkcs11Config {
  /** Path to the token's PKCS#11 module (`.so`). */
  module: string;
  /** Exactly one of `pin_file` and `pin_env` is set. */
  pin_file?: string;
  pin_env?: string;
  /** NSS softoken only: the C_Initialize library parameters (`configdir='sql:DIR' …`). */
  library_parameters?: string;
}

/** Pre-authentication limits (docs/OPERATIONS.md, "Limits"), modelled on sshd's. */
export interface PenaltiesConfig {
  enabled: boolean;
  authfail_seconds: number;
  noauth_seconds: number;
  grace_exceeded_seconds: number;
  min_seconds: number;
  max_seconds: number;
  /** Addresses and CIDR blocks that are never penalised. */
  exempt: string[];
}

export interface LimitsConfig {
  /** From TCP accept to authentication, as sshd's LoginGraceTime. */
  login_grace_seconds: number;
  /** Refused attempts before the connection is dropped, as sshd's MaxAuthTries. */
  max_auth_tries: number;
  /** Random early drop of unauthenticated connections, `start:rate:full`, as sshd's MaxStartups. */
  max_startups: string;
  per_source_max_startups: number;
  per_source_max_connections: number;
  /** ProxyJumps open at once per gate user, over all its connections: each holds an upstream socket. */
  per_user_max_jumps: number;
  /** Connections waiting for their source's startup slot, in all; default a quarter of max_connections, at most 1,000. */
  max_waiting_connections?: number;
  /** `v4:v6` prefix lengths that group sources, as sshd's PerSourceNetBlockSize. */
  per_source_net_block_size: string;
  /** Client connections at most; when omitted, what the file-descriptor budget allows. */
  max_connections?: number;
  penalties: PenaltiesConfig;
}

export interface MetricsConfig {
  enabled: boolean;
  host: string;
  port: number;
}

/** A validated config. Keys with defaults are always present; `ssh` and `pkcs11` are optional. */
export interface Config {
  fips: boolean;
  log: LogConfig;
  listen: ListenConfig;
  ssh?: SshConfig;
  targets: Target[];
  users: User[];
  upstream: UpstreamConfig;
  recording: RecordingConfig;
  pkcs11?: Pkcs11Config;
  limits: LimitsConfig;
  /** Always present (defaults to disabled), so callers need not test for it. */
  metrics: MetricsConfig;
}

/** Segment roll-over limits from the seal format (BRIEF section 2): 2^20 records, 1 hour, 1 GiB. */
export const SEGMENT_LIMITS = { records: 1048576, seconds: 3600, bytes: 1073741824 } as const;

/**
 * `recording.max_unlogged_bytes` (SECURITY.md, "The unlogged window"): the default, chosen from
 * bench/ssh-throughput.ts (README, Benchmarks), and the least, one ssh2 channel packet.
 */
export const DEFAULT_UNLOGGED_BYTES = 4 * 1024 * 1024;
export const MIN_UNLOGGED_BYTES = 32 * 1024;

// Building blocks, inlined where used (rather than `$ref`s) so each error's schemaPath is unique.

const nonEmptyString = { type: 'string', minLength: 1 } as const;

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

const keyRef = {
  type: 'string',
  pattern: '^(file:.+|pkcs11:.+)$',
  description: 'a key reference ("file:" and a PEM path, or an RFC 7512 "pkcs11:" URI)',
} as const;

const algorithmList = {
  type: 'array',
  minItems: 1,
  uniqueItems: true,
  items: nonEmptyString,
} as const;

const sshAlgorithmLists = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kex: algorithmList,
    cipher: algorithmList,
    hmac: algorithmList,
    server_host_key: algorithmList,
    compress: algorithmList,
  },
} as const;

const target = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'host', 'known_hosts'],
  properties: {
    // Lower case and no '+' or '@', so `user+target@gate` routing is unambiguous.
    name: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
      description: 'a target name (lower-case letters, digits, ".", "_" and "-"; at most 63 characters)',
    },
    host: {
      type: 'string',
      pattern: '^[A-Za-z0-9._:%-]+$',
      description: 'a hostname or an IP address',
    },
    port: { ...port, default: 22 },
    user: nonEmptyString,
    known_hosts: nonEmptyString,
    on_record_failure: { type: 'string', enum: ['fail-closed', 'fail-open'], default: 'fail-closed' },
    forward_input: { type: 'string', enum: ['when-sealed', 'when-durable'], default: 'when-sealed' },
    allow_port_forwarding: { type: 'boolean', default: false },
  },
} as const;

const user = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'targets'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_-]{0,31}$',
      description: 'a user name (lower-case letters, digits, "_" and "-", not starting with a digit or "-")',
    },
    authorized_keys: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'string',
        pattern: '^(ssh-|ecdsa-sha2-|sk-)',
        description: 'an OpenSSH public key line ("ssh-ed25519 AAAA...", "ecdsa-sha2-nistp256 AAAA...")',
      },
    },
    authorized_keys_file: nonEmptyString,
    // Names are checked against `targets` after the schema, where the message can say which is unknown.
    targets: { type: 'array', minItems: 1, uniqueItems: true, items: nonEmptyString },
  },
  anyOf: [{ required: ['authorized_keys'] }, { required: ['authorized_keys_file'] }],
} as const;

export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'sealgate configuration',
  type: 'object',
  additionalProperties: false,
  required: ['listen', 'targets', 'users', 'upstream', 'recording'],
  properties: {
    fips: { type: 'boolean', default: false },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { type: 'string', enum: ['error', 'warn', 'info', 'debug'], default: 'info' },
        file: nonEmptyString,
        format: { type: 'string', enum: ['json', 'text'], default: 'json' },
      },
    },
    listen: {
      type: 'object',
      additionalProperties: false,
      required: ['host_key'],
      properties: {
        host: { ...nonEmptyString, default: '127.0.0.1' },
        port: { ...port, default: 2222 },
        host_key: keyRef,
      },
    },
    ssh: {
      type: 'object',
      additionalProperties: false,
      properties: {
        client_leg: sshAlgorithmLists,
        upstream_leg: sshAlgorithmLists,
        banner: { type: 'string' },
      },
    },
    targets: { type: 'array', minItems: 1, items: target },
    users: { type: 'array', minItems: 1, items: user },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['client_key'],
      properties: { client_key: keyRef },
    },
    recording: {
      type: 'object',
      additionalProperties: false,
      required: ['store', 'recipients', 'checkpoint_signer'],
      properties: {
        store: nonEmptyString,
        // FORMAT.md §3.1: a C2SP signed-note key name, so no white space, "+" or control characters.
        origin: {
          type: 'string',
          pattern: '^[^\\s+\\u0000-\\u001f\\u007f\\u0085]{1,255}$',
          description: 'a log origin (at most 255 characters; no white space, "+" or control characters)',
        },
        // FORMAT.md §3.1.1: a segment header holds 1..16 recipients (MAX_RECIPIENTS).
        recipients: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: keyRef },
        checkpoint_signer: keyRef,
        checkpoint_every_records: { type: 'integer', minimum: 1, default: 1000 },
        checkpoint_every_seconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
        heartbeat_seconds: { type: 'number', exclusiveMinimum: 0, default: 60 },
        fsync_every_records: { type: 'integer', minimum: 1, default: 64 },
        fsync_every_ms: { type: 'integer', minimum: 1, default: 50 },
        // At least one ssh2 packet (32 KiB), so that the cap is a true bound; at most 1 TiB ("no cap").
        max_unlogged_bytes: {
          type: 'integer',
          minimum: MIN_UNLOGGED_BYTES,
          maximum: 2 ** 40,
          default: DEFAULT_UNLOGGED_BYTES,
        },
        // The maxima are the seal format's own limits: configs may roll over sooner, never later.
        segment_max_records: {
          type: 'integer',
          minimum: 1,
          maximum: SEGMENT_LIMITS.records,
          default: SEGMENT_LIMITS.records,
        },
        segment_max_seconds: {
          type: 'integer',
          minimum: 1,
          maximum: SEGMENT_LIMITS.seconds,
          default: SEGMENT_LIMITS.seconds,
        },
        segment_max_bytes: {
          type: 'integer',
          minimum: 1,
          maximum: SEGMENT_LIMITS.bytes,
          default: SEGMENT_LIMITS.bytes,
        },
      },
    },
    pkcs11: {
      type: 'object',
      additionalProperties: false,
      required: ['module'],
      properties: {
        module: nonEmptyString,
        pin_file: nonEmptyString,
        pin_env: nonEmptyString,
        library_parameters: nonEmptyString,
      },
      // The PIN source is a file or a variable, never both: two sources would make it unclear which is used.
      oneOf: [{ required: ['pin_file'] }, { required: ['pin_env'] }],
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        login_grace_seconds: { type: 'integer', minimum: 1, maximum: 3600, default: 120 },
        max_auth_tries: { type: 'integer', minimum: 1, maximum: 100, default: 6 },
        max_startups: {
          type: 'string',
          pattern: '^[0-9]{1,6}(:[0-9]{1,3}:[0-9]{1,6})?$',
          description: 'MaxStartups as "start:rate:full" (for example "10:30:100") or one number',
          default: '10:30:100',
        },
        per_source_max_startups: { type: 'integer', minimum: 1, default: 5 },
        per_source_max_connections: { type: 'integer', minimum: 1, default: 100 },
        max_waiting_connections: { type: 'integer', minimum: 0 },
        per_user_max_jumps: { type: 'integer', minimum: 1, default: 100 },
        per_source_net_block_size: {
          type: 'string',
          pattern: '^[0-9]{1,2}:[0-9]{1,3}$',
          description: 'prefix lengths as "v4:v6" (for example "32:128")',
          default: '32:128',
        },
        max_connections: { type: 'integer', minimum: 1 },
        penalties: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: true },
            authfail_seconds: { type: 'number', minimum: 0, default: 5 },
            noauth_seconds: { type: 'number', minimum: 0, default: 1 },
            grace_exceeded_seconds: { type: 'number', minimum: 0, default: 20 },
            min_seconds: { type: 'number', minimum: 0, default: 15 },
            max_seconds: { type: 'number', minimum: 1, default: 600 },
            exempt: { type: 'array', uniqueItems: true, items: nonEmptyString, default: [] },
          },
        },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        // Loopback by default: metrics are opt-in and not meant for the network (BRIEF section 6).
        host: { ...nonEmptyString, default: '127.0.0.1' },
        port: { ...port, default: 9464 },
      },
    },
  },
} as const;
