/**
 * Test tokens made from nothing by the scripts beside this file (softhsm2.sh, nss.sh), in fresh temp
 * directories, so every test run starts with empty tokens.
 *
 * SoftHSM2 reads SOFTHSM2_CONF when the module is initialized, and NSS reads
 * NSS_MAX_MP_PBE_ITERATION_COUNT whenever it protects a key, so both are put into this process's
 * environment too (and into `env`, for child processes such as the CLI).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPkcs11Uri, type Pkcs11Settings } from '../../src/crypto/index.js';
import { repoRoot } from '../helpers/paths.js';

export interface TestToken {
  readonly kind: 'softhsm2' | 'nss';
  readonly dir: string;
  readonly module: string;
  readonly pinFile: string;
  readonly libraryParameters?: string;
  /** The token labels, in the order created; the first is the default. */
  readonly labels: readonly string[];
  /** Environment for a child process that uses the token. */
  readonly env: Readonly<Record<string, string>>;
  /** Settings for createProvider({ pkcs11 }). */
  readonly settings: Pkcs11Settings;
  /** `pkcs11:token=<label>;object=<object>` */
  uri(object: string, token?: string): string;
}

function run(script: string, args: string[]): Map<string, string[]> {
  const out = execFileSync('bash', [join(repoRoot(), 'test', 'tokens', script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const values = new Map<string, string[]>();
  for (const line of out.split('\n').filter(Boolean)) {
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    values.set(key, [...(values.get(key) ?? []), line.slice(eq + 1)]);
  }
  return values;
}

function one(values: Map<string, string[]>, key: string): string {
  const v = values.get(key)?.[0];
  if (v === undefined) throw new Error(`token script printed no ${key}`);
  return v;
}

function token(
  kind: TestToken['kind'],
  dir: string,
  values: Map<string, string[]>,
  env: Record<string, string>,
): TestToken {
  const labels = values.get('TOKEN_LABEL') ?? [];
  const libraryParameters = values.get('LIBRARY_PARAMETERS')?.[0];
  const module = one(values, 'PKCS11_MODULE');
  const pinFile = one(values, 'PIN_FILE');
  Object.assign(process.env, env);
  return {
    kind,
    dir,
    module,
    pinFile,
    ...(libraryParameters !== undefined ? { libraryParameters } : {}),
    labels,
    env,
    settings: { module, pinFile, ...(libraryParameters !== undefined ? { libraryParameters } : {}) },
    uri: (object, label = labels[0] ?? '') => formatPkcs11Uri({ token: label, object }),
  };
}

/** A SoftHSM2 token store with one token per label (default: "sealgate"). */
export function makeSoftHsm2(labels: string[] = ['sealgate']): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-softhsm2-'));
  const values = run('softhsm2.sh', [dir, ...labels]);
  return token('softhsm2', dir, values, { SOFTHSM2_CONF: one(values, 'SOFTHSM2_CONF') });
}

/** An NSS softoken database; its token is "NSS Certificate DB". */
export function makeNss(): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-nss-'));
  const values = run('nss.sh', [dir]);
  return token('nss', dir, values, {
    NSS_MAX_MP_PBE_ITERATION_COUNT: one(values, 'NSS_MAX_MP_PBE_ITERATION_COUNT'),
  });
}
