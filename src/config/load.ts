/**
 * Loading a config: text → data (YAML or JSON) → schema (ajv, with defaults) → cross-field checks →
 * algorithm policy. Each stage reports every problem it finds, as `path: message` lines, and the next stage
 * runs only on data the previous one accepted, so no message is a side effect of an earlier mistake.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Ajv, type DefinedError } from 'ajv';
import { parseDocument, type YAMLError } from 'yaml';
import { CryptoError } from '../crypto/errors.js';
import { parsePkcs11Uri } from '../crypto/pkcs11/uri.js';
import { Policy, type SshAlgorithmKind, type SshAlgorithms } from '../crypto/policy.js';
import { maxWaitingProblem, parseMaxStartups } from '../ssh/admission.js';
import { isAddressOrBlock, parseNetBlockSize } from '../ssh/source-address.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { CONFIG_SCHEMA, type Config, type KeyRef, type SshAlgorithmLists } from './schema.js';

export interface ParseOptions {
  format: 'yaml' | 'json';
  /** The file name (or a label) that error messages name. */
  source: string;
  /** Force FIPS mode whatever the config says (the `--fips` flag); it can turn FIPS on, never off. */
  fips?: boolean;
}

const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: true,
  // strictRequired refuses `anyOf: [{required: [a]}, {required: [b]}]`, the standard way to say "a or b"
  // (users' keys, the PKCS#11 PIN source). Every other strict check stays on.
  strictRequired: false,
  // Errors then carry the failing value and schema, which the messages below draw on.
  verbose: true,
});
const validate = ajv.compile<Config>(CONFIG_SCHEMA);

/** Reads and checks a config file. `.json` is parsed as JSON; anything else as YAML (a JSON superset). */
export function loadConfigFile(path: string, opts: { fips?: boolean } = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CONFIG_UNREADABLE', path, [{ path, message: (err as Error).message }], {
      cause: err,
    });
  }
  const format = extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseConfig(text, { format, source: path, fips: opts.fips });
}

/** Parses and checks config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, opts: ParseOptions): Config {
  // Editors on some platforms write a byte-order mark, which JSON.parse rejects.
  const body = text.replace(/^\uFEFF/, '');
  const data = opts.format === 'json' ? parseJson(body, opts.source) : parseYaml(body, opts.source);
  return validateConfig(data, opts);
}

/**
 * Checks already-parsed data (for configs built in code, e.g. by `sealgate init`). Fills in defaults in
 * place. The returned config's `fips` is the effective mode: `opts.fips || config.fips`.
 */
export function validateConfig(data: unknown, opts: { source: string; fips?: boolean }): Config {
  if (!validate(data)) {
    throw new ConfigError(
      'CONFIG_INVALID',
      opts.source,
      schemaIssues((validate.errors ?? []) as DefinedError[]),
    );
  }
  const config = data;
  const invalid = crossFieldIssues(config);
  if (invalid.length > 0) throw new ConfigError('CONFIG_INVALID', opts.source, invalid);
  config.fips = opts.fips === true || config.fips;
  const refused = policyIssues(config);
  if (refused.length > 0) throw new ConfigError('CONFIG_POLICY', opts.source, refused);
  return config;
}

/** The config's algorithm keys and ssh2's names for them. */
const ALGORITHM_KEYS: ReadonlyArray<readonly [keyof SshAlgorithmLists, SshAlgorithmKind]> = [
  ['kex', 'kex'],
  ['cipher', 'cipher'],
  ['hmac', 'hmac'],
  ['server_host_key', 'serverHostKey'],
  ['compress', 'compress'],
];

/**
 * Config lists in ssh2's shape, holding only the lists the config sets. ssh2 must always get explicit
 * lists (it filters its own defaults by `crypto.getCiphers()`, which knows nothing of the FIPS provider),
 * so lay the result over the policy's defaults: `{ ...policy.defaultSshAlgorithms(), ...toSsh2Algorithms(l) }`.
 */
export function toSsh2Algorithms(lists: SshAlgorithmLists): Partial<SshAlgorithms> {
  const out: Partial<SshAlgorithms> = {};
  for (const [key, ssh2Key] of ALGORITHM_KEYS) {
    const names = lists[key];
    if (names) out[ssh2Key] = [...names];
  }
  return out;
}

// --- text → data ---------------------------------------------------------------------------------------

function parseYaml(text: string, source: string): unknown {
  // YAML 1.2 core schema (the default): no YAML 1.1 surprises such as `on`/`yes` read as true or 0777 as octal.
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      'CONFIG_SYNTAX',
      source,
      doc.errors.map((e) => yamlIssue(source, e)),
    );
  }
  try {
    return doc.toJS();
  } catch (err) {
    // toJS refuses alias bombs ("billion laughs") rather than expanding them.
    throw new ConfigError('CONFIG_SYNTAX', source, [{ path: source, message: (err as Error).message }], {
      cause: err,
    });
  }
}

function yamlIssue(source: string, e: YAMLError): ConfigIssue {
  const at = e.linePos?.[0];
  // The yaml package appends " at line L, column C:" and a source excerpt; the position goes in the path.
  const message = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
  return { path: at ? `${source}:${at.line}:${at.col}` : source, message };
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // V8 gives a character offset ("... in JSON at position 42"); operators want a line and a column.
    const message = (err as Error).message;
    const m = / in JSON at position (\d+)/.exec(message);
    if (!m) throw new ConfigError('CONFIG_SYNTAX', source, [{ path: source, message }], { cause: err });
    const offset = Number(m[1]);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const col = offset - before.lastIndexOf('\n');
    throw new ConfigError(
      'CONFIG_SYNTAX',
      source,
      [{ path: `${source}:${line}:${col}`, message: message.slice(0, m.index) }],
      {
        cause: err,
      },
    );
  }
}

// --- schema errors → issues ----------------------------------------------------------------------------

/** `/targets/2/port` → `targets[2].port`; the empty pointer (the whole document) → `(root)`. */
export function toConfigPath(pointer: string): string {
  if (pointer === '') return '(root)';
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(seg) ? `[${seg}]` : path === '' ? seg : `.${seg}`;
  }
  return path;
}

function schemaIssues(errors: DefinedError[]): ConfigIssue[] {
  // ajv reports each failed anyOf/oneOf branch and then the combinator. Our branches are bare `required`
  // lists, so the combinator's own message says it all; the branch errors would only repeat it, wrongly
  // claiming that each key is required.
  const combinators = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const inBranch = (e: DefinedError): boolean =>
    combinators.some(
      (c) =>
        e.schemaPath.startsWith(`${c.schemaPath}/`) &&
        (e.instancePath === c.instancePath || e.instancePath.startsWith(`${c.instancePath}/`)),
    );
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  for (const e of errors) {
    if (inBranch(e)) continue;
    const issue = describe(e);
    const key = `${issue.path}\0${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  }
  return issues;
}

function describe(e: DefinedError): ConfigIssue {
  const path = toConfigPath(e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties':
      return { path, message: `unknown key "${e.params.additionalProperty}"` };
    case 'required':
      return { path, message: `missing required key "${e.params.missingProperty}"` };
    case 'type':
      return { path, message: `must be ${e.params.type}` };
    case 'enum':
      return { path, message: `must be one of ${e.params.allowedValues.map(quote).join(', ')}` };
    case 'pattern': {
      const what =
        (e.parentSchema?.description as string | undefined) ?? `a string matching ${e.params.pattern}`;
      return { path, message: `must be ${what}, got ${quote(e.data)}` };
    }
    case 'minItems':
    case 'minLength':
      return { path, message: e.params.limit === 1 ? 'must not be empty' : (e.message ?? 'is too short') };
    case 'uniqueItems':
      // ajv scans from the end, so `j` is the later of the two equal items: the one to remove.
      return { path: `${path}[${e.params.j}]`, message: `repeats ${path}[${e.params.i}]` };
    case 'anyOf':
    case 'oneOf':
      return { path, message: combinatorMessage(e) };
    default:
      // ajv's own wording is already right for the rest, e.g. maximum: "must be <= 65535".
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Names the keys of an "a or b" (anyOf) or "exactly one of a, b" (oneOf) rule built from `required`s. */
function combinatorMessage(e: Extract<DefinedError, { keyword: 'anyOf' | 'oneOf' }>): string {
  const branches = (e.schema ?? []) as { required?: string[] }[];
  const keys = branches.map((b) => b.required?.map(quote).join(' and '));
  if (keys.some((k) => k === undefined)) return e.message ?? `fails ${e.keyword}`;
  if (e.keyword === 'anyOf') return `needs ${keys.join(' or ')}`;
  const passing = e.params.passingSchemas;
  if (passing) return `sets ${passing.map((i) => keys[i]).join(' and ')}; exactly one is allowed`;
  return `needs exactly one of ${keys.join(', ')}`;
}

function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// --- checks across fields ------------------------------------------------------------------------------

function crossFieldIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];

  // Names route sessions (`user+target@gate`) and label recordings, so each must mean one thing.
  const duplicates = (what: string, list: { name: string }[], at: string): void => {
    const first = new Map<string, number>();
    list.forEach(({ name }, i) => {
      const j = first.get(name);
      if (j === undefined) first.set(name, i);
      else
        issues.push({
          path: `${at}[${i}].name`,
          message: `duplicate ${what} name "${name}" (first at ${at}[${j}])`,
        });
    });
  };
  duplicates('target', config.targets, 'targets');
  duplicates('user', config.users, 'users');

  const targetNames = new Set(config.targets.map((t) => t.name));
  config.users.forEach((user, i) => {
    user.targets.forEach((name, k) => {
      if (name !== '*' && !targetNames.has(name)) {
        issues.push({ path: `users[${i}].targets[${k}]`, message: `unknown target "${name}"` });
      }
    });
  });

  const { listen, metrics } = config;
  if (metrics.enabled && metrics.port === listen.port && hostsOverlap(metrics.host, listen.host)) {
    issues.push({ path: 'metrics.port', message: `${metrics.port} is also listen.port` });
  }

  issues.push(...limitsIssues(config.limits));

  for (const [path, ref] of keyRefs(config)) {
    if (!ref.startsWith('pkcs11:')) continue;
    // RFC 7512 allows a PIN inside the URI; a PIN must never sit in the config (BRIEF section 5).
    if (/[?&;]pin-value=/.test(ref)) {
      issues.push({
        path,
        message: 'must not contain a PIN (pin-value); set pkcs11.pin_file or pkcs11.pin_env',
      });
    } else if (!config.pkcs11) {
      // The module and the PIN source for every pkcs11: key come from the `pkcs11` section.
      issues.push({ path, message: 'is a pkcs11: key, but the config has no "pkcs11" section' });
    } else {
      // Checked now, not at the first checkpoint: a URI that names no token or no object is a config error.
      try {
        parsePkcs11Uri(ref);
      } catch (err) {
        if (!(err instanceof CryptoError)) throw err;
        issues.push({ path, message: err.message.replace(/^key reference ".*?": /, '') });
      }
    }
  }
  return issues;
}

/** What the schema's patterns cannot say about `limits`: orders and ranges inside the strings. */
function limitsIssues(limits: Config['limits']): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const startups = parseMaxStartups(limits.max_startups);
  if (typeof startups === 'string') issues.push({ path: 'limits.max_startups', message: startups });
  const { v4, v6 } = parseNetBlockSize(limits.per_source_net_block_size);
  if (v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128)
    issues.push({
      path: 'limits.per_source_net_block_size',
      message: `prefix lengths must be 1..32 for IPv4 and 1..128 for IPv6, got ${v4}:${v6}`,
    });
  if (limits.max_waiting_connections !== undefined && limits.max_connections !== undefined) {
    const problem = maxWaitingProblem(limits.max_waiting_connections, limits.max_connections, 'configured');
    if (problem) issues.push({ path: 'limits.max_waiting_connections', message: problem });
  }
  const p = limits.penalties;
  if (p.min_seconds > p.max_seconds)
    issues.push({
      path: 'limits.penalties.min_seconds',
      message: `${p.min_seconds} is more than max_seconds (${p.max_seconds}): no penalty could ever apply`,
    });
  p.exempt.forEach((e, i) => {
    if (!isAddressOrBlock(e))
      issues.push({
        path: `limits.penalties.exempt[${i}]`,
        message: `must be an IP address or a CIDR block (for example "10.0.0.0/8"), got ${quote(e)}`,
      });
  });
  return issues;
}

/** The keys a gate uses, by role. */
export type KeyRole = 'host key' | 'upstream client key' | 'recipient' | 'checkpoint signer';

export interface KeyRoleRef {
  readonly role: KeyRole;
  /** Where the config sets it, e.g. `recording.checkpoint_signer`. */
  readonly path: string;
  readonly ref: KeyRef;
  /**
   * The backend that serves it, from the reference's scheme: `file:` → `openssl`, `pkcs11:` →
   * `pkcs11` (the module in the `pkcs11` section). This is the per-role provider choice.
   */
  readonly provider: 'openssl' | 'pkcs11';
}

/** Every key the config names, with its role and the provider that will serve it. */
export function keyRoles(config: Config): KeyRoleRef[] {
  const roles: Record<string, KeyRole> = {
    'listen.host_key': 'host key',
    'upstream.client_key': 'upstream client key',
    'recording.checkpoint_signer': 'checkpoint signer',
  };
  return keyRefs(config).map(([path, ref]) => ({
    role: roles[path] ?? 'recipient',
    path,
    ref,
    provider: ref.startsWith('pkcs11:') ? 'pkcs11' : 'openssl',
  }));
}

/** Two listeners collide on one port when they share an address or either takes every address. */
function hostsOverlap(a: string, b: string): boolean {
  const any = (h: string): boolean => h === '0.0.0.0' || h === '::';
  return a === b || any(a) || any(b);
}

function keyRefs(config: Config): [string, KeyRef][] {
  return [
    ['listen.host_key', config.listen.host_key],
    ['upstream.client_key', config.upstream.client_key],
    ...config.recording.recipients.map((r, i): [string, KeyRef] => [`recording.recipients[${i}]`, r]),
    ['recording.checkpoint_signer', config.recording.checkpoint_signer],
  ];
}

// --- algorithm policy ----------------------------------------------------------------------------------

function policyIssues(config: Config): ConfigIssue[] {
  const policy = new Policy(config.fips);
  const issues: ConfigIssue[] = [];
  for (const leg of ['client_leg', 'upstream_leg'] as const) {
    const lists = config.ssh?.[leg];
    if (!lists) continue;
    const prefix = `ssh.${leg}`;
    for (const [key, ssh2Key] of ALGORITHM_KEYS) {
      const names = lists[key];
      if (!names) continue;
      for (const v of policy.sshAlgorithmViolations(prefix, { [ssh2Key]: names })) {
        // The policy names the list in ssh2's camelCase; the operator wrote the config's snake_case key.
        const path = `${prefix}.${key}${v.path.slice(`${prefix}.${ssh2Key}`.length)}`;
        issues.push({ path, message: `${v.message} [${v.rule}]` });
      }
    }
  }
  return issues;
}
