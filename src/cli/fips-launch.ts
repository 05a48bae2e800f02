/**
 * FIPS mode is one switch: when it is on (by `--fips` or `fips: true` in the config), the CLI re-runs
 * itself in a Node started with `--force-fips` and the OpenSSL FIPS provider's environment. The child
 * knows it was launched for FIPS mode (SEALGATE_FIPS_CHILD=1) and must then prove it (start-up checks).
 */
import { spawn } from 'node:child_process';
import { fipsDir, fipsEnvironment, preflightFipsNode } from '../crypto/index.js';

export const FIPS_CHILD_ENV = 'SEALGATE_FIPS_CHILD';

export function isFipsChild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[FIPS_CHILD_ENV] === '1';
}

/**
 * Runs the same command line again in a FIPS-mode Node and resolves with its exit status. Throws
 * FipsSetupError (with what to do) when the provider files are missing.
 */
export function relaunchInFipsMode(argv: string[]): Promise<number> {
  const dir = fipsDir();
  preflightFipsNode(dir);
  const env = { ...process.env, ...fipsEnvironment(dir), [FIPS_CHILD_ENV]: '1' };
  const [, script, ...args] = argv;
  const child = spawn(process.execPath, ['--force-fips', ...process.execArgv, script ?? '', ...args], {
    env,
    stdio: 'inherit',
  });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code ?? (signal ? 128 + 15 : 1));
    });
    child.on('error', () => resolve(70));
  });
}
