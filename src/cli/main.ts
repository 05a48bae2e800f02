/**
 * The `sealgate` command. Each subcommand lives in commands/; this file only wires them to the parser
 * and applies the one FIPS switch (`--fips`, or `fips: true` in a config).
 */
import { Command } from 'commander';
import { fipsStatus } from './commands/fips-status.js';
import { configCheck } from './commands/config-check.js';
import { genRecipient, genSigner, type GenKeyOptions } from './commands/keys.js';
import { assertStartupOk, startProvider } from '../crypto/startup.js';
import type { CryptoProvider } from '../crypto/index.js';
import { action } from './errors.js';
import { logCryptoState } from './startup-log.js';
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
    .configureOutput({ outputError: (str, write) => write(str) })
    // Usage errors (unknown command, missing argument) exit 2 like every other bad input; help exits 0.
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

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

  /** Every command that uses keys runs the start-up checks first, and refuses on failure. */
  const withProvider =
    <O>(run: (p: CryptoProvider, opts: O) => Promise<number>) =>
    (opts: O) =>
      inMode(argv, globalFips(), async () => {
        const { provider, report } = await startProvider(globalFips());
        assertStartupOk(report);
        logCryptoState(report, provider.info());
        return run(provider, opts);
      });

  const keys = program
    .command('keys')
    .description('generate keys for recipients (customers) and the checkpoint signer');
  const keyOptions = (c: Command) =>
    c
      .requiredOption('-o, --out <dir>', 'directory to write the key pair into')
      .option('--name <name>', 'file name stem')
      .option('--passphrase-file <file>', 'read the passphrase that encrypts the private key from a file')
      .option('--passphrase-env <var>', 'read the passphrase from an environment variable')
      .option('--unencrypted', 'write the private key unencrypted (demo use only)')
      .option('--force', 'overwrite existing files');
  keyOptions(
    keys
      .command('gen-recipient')
      .description('an RSA key pair for a customer: the gate wraps data keys to its public half')
      .option('--bits <bits>', '3072 or 4096', '3072'),
  ).action(action(withProvider<GenKeyOptions>(genRecipient)));
  keyOptions(keys.command('gen-signer').description('an ECDSA P-384 key pair that signs checkpoints')).action(
    action(withProvider<GenKeyOptions>(genSigner)),
  );

  await program.parseAsync(argv);
}
