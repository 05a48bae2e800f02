/**
 * The `sealgate` command. Each subcommand lives in commands/; this file only wires them to the parser
 * and applies the one FIPS switch (`--fips`, or `fips: true` in a config).
 */
import { Command } from 'commander';
import { fipsStatus } from './commands/fips-status.js';
import { configCheck } from './commands/config-check.js';
import { action } from './errors.js';
import { isFipsChild, relaunchInFipsMode } from './fips-launch.js';

/** Runs `run` in this process if FIPS mode is not wanted or already in force; otherwise re-launches. */
export async function inMode(argv: string[], wantFips: boolean, run: () => Promise<number>): Promise<number> {
  if (wantFips && !isFipsChild()) return relaunchInFipsMode(argv);
  return run();
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('sealgate')
    .description('An SSH gate that records every session into a sealed, signed, tamper-evident log.')
    .option('--fips', 'run in FIPS mode (OpenSSL FIPS provider; approved algorithms only)')
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });

  const globalFips = () => Boolean(program.opts<{ fips?: boolean }>().fips) || isFipsChild();

  const fips = program.command('fips').description('FIPS mode tools');
  fips
    .command('status')
    .description('start a FIPS-mode Node, run every known-answer test, and show what is approved and in use')
    .option('--json', 'print the report as JSON')
    .action(action(async (opts: { json?: boolean }) => inMode(argv, true, () => fipsStatus(opts))));

  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate a config file (YAML or JSON) against the schema and, in FIPS mode, the policy')
    .argument('<file>', 'config file')
    .action(action(async (file: string) => configCheck(argv, file, globalFips())));

  await program.parseAsync(argv);
}
