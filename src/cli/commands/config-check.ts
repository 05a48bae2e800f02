/**
 * `sealgate config check <file>`: schema, semantic and policy checks. A config with `fips: true` is
 * checked in a FIPS-mode Node, where the start-up checks must also pass, so a green check means the
 * gate would start.
 */
import { loadConfigFile } from '../../config/load.js';
import { assertStartupOk, startProvider } from '../../crypto/startup.js';
import { EXIT } from '../errors.js';
import { isFipsChild, relaunchInFipsMode } from '../fips-launch.js';

export async function configCheck(argv: string[], file: string, fipsFlag: boolean): Promise<number> {
  const config = loadConfigFile(file, { fips: fipsFlag });
  const fips = fipsFlag || config.fips;
  if (fips && !isFipsChild()) return relaunchInFipsMode(argv);
  if (fips) {
    const { report } = await startProvider(true);
    assertStartupOk(report);
  }
  process.stdout.write(
    `${file}: OK (${config.targets.length} target(s), ${config.users.length} user(s), FIPS mode ${fips ? 'on' : 'off'})\n`,
  );
  return EXIT.ok;
}
