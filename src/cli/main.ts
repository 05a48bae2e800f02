/**
 * The `sealgate` command. Each subcommand lives in commands/; this file only wires them to the parser
 * and applies the one FIPS switch (`--fips`, or `fips: true` in a config). `serve`, `init` and `config
 * check` are imported when they run: they load the SSH stack and the config schema, which the auditor
 * commands do not need (half a second of start-up on a busy 2-core machine).
 */
import { Command, Option } from 'commander';
import { fipsStatus } from './commands/fips-status.js';
import {
  exportPublic,
  genRecipient,
  genSigner,
  genTokenKey,
  tokenOptions,
  tokenSettings,
  type ExportPublicOptions,
  type TokenCliOptions,
  type GenKeyOptions,
  type GenTokenKeyOptions,
} from './commands/keys.js';
import { decryptCommand, type DecryptCommandOptions } from './commands/decrypt.js';
import { CAST_FORMATS } from './commands/cast.js';
import { textCommand, type TextCommandOptions } from './commands/text.js';
import { replayCommand, type ReplayCommandOptions } from './commands/replay.js';
import { addReadTrustOptions } from './auditor-read.js';
import { verifyCommand, type VerifyCliOptions } from './commands/verify.js';
import { sessionsCommand, type SessionsCliOptions } from './commands/sessions.js';
import { commandsCommand, type CommandsCliOptions } from './commands/commands.js';
import { indexDelete, type IndexDeleteOptions } from './commands/index-delete.js';
import { exportCommand, type ExportCliOptions } from './commands/export.js';
import { caInit, caIssue, type CaInitOptions, type CaIssueOptions } from './commands/ca.js';
import type { ServeOptions } from './commands/serve.js';
import type { InitOptions } from './commands/init.js';
import { assertStartupOk } from '../crypto/startup.js';
import { createProvider, type CryptoProvider } from '../crypto/index.js';
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
    .description(
      'check a config file (YAML or JSON) as serve does before it listens: schema, policy, the crypto provider, every key it names, the store',
    )
    .argument('<file>', 'config file')
    .option(
      '--static',
      'only the checks that read no other file (schema, cross-field, algorithm policy): for a config away from its gate; not enough for serve to start',
    )
    .action(
      action(async (file: string, opts: { static?: boolean }) =>
        (await import('./commands/config-check.js')).configCheck(argv, file, globalFips(), {
          static: opts.static === true,
        }),
      ),
    );

  /** Every command that uses keys runs the start-up checks first, and refuses on failure. */
  // With --module (or $SEALGATE_PKCS11_MODULE) the provider can also use `pkcs11:` keys in a token.
  const withProvider =
    <O>(run: (p: CryptoProvider, opts: O) => Promise<number>) =>
    (opts: O) =>
      inMode(argv, globalFips(), async () => {
        const token = opts as TokenCliOptions;
        const { provider, report } = await createProvider({
          fips: globalFips(),
          ...tokenSettings(token),
        });
        try {
          assertStartupOk(report);
          logCryptoState(report, provider.info());
          return await run(provider, opts);
        } finally {
          provider.close();
        }
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
  // Token keys (docs/HSM.md): these commands bring up their own provider, with the PKCS#11 module.
  tokenOptions(
    keys
      .command('gen')
      .description('generate a key pair inside a PKCS#11 token; the private key never leaves it')
      .option('--pkcs11', 'make the key in a PKCS#11 token (required)')
      .option('--token <label>', 'the token label')
      .option('--label <object>', 'the new key object label (CKA_LABEL)')
      .option('--id <hex>', 'the new key object id (CKA_ID); random when omitted')
      .option('--type <type>', 'ec-p256, ec-p384, rsa-3072 or rsa-4096')
      .option('--usage <usage>', 'sign (EC default), decrypt (RSA default) or unwrap')
      .option('-o, --out <file>', 'also write the public key (SPKI PEM) to this file')
      .option('--force', 'overwrite the --out file'),
  ).action(
    action(async (opts: GenTokenKeyOptions) =>
      inMode(argv, globalFips(), () => genTokenKey(globalFips(), opts)),
    ),
  );
  tokenOptions(
    keys
      .command('export-public')
      .description('print the public key of a key reference (file:… or pkcs11:…)')
      .argument('<keyref>', 'file:PATH (public or private PEM) or a pkcs11: URI')
      .option('--format <format>', 'pem (SPKI) or openssh', 'pem')
      .option('--comment <text>', 'comment for the OpenSSH line')
      .option('--passphrase-file <file>', "an encrypted PEM private key's passphrase, from a file")
      .option(
        '--passphrase-env <var>',
        "an encrypted PEM private key's passphrase, from an environment variable",
      )
      .option('-o, --out <file>', 'write to this file instead of standard output')
      .option('--force', 'overwrite the --out file'),
  ).action(
    action(async (ref: string, opts: ExportPublicOptions) =>
      inMode(argv, globalFips(), () => exportPublic(globalFips(), ref, opts)),
    ),
  );

  const ca = program
    .command('ca')
    .description('a user certificate authority: OpenSSH user certificates (docs/CERTS.md)');
  ca.command('init')
    .description('generate the user CA key: DIR/user_ca.pem (0600) and DIR/user_ca.pub (OpenSSH line)')
    .requiredOption('-o, --out <dir>', 'directory to write the CA key pair into')
    .option('--curve <curve>', 'ECDSA curve: P-256 (default) or P-384')
    .option('--rsa <bits>', 'an RSA CA key instead: 3072 or 4096 (signs with rsa-sha2-512)')
    .option('--passphrase-file <file>', 'read the passphrase that encrypts the CA key from a file')
    .option('--passphrase-env <var>', 'read the passphrase from an environment variable')
    .option('--unencrypted', 'write the CA key unencrypted (demo use only)')
    .option('--force', 'overwrite existing files')
    .action(action(withProvider<CaInitOptions>(caInit)));
  tokenOptions(
    ca
      .command('issue')
      .description('sign a user certificate for a public key; writes KEY-cert.pub beside KEY.pub')
      .requiredOption('--ca <ref>', 'the CA private key: file:PATH (PEM) or a pkcs11: URI')
      .option('--passphrase-file <file>', "read the CA key's passphrase from a file")
      .option('--passphrase-env <var>', "read the CA key's passphrase from an environment variable")
      .requiredOption(
        '--principal <name>',
        'a login the certificate is valid for (repeat for more)',
        (v: string, acc: string[] = []) => [...acc, v],
      )
      .requiredOption('--ttl <span>', 'how long it is valid: 8h, 30m, 1h30m, 2d')
      .requiredOption('--pubkey <file>', 'the OpenSSH public key to certify (id_ecdsa.pub)')
      .option('--serial <n>', 'the serial number (default: 63 random bits)')
      .option('--key-id <text>', "the key id (default: the public key's comment, else its file name)")
      .option('--source-address <cidrs>', 'critical option: only from these addresses (CIDR,…)')
      .option('--force-command <cmd>', 'critical option: run this command instead of the one asked for')
      .option('--valid-from <time>', 'ISO 8601 start of validity (default: 5 minutes ago, for clock skew)')
      .option('--force', 'overwrite an existing certificate file'),
  ).action(
    action(async (opts: CaIssueOptions) => inMode(argv, globalFips(), () => caIssue(globalFips(), opts))),
  );

  addReadTrustOptions(
    tokenOptions(
      program
        .command('decrypt')
        .description(
          'verify a store or bundle, then decrypt the segments addressed to a recipient key, as JSON lines (every tag checked)',
        ),
    ),
  )
    .argument('<source>', 'a store directory or an export bundle directory')
    .requiredOption(
      '--key <ref>',
      'the recipient private key (file:PATH PBES2-encrypted PEM, or a pkcs11: URI)',
    )
    .option('--passphrase-file <file>', "read the key's passphrase from a file")
    .option('--passphrase-env <var>', "read the key's passphrase from an environment variable")
    .option('-o, --out <file>', 'write the JSON lines to a file (created 0600) instead of stdout')
    .option('--force', 'overwrite the --out file')
    .option('--session <hex>', "only this session's records (no system entries)")
    .option('--records-only', 'leave out system entries')
    .option('--audit-spool <dir>', 'also spool the audit event of this decrypt here (for a bundle)')
    .option('--keep-going', 'on a failure, abandon only the failing segment (still exits 1)')
    .addOption(
      new Option(
        '--format <format>',
        'jsonl (every entry), or a cast of one --session: asciicast-v2, asciicast-v3, scriptreplay',
      )
        .choices(['jsonl', ...CAST_FORMATS])
        .default('jsonl'),
    )
    .option('--channel <n>', 'casts: the terminal channel, when the session has several')
    .option('--input', 'casts: include the typed input (asciicast "i" events; scriptreplay advanced format)')
    .option('--timing <file>', 'scriptreplay: the timing file (then --out is the typescript file)')
    .action(
      action(async (source: string, opts: DecryptCommandOptions) =>
        withProvider<DecryptCommandOptions>((p, o) => decryptCommand(p, source, o))(opts),
      ),
    );

  /** The options `sessions` and `commands` share (docs/AUDITOR.md §9). */
  const queryOptions = (c: Command): Command =>
    addReadTrustOptions(c)
      .argument('<source>', 'a store directory or an export bundle directory')
      .requiredOption(
        '--key <ref>',
        'the recipient private key (file:PATH PBES2-encrypted PEM, or a pkcs11: URI)',
      )
      .option('--passphrase-file <file>', "read the key's passphrase from a file")
      .option('--passphrase-env <var>', "read the key's passphrase from an environment variable")
      .option('--user <name>', 'only this gate user')
      .option('--target <name>', 'only this target')
      .option('--since <time>', 'ISO 8601 (2026-01-05, 2026-01-05T10:00Z) or a span before now (24h, 7d)')
      .option('--until <time>', 'ISO 8601 or a span before now')
      .option('--session <hex>', 'only this session (its id, or a prefix of it)')
      .option('--json', 'JSON lines, one object per line')
      .option('--index <dir>', 'keep the index here (default: $XDG_CACHE_HOME/sealgate/index/…)')
      .option('--no-index', 'read the log directly: no index is read or written')
      .option('--rebuild', 'discard the index and build it again')
      .option('--audit-spool <dir>', 'also spool the audit event of this run here (for a bundle)');

  queryOptions(
    tokenOptions(
      program
        .command('sessions')
        .description('one row per recorded session: who, where, when, how it ended, bytes, commands, FIPS'),
    ),
  ).action(
    action(async (source: string, opts: SessionsCliOptions) =>
      withProvider<SessionsCliOptions>((p, o) => sessionsCommand(p, source, o))(opts),
    ),
  );

  queryOptions(
    tokenOptions(
      program
        .command('commands')
        .description('every command of every session (exec, terminal, sftp), with who ran it where and when'),
    ),
  )
    .option('--grep <regex>', 'only commands whose text matches this JavaScript regular expression')
    .option('-i, --ignore-case', '--grep ignores case')
    .action(
      action(async (source: string, opts: CommandsCliOptions) =>
        withProvider<CommandsCliOptions>((p, o) => commandsCommand(p, source, o))(opts),
      ),
    );

  const index = program
    .command('index')
    .description('the auditor-side index of sessions and commands (plaintext on this machine)');
  index
    .command('delete')
    .description('delete the index of a log (every key), of a directory, or all of them')
    .argument('[source]', 'the store or bundle whose index to delete')
    .option('--index <dir>', 'delete this index directory')
    .option('--all', 'delete every index under $XDG_CACHE_HOME/sealgate/index')
    .action(
      action(async (source: string | undefined, opts: IndexDeleteOptions) =>
        withProvider<IndexDeleteOptions>((p, o) => indexDelete(p, source, o))(opts),
      ),
    );

  const terminalOptions = (c: Command) =>
    addReadTrustOptions(tokenOptions(c))
      .argument('<source>', 'a store directory or an export bundle directory')
      .argument('<session>', 'the session id (32 hex digits)')
      .requiredOption(
        '--key <ref>',
        'the recipient private key (file:PATH PBES2-encrypted PEM, or a pkcs11: URI)',
      )
      .option('--passphrase-file <file>', "read the key's passphrase from a file")
      .option('--passphrase-env <var>', "read the key's passphrase from an environment variable")
      .option('--channel <n>', 'the terminal channel, when the session has several')
      .option('--audit-spool <dir>', 'also spool the audit event of this decrypt here (for a bundle)');

  terminalOptions(
    program
      .command('text')
      .description("a session's terminal as plain text: what the screen showed, control sequences rendered"),
  )
    .option('-o, --out <file>', 'write the text to a file (created 0600) instead of stdout')
    .option('--force', 'overwrite the --out file')
    .action(
      action(async (source: string, session: string, opts: TextCommandOptions) =>
        withProvider<TextCommandOptions>((p, o) => textCommand(p, source, session, o))(opts),
      ),
    );

  terminalOptions(
    program
      .command('replay')
      .description('play a session on this terminal with its timing (space: pause, ".": step, q: quit)'),
  )
    .option('--speed <x>', 'playback speed (2: twice as fast)', '1')
    .option('--idle-limit <seconds>', 'no pause longer than this')
    .option(
      '--at <n>',
      'start at a leaf index (a command\'s index), at "90s" from the start, or at an ISO 8601 time; what came before is shown at once',
    )
    .action(
      action(async (source: string, session: string, opts: ReplayCommandOptions) =>
        withProvider<ReplayCommandOptions>((p, o) => replayCommand(p, source, session, o))(opts),
      ),
    );

  program
    .command('verify')
    .description('verify a store or an export bundle offline (public keys only); exit 1 names every failure')
    .argument('<source>', 'a store directory or an export bundle directory')
    .option(
      '--keys <dir>',
      "the checkpoint signers' public keys (PEM files, or one file) to trust: the trust root; required unless --trust-bundle-signers",
    )
    .option(
      '--trust-bundle-signers',
      "no --keys: trust the bundle's own keys/signers.json; checks integrity only, origin not verified",
    )
    .option(
      '--trusted-checkpoint <file>',
      'a signed checkpoint you retained: the log must extend it (checked against the signers; not a trust root)',
    )
    .option('--heartbeat-seconds <n>', "the gate's heartbeat interval; gaps over 2n + 5 s fail", '60')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (source: string, opts: Omit<VerifyCliOptions, 'path'>) =>
        withProvider<VerifyCliOptions>(verifyCommand)({ ...opts, path: source }),
      ),
    );

  tokenOptions(
    program
      .command('export')
      .description('write a signed export bundle of a store (all of it, a leaf range, or sessions)'),
  )
    .argument('<store>', 'the store directory (read-only; the gate may keep writing)')
    .requiredOption('-o, --out <dir>', 'the bundle directory to create (must not exist or be empty)')
    .requiredOption(
      '--signer-key <ref>',
      "the log's checkpoint signing key (file:PATH or pkcs11: URI): signs the manifest",
    )
    .option('--passphrase-file <file>', "read the key's passphrase from a file")
    .option('--passphrase-env <var>', "read the key's passphrase from an environment variable")
    .option('--from <n>', 'first leaf index to export (a range export)')
    .option('--to <n>', 'end of the range: leaves up to but not including n')
    .option('--sessions <hex,...>', 'export only these sessions (comma-separated session ids)')
    .option(
      '--trusted-checkpoint <file>',
      "an auditor's retained checkpoint: include a consistency proof from it",
    )
    .action(
      action(async (store: string, opts: Omit<ExportCliOptions, 'store'>) =>
        withProvider<ExportCliOptions>(exportCommand)({ ...opts, store }),
      ),
    );

  program
    .command('serve')
    .description('run the gate: record every session into the sealed log (SIGTERM stops it cleanly)')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .action(
      action(async (opts: ServeOptions) =>
        (await import('./commands/serve.js')).serveCommand(argv, opts, globalFips()),
      ),
    );

  program
    .command('init')
    .description('write a working demo config and all its keys into a directory')
    .argument('<dir>', 'directory for the config, the keys and the store')
    .option('--user <name>', 'the demo gate user', 'demo')
    .option('--target-host <host>', 'the demo target (an sshd)', '127.0.0.1')
    .option('--target-port <port>', "the demo target's port", '22')
    .option('--target-user <name>', 'the user to log in as on the target (default: the gate user)')
    .option('--listen-port <port>', 'the port the gate listens on (127.0.0.1)', '2222')
    .option('--force', 'overwrite an existing config and keys')
    .action(
      action(async (dir: string, opts: InitOptions) =>
        withProvider<InitOptions>(async (p, o) =>
          (await import('./commands/init.js')).initCommand(p, dir, o),
        )(opts),
      ),
    );

  await program.parseAsync(argv);
}
