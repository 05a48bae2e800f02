/**
 * The start-up checks that `sealgate config check` and `sealgate serve` share, so that "config check says
 * OK" means "serve starts and can record". Everything serve would otherwise find out later (at the first
 * segment, the first checkpoint, the first client) is checked here, once, before anything listens:
 *
 * - the provider: FIPS runtime and module in FIPS mode, known-answer self-tests always, and the PKCS#11
 *   module when the config has a `pkcs11` section;
 * - every key the config names (keyRoles), loaded through the provider as serve loads it, checked for
 *   its role, and used once (a test wrap or signature), so a token key without the right usage fails now:
 *   - `listen.host_key`: ECDSA P-256/P-384, a file key, listed in ssh.client_leg.server_host_key;
 *   - `upstream.client_key`: a private key the policy accepts;
 *   - `recording.recipients[i]`: RSA for RSA-OAEP-SHA-256, ≥ 3072 bits (2048 with a warning);
 *   - `recording.checkpoint_signer`: an ECDSA P-384 private key;
 * - the files and directories: the store (creatable or writable, and of this origin), `log.file`;
 * - `listen.host` resolves;
 * - `limits.max_connections` fits this process's file-descriptor budget.
 *
 * Problems become one ConfigError (CONFIG_STARTUP) naming each as `path (key or file): problem`; what
 * serve only warns about comes back as warnings (an RSA-2048 recipient; connectionWarnings: known_hosts
 * that pin nothing, authorized keys that are skipped). Not checked, because only binding or running can tell: that the port is free and may be
 * bound, and that no other gate holds the store's lock (docs/OPERATIONS.md, "Checking a config").
 */
import { lookup } from 'node:dns/promises';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, formatIssue, type ConfigIssue } from '../config/errors.js';
import { keyRoles, type KeyRoleRef } from '../config/load.js';
import type { Config } from '../config/schema.js';
import {
  createProvider,
  CryptoError,
  hashForCurve,
  type KeyAlgorithm,
  type Pkcs11Settings,
  type PrivateKey,
  type PublicKey,
  type RoutingProvider,
  type SignatureScheme,
} from '../crypto/index.js';
import { assertStartupOk, type StartupReport } from '../crypto/startup.js';
import { SealError } from '../seal/errors.js';
import { RECOMMENDED_RSA_BITS } from '../seal/sealer.js';
import { LocalStore, STORE_FILES } from '../seal/store.js';
import { maxWaitingProblem } from '../ssh/admission.js';
import { AllowList } from '../ssh/auth.js';
import { fdBudget, readFdLimits } from '../ssh/fd-budget.js';
import { gateHostKey } from '../ssh/host-key.js';
import { parseKnownHosts, pinnedKeys } from '../ssh/known-hosts.js';

/** Something serve accepts but logs: `path (ref): message`, as an issue is printed. */
export type StartupWarning = ConfigIssue;

export interface StartedGate {
  /** The provider serve goes on with; the caller closes it. */
  readonly provider: RoutingProvider;
  readonly report: StartupReport;
  readonly recipients: PublicKey[];
  readonly signingKey: PrivateKey;
  /** `recording.origin`, or the default for this host. */
  readonly origin: string;
  /** Keys accepted with a warning (an RSA-2048 recipient): serve logs them. */
  readonly warnings: StartupWarning[];
}

/** `<hostname>/sealgate`, made a valid origin (FORMAT.md §3.1). */
export function defaultOrigin(): string {
  return `${hostname().replace(/[^\x21-\x7e]|\+/g, '-') || 'localhost'}/sealgate`;
}

export function pkcs11Settings(config: Config): Pkcs11Settings | undefined {
  const p = config.pkcs11;
  if (!p) return undefined;
  return {
    module: p.module,
    ...(p.pin_file ? { pinFile: p.pin_file } : {}),
    ...(p.pin_env ? { pinEnv: p.pin_env } : {}),
    ...(p.library_parameters ? { libraryParameters: p.library_parameters } : {}),
  };
}

/** The warning (or issue) as one line, the way config check prints it and serve logs it. */
export const formatWarning = formatIssue;

/**
 * Runs every start-up check on a loaded config (`source` is its file name, for the message). Throws
 * ConfigError CONFIG_STARTUP listing every problem; FipsSetupError or a SELF_TEST_FAILED CryptoError when
 * the provider itself cannot start. On success the caller owns the provider.
 */
export async function runStartupChecks(config: Config, source: string): Promise<StartedGate> {
  let started: Awaited<ReturnType<typeof createProvider>>;
  try {
    started = await createProvider({ fips: config.fips, pkcs11: pkcs11Settings(config) });
  } catch (err) {
    // A PKCS#11 module that cannot be loaded or initialized is the `pkcs11` section's problem.
    if (!(err instanceof CryptoError) || !config.pkcs11) throw err;
    throw new ConfigError('CONFIG_STARTUP', source, [
      { path: 'pkcs11.module', ref: config.pkcs11.module, message: err.message },
    ]);
  }
  const { provider, report } = started;
  try {
    assertStartupOk(report);
    const issues: ConfigIssue[] = [];
    const warnings: StartupWarning[] = [];
    const recipients: PublicKey[] = [];
    let signingKey: PrivateKey | undefined;
    for (const role of keyRoles(config)) {
      const problem = (message: string): void => {
        issues.push({ path: role.path, ref: role.ref, message });
      };
      try {
        switch (role.role) {
          case 'host key':
            await checkHostKey(provider, config, role, problem);
            break;
          case 'upstream client key':
            await checkUpstreamKey(provider, role, problem);
            break;
          case 'recipient': {
            const key = await checkRecipient(provider, role, problem, (message) =>
              warnings.push({ path: role.path, ref: role.ref, message }),
            );
            if (key) recipients.push(key);
            break;
          }
          case 'checkpoint signer':
            signingKey = await checkSigner(provider, role, problem);
            break;
        }
      } catch (err) {
        if (!(err instanceof CryptoError)) throw err;
        problem(roleHint(role, err));
      }
    }
    const origin = config.recording.origin ?? defaultOrigin();
    issues.push(...(await storeIssues(config, origin)));
    issues.push(...fileIssues(config));
    issues.push(...(await listenIssues(config)));
    issues.push(...fdIssues(config));
    if (issues.length > 0) throw new ConfigError('CONFIG_STARTUP', source, issues);
    if (!signingKey) throw new Error('no checkpoint signer after the checks'); // unreachable: issues above
    return { provider, report, recipients, signingKey, origin, warnings };
  } catch (err) {
    provider.close();
    throw err;
  }
}

type Problem = (message: string) => void;

/**
 * `limits.max_connections` against this process's file-descriptor budget (src/ssh/fd-budget.ts), as
 * startGate checks it. For `config check` the limit is the shell's: a gate started by systemd has
 * LimitNOFILE's, which the message names.
 */
function fdIssues(config: Config): ConfigIssue[] {
  const wanted = config.limits.max_connections;
  const budget = fdBudget(readFdLimits());
  if (budget.clientConnections < 1)
    return [
      {
        path: '(process)',
        message: `no file descriptors left for connections: the limit is ${budget.soft}, ${budget.open} are open and ${budget.reserve} are reserved; raise it (ulimit -n, or LimitNOFILE= in the systemd unit)`,
      },
    ];
  const waiting = config.limits.max_waiting_connections;
  if (wanted === undefined && waiting !== undefined) {
    const problem = maxWaitingProblem(waiting, budget.clientConnections, 'from the file-descriptor budget');
    if (problem) return [{ path: 'limits.max_waiting_connections', message: problem }];
  }
  if (wanted === undefined || wanted <= budget.clientConnections) return [];
  return [
    {
      path: 'limits.max_connections',
      message: `is ${wanted}, but this process's file-descriptor limit (${budget.soft}, ${budget.open} open, ${budget.reserve} reserved) allows ${budget.clientConnections} (two sockets each); raise the limit (ulimit -n, or LimitNOFILE= in the systemd unit) or lower max_connections`,
    },
  ];
}

/** A CryptoError's message, with what the role needs when a size rule refused the key. */
function roleHint(role: KeyRoleRef, err: CryptoError): string {
  const message = err.message.startsWith(`${role.ref}: `)
    ? err.message.slice(role.ref.length + 2)
    : err.message;
  if (err.rule === 'suite.rsa-min-2048' && role.role === 'recipient') {
    return `${message}; RSA-OAEP recipients need ≥ ${RECOMMENDED_RSA_BITS} bits (2048 accepted with a warning)`;
  }
  return message;
}

function keyName(alg: KeyAlgorithm): string {
  switch (alg.type) {
    case 'rsa':
      return `RSA-${alg.bits}`;
    case 'ec':
      return `ECDSA ${alg.curve}`;
    case 'ed25519':
      return 'Ed25519';
  }
}

/** Every name starts with a vowel sound: an RSA, an ECDSA, an Ed25519. */
const describeKey = (alg: KeyAlgorithm): string => `an ${keyName(alg)} key`;

async function checkHostKey(
  provider: RoutingProvider,
  config: Config,
  role: KeyRoleRef,
  problem: Problem,
): Promise<void> {
  const key = await provider.loadPrivateKey(role.ref);
  const gateKey = gateHostKey(provider, config, key);
  if ('problem' in gateKey) problem(gateKey.problem);
}

/** The scheme the gate signs with for this key (provider-agent.ts, signer.ts). */
function testScheme(alg: KeyAlgorithm): SignatureScheme {
  switch (alg.type) {
    case 'ec':
      return { scheme: 'ecdsa', hash: hashForCurve(alg.curve), encoding: 'p1363' };
    case 'rsa':
      return { scheme: 'rsa-pkcs1v15', hash: 'sha256' };
    case 'ed25519':
      return { scheme: 'ed25519' };
  }
}

/** Signs once and verifies: a token key without CKA_SIGN, or a broken one, fails at start. */
async function testSignature(provider: RoutingProvider, key: PrivateKey, problem: Problem): Promise<void> {
  const data = provider.randomBytes(32);
  const scheme = testScheme(key.algorithm);
  const signature = await provider.sign(key, data, scheme);
  if (!provider.verify(key.publicKey, data, signature, scheme)) {
    problem('a test signature does not verify with its public key');
  }
}

async function checkUpstreamKey(
  provider: RoutingProvider,
  role: KeyRoleRef,
  problem: Problem,
): Promise<void> {
  const key = await loadPrivate(provider, role, problem, 'the gate logs in to targets with it');
  if (key) await testSignature(provider, key, problem);
}

async function checkRecipient(
  provider: RoutingProvider,
  role: KeyRoleRef,
  problem: Problem,
  warn: (message: string) => void,
): Promise<PublicKey | undefined> {
  const key = await provider.loadPublicKey(role.ref);
  if (key.algorithm.type !== 'rsa') {
    problem(
      `is ${describeKey(key.algorithm)}; recipients must be RSA keys (segment keys are wrapped with RSA-OAEP-SHA-256, ≥ ${RECOMMENDED_RSA_BITS} bits)`,
    );
    return undefined;
  }
  if (key.algorithm.bits < RECOMMENDED_RSA_BITS) {
    warn(
      `RSA-${key.algorithm.bits} is accepted, but ${RECOMMENDED_RSA_BITS} bits or more are recommended (docs/FORMAT.md §2)`,
    );
  }
  // What the sealer does with it at every segment start.
  provider.oaepEncrypt(key, provider.randomBytes(32));
  return key;
}

async function checkSigner(
  provider: RoutingProvider,
  role: KeyRoleRef,
  problem: Problem,
): Promise<PrivateKey | undefined> {
  const key = await loadPrivate(provider, role, problem, 'it signs checkpoints');
  if (!key) return undefined;
  if (key.algorithm.type !== 'ec' || key.algorithm.curve !== 'P-384') {
    problem(
      `is ${describeKey(key.algorithm)}; the checkpoint signer must be ECDSA P-384 (docs/FORMAT.md §2)`,
    );
    return undefined;
  }
  await testSignature(provider, key, problem);
  return key;
}

/**
 * Loads a private key; a file that holds only a public key is named as such (the usual mistake: the
 * `.pub.pem` of a pair), not as "not a PEM private key".
 */
async function loadPrivate(
  provider: RoutingProvider,
  role: KeyRoleRef,
  problem: Problem,
  why: string,
): Promise<PrivateKey | undefined> {
  try {
    return await provider.loadPrivateKey(role.ref);
  } catch (err) {
    if (!(err instanceof CryptoError) || role.provider !== 'openssl' || err.code !== 'KEY_REFERENCE')
      throw err;
    const pub = await provider.loadPublicKey(role.ref).catch(() => undefined);
    if (!pub) throw err;
    problem(
      `holds only a public key (${keyName(pub.algorithm)}); the ${role.role} needs the private key (${why})`,
    );
    return undefined;
  }
}

/** The store: openable for writing by serve (a directory it can create or write), and of this origin. */
async function storeIssues(config: Config, origin: string): Promise<ConfigIssue[]> {
  const dir = resolve(config.recording.store);
  const path = 'recording.store';
  const where = writableDirProblem(dir);
  if (where) return [{ path, ref: dir, message: where }];
  if (!existsSync(join(dir, STORE_FILES.log))) {
    // serve makes a store only in an empty directory, or one an interrupted init left its files in.
    const ours = new Set<string>([...Object.values(STORE_FILES), `${STORE_FILES.log}.tmp`]);
    const other = existsSync(dir) ? readdirSync(dir).find((name) => !ours.has(name)) : undefined;
    return other
      ? [{ path, ref: dir, message: `holds no store (no LOG file) and is not empty (${other})` }]
      : [];
  }
  let store: LocalStore;
  try {
    store = LocalStore.openReadOnly(dir);
  } catch (err) {
    const why = err instanceof SealError ? err.message.replace(`store ${dir}: `, '') : errText(err);
    return [{ path, ref: dir, message: `cannot be opened: ${why}` }];
  }
  try {
    if (store.origin !== origin) {
      return [
        {
          path: config.recording.origin ? 'recording.origin' : path,
          ref: dir,
          message: `the store belongs to origin ${JSON.stringify(store.origin)}, not ${JSON.stringify(origin)}${config.recording.origin ? '' : ' (the default origin; set recording.origin)'}`,
        },
      ];
    }
    return [];
  } finally {
    await store.close();
  }
}

/** Why `dir` could not be used (or made) as a directory this process writes in; undefined if it can. */
function writableDirProblem(dir: string): string | undefined {
  let at = dir;
  // The nearest existing ancestor is where mkdir -p would start.
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  const made = at === dir ? '' : ` (to create ${dir})`;
  let isDir: boolean;
  try {
    isDir = statSync(at).isDirectory();
  } catch (err) {
    return `cannot stat ${at}: ${errText(err)}`;
  }
  if (!isDir) return `${at} is not a directory${made}`;
  try {
    accessSync(at, constants.W_OK | constants.X_OK);
  } catch (err) {
    return `${at} is not writable by this user${made}: ${errText(err)}`;
  }
  return undefined;
}

/** `log.file`: a file serve can append to, or create. */
function fileIssues(config: Config): ConfigIssue[] {
  const file = config.log.file;
  if (!file) return [];
  const path = resolve(file);
  if (existsSync(path)) {
    try {
      if (statSync(path).isDirectory()) return [{ path: 'log.file', ref: path, message: 'is a directory' }];
      accessSync(path, constants.W_OK);
    } catch (err) {
      return [{ path: 'log.file', ref: path, message: `is not writable: ${errText(err)}` }];
    }
    return [];
  }
  const where = writableDirProblem(dirname(path));
  return where ? [{ path: 'log.file', ref: path, message: where }] : [];
}

/** `listen.host` must resolve (a name) for serve to bind it; binding itself is left to serve. */
async function listenIssues(config: Config): Promise<ConfigIssue[]> {
  try {
    await lookup(config.listen.host);
    return [];
  } catch (err) {
    return [
      {
        path: 'listen.host',
        message: `${JSON.stringify(config.listen.host)} does not resolve: ${errText(err)}`,
      },
    ];
  }
}

/**
 * What serve accepts but sessions will meet: targets that pin no usable host key and authorized keys the
 * gate skips. startGate logs the same findings when serve starts; `config check` prints these.
 */
export function connectionWarnings(provider: RoutingProvider, config: Config): StartupWarning[] {
  return [...knownHostsWarnings(config), ...allowListWarnings(provider, config)];
}

/**
 * Targets whose pinned keys cannot work: sessions to them are refused until they are pinned. Warnings,
 * not errors: known_hosts is read again at every connection, so pinning needs no restart.
 */
function knownHostsWarnings(config: Config): StartupWarning[] {
  const out: StartupWarning[] = [];
  config.targets.forEach((t, i) => {
    const path = `targets[${i}].known_hosts`;
    let text: string;
    try {
      text = readFileSync(t.known_hosts, 'utf8');
    } catch (err) {
      out.push({
        path,
        ref: t.known_hosts,
        message: `cannot be read (${errText(err)}); sessions to ${t.name} will be refused`,
      });
      return;
    }
    const known = parseKnownHosts(text);
    for (const p of known.problems) {
      out.push({ path, ref: `${t.known_hosts}:${p.line}`, message: `line ignored: ${p.message}` });
    }
    if (pinnedKeys(known, t.host, t.port).pinned.length === 0) {
      out.push({
        path,
        ref: t.known_hosts,
        message: `pins no host key for ${t.name}; sessions to it will be refused`,
      });
    }
  });
  return out;
}

/** Authorized keys the gate will skip (unreadable file, refused algorithm, options): as startGate finds them. */
function allowListWarnings(provider: RoutingProvider, config: Config): StartupWarning[] {
  return AllowList.load(provider, config.users).problems.map((p) => {
    // A problem's source is a config path (`users[0].authorized_keys[1]`) or `FILE` / `FILE:LINE`.
    if (p.source.startsWith('users[')) return { path: p.source, message: `skipped: ${p.message}` };
    const u = config.users.findIndex(
      (user) =>
        user.authorized_keys_file !== undefined &&
        (p.source === user.authorized_keys_file || p.source.startsWith(`${user.authorized_keys_file}:`)),
    );
    return { path: `users[${u}].authorized_keys_file`, ref: p.source, message: `skipped: ${p.message}` };
  });
}

function errText(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}
