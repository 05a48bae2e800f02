/**
 * FIPS mode at run time: where the OpenSSL FIPS provider lives, the environment that makes Node load it,
 * and the checks that prove the running process really is in FIPS mode.
 *
 * Node loads the provider through OPENSSL_CONF (an openssl.cnf that includes fipsmodule.cnf and sets
 * `default_properties = fips=yes`) and OPENSSL_MODULES (the directory holding fips.so), and enters FIPS
 * mode with `--force-fips`. See docs/FIPS.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, getFips } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CryptoError } from './errors.js';

export const FIPS_DIR_ENV = 'SEALGATE_FIPS_DIR';

/** The repo's own build output (fips/build.sh) unless SEALGATE_FIPS_DIR points elsewhere. */
export function fipsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env[FIPS_DIR_ENV]) return resolve(env[FIPS_DIR_ENV]);
  // dist/src/crypto/fips.js → repo root is three levels up.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '.cache', 'fips');
}

export class FipsSetupError extends Error {
  override readonly name = 'FipsSetupError';
}

/** The environment for a FIPS-mode Node, or a FipsSetupError that says what to do. */
export function fipsEnvironment(dir: string): { OPENSSL_CONF: string; OPENSSL_MODULES: string } {
  const hint = `run fips/build.sh, or set ${FIPS_DIR_ENV} to a directory prepared by fips/install-external.sh`;
  if (!existsSync(join(dir, 'fips.so')))
    throw new FipsSetupError(`fips.so not found at ${join(dir, 'fips.so')}; ${hint}`);
  for (const f of ['fipsmodule.cnf', 'openssl.cnf']) {
    if (!existsSync(join(dir, f))) throw new FipsSetupError(`${f} not found in ${dir}; ${hint}`);
  }
  return { OPENSSL_CONF: join(dir, 'openssl.cnf'), OPENSSL_MODULES: dir };
}

/**
 * Starts a throw-away FIPS-mode Node to prove the provider loads, so that a broken module (its self-test
 * or integrity check fails, the config is missing) gives one clear message instead of a dying child.
 */
export function preflightFipsNode(dir: string): void {
  const env = { ...process.env, ...fipsEnvironment(dir) };
  const r = spawnSync(
    process.execPath,
    ['--force-fips', '-e', 'process.stdout.write(String(require("crypto").getFips()))'],
    {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  if (r.status === 0 && r.stdout === '1') return;
  const reason =
    (r.stderr ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.includes('OpenSSL error when trying to enable FIPS'))
      .map((l) => l.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, ''))
      .join('; ') || `exit status ${String(r.status ?? r.signal)}`;
  throw new FipsSetupError(
    `the OpenSSL FIPS provider in ${dir} could not be loaded (${reason}); rebuild it with "fips/build.sh --force", ` +
      'or re-run "openssl fipsinstall" if fips.so was replaced',
  );
}

export interface FipsModuleDescription {
  readonly module: string;
  readonly moduleSha256: string;
  readonly providerName: string;
  readonly providerVersion: string;
}

/**
 * Describes the FIPS module for status output and segment provenance. Name and version come from
 * OpenSSL itself (`openssl list -providers` with the same configuration); the checksum is of fips.so.
 */
export function describeFipsModule(dir: string): FipsModuleDescription {
  const module = join(dir, 'fips.so');
  const moduleSha256 = createHash('sha256').update(readFileSync(module)).digest('hex');
  let providerName = 'unknown';
  let providerVersion = 'unknown';
  try {
    const out = execFileSync('openssl', ['list', '-providers'], {
      env: { ...process.env, ...fipsEnvironment(dir) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const fipsBlock = out.split(/\n\s{2}(?=\S)/).find((b) => /^\s*fips\b/m.test(b)) ?? '';
    providerName = /name:\s*(.+)/.exec(fipsBlock)?.[1]?.trim() ?? providerName;
    providerVersion = /version:\s*(.+)/.exec(fipsBlock)?.[1]?.trim() ?? providerVersion;
  } catch {
    // No openssl CLI: report the build's own record of its version, if any.
    const v = join(dir, 'VERSION');
    if (existsSync(v)) providerVersion = `${readFileSync(v, 'utf8').trim()} (from VERSION file)`;
  }
  return { module, moduleSha256, providerName, providerVersion };
}

export interface FipsRuntimeCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * Proves that this process runs in FIPS mode: getFips() is 1, and a non-approved algorithm (MD5) is
 * refused by OpenSSL itself, which shows `default_properties = fips=yes` is in force.
 */
export function checkFipsRuntime(): FipsRuntimeCheck[] {
  const checks: FipsRuntimeCheck[] = [];
  const fips = getFips();
  checks.push({ name: 'crypto.getFips() === 1', ok: fips === 1, detail: `getFips() returned ${fips}` });
  let md5Refused = false;
  try {
    createHash('md5');
  } catch {
    md5Refused = true;
  }
  checks.push({
    name: 'OpenSSL refuses MD5',
    ok: md5Refused,
    detail: md5Refused
      ? 'ERR_OSSL_EVP_UNSUPPORTED'
      : 'MD5 is available: the FIPS provider is not the only provider in use',
  });
  return checks;
}

export function assertFipsRuntime(): void {
  const failed = checkFipsRuntime().filter((c) => !c.ok);
  if (failed.length) {
    throw new CryptoError('SELF_TEST_FAILED', `not in FIPS mode: ${failed.map((c) => c.detail).join('; ')}`);
  }
}
