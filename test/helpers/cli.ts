/**
 * Runs the real `sealgate` command (node bin/sealgate.js, against dist/) in a child process, as a user
 * would. The environment is scrubbed of anything that would already put the child in FIPS mode (so the
 * CLI's own re-launch is what gets tested); callers add what they need.
 */
import { spawn } from 'node:child_process';
import { cliPath, repoRoot } from './paths.js';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Lines of a stack trace: a known failure must never print one. */
export const STACK_LINE = /^\s+at /m;

export function runCli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  for (const k of [
    'SEALGATE_FIPS_CHILD',
    'OPENSSL_CONF',
    'OPENSSL_MODULES',
    'NODE_OPTIONS',
    'NODE_TEST_CONTEXT',
  ]) {
    if (!(k in extraEnv)) delete env[k];
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(), ...args], { cwd: repoRoot(), env, timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The whole run, for assertion messages. */
export const showRun = (r: CliRun): string =>
  `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
