/**
 * `sealgate config check <file>`: the checks `sealgate serve` runs before it listens, and nothing less:
 * the schema, cross-field and policy checks of the loader, then the start-up checks (../startup-checks.ts):
 * the provider's self-tests (and in FIPS mode, run in a FIPS-mode Node, the FIPS checks), every key the
 * config names loaded through the provider and checked for its role, the store and log paths. So an OK
 * here means serve would start and could record. What only binding or running can tell (the port is free,
 * no other gate holds the store) is not checked: docs/OPERATIONS.md, "Checking a config".
 *
 * Problems exit 2 with the same message serve gives; warnings go to stderr and the check still passes.
 * `--static` stops after the loader, for a config away from its keys, and says so in its OK line.
 */
import { loadConfigFile } from '../../config/load.js';
import { EXIT } from '../errors.js';
import { isFipsChild, relaunchInFipsMode } from '../fips-launch.js';
import { connectionWarnings, formatWarning, runStartupChecks } from '../startup-checks.js';

export async function configCheck(
  argv: string[],
  file: string,
  fipsFlag: boolean,
  opts: { static?: boolean } = {},
): Promise<number> {
  const config = loadConfigFile(file, { fips: fipsFlag });
  const fips = fipsFlag || config.fips;
  if (opts.static) {
    // For a config checked away from its gate (CI, a workstation): the OK must not read as "serve starts".
    process.stdout.write(
      `${file}: static checks OK (${config.targets.length} target(s), ${config.users.length} user(s), FIPS mode ${fips ? 'on' : 'off'}); ` +
        'keys, files and the crypto provider not checked: serve may still refuse it\n',
    );
    return EXIT.ok;
  }
  if (fips && !isFipsChild()) return relaunchInFipsMode(argv);
  const started = await runStartupChecks(config, file);
  try {
    for (const w of [...started.warnings, ...connectionWarnings(started.provider, config)]) {
      process.stderr.write(`sealgate: warning: ${formatWarning(w)}\n`);
    }
  } finally {
    started.provider.close();
  }
  process.stdout.write(
    `${file}: OK (${config.targets.length} target(s), ${config.users.length} user(s), FIPS mode ${fips ? 'on' : 'off'})\n`,
  );
  return EXIT.ok;
}
