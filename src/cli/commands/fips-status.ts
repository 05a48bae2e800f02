/**
 * `sealgate fips status`: runs in a FIPS-mode Node, proves FIPS mode, runs every known-answer test, and
 * prints what is approved and in use. Exits non-zero on any failure.
 */
import Table from 'cli-table3';
import { Policy, SEAL_SUITE_1 } from '../../crypto/index.js';
import { assertStartupOk, startProvider, type StartupReport } from '../../crypto/startup.js';
import { EXIT } from '../errors.js';

export async function fipsStatus(options: { json?: boolean }): Promise<number> {
  const { provider, report } = await startProvider(true);
  const info = provider.info();
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ ...report, provider: info, ssh: new Policy(true).defaultSshAlgorithms() }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(render(report, info.library));
  }
  if (!report.ok) {
    try {
      assertStartupOk(report);
    } catch (err) {
      process.stderr.write(`sealgate: FIPS mode is NOT usable: ${(err as Error).message}\n`);
    }
    return EXIT.checkFailed;
  }
  return EXIT.ok;
}

/** No colour codes: the output is read by people and by scripts alike. */
const PLAIN = { head: [], border: [] };

function render(report: StartupReport, library: string): string {
  const out: string[] = [];
  const status = new Table({ head: ['check', 'result', 'detail'], style: PLAIN });
  for (const c of [...report.runtime, ...report.selfTests])
    status.push([c.name, c.ok ? 'PASS' : 'FAIL', c.detail]);

  const module = new Table({ style: PLAIN });
  module.push(
    { 'Node OpenSSL': library },
    { 'FIPS provider': `${report.module?.providerName ?? '?'} ${report.module?.providerVersion ?? ''}` },
    { 'module path': report.module?.module ?? '?' },
    { 'module SHA-256': report.module?.moduleSha256 ?? '?' },
  );

  const inUse = new Table({ head: ['purpose', 'algorithm (approved, in use)'], style: PLAIN });
  inUse.push(
    ['data key wrapping', SEAL_SUITE_1.keyWrap],
    [
      'record encryption',
      `${SEAL_SUITE_1.recordCipher}, ${SEAL_SUITE_1.ivBytes * 8}-bit IV, ${SEAL_SUITE_1.tagBytes * 8}-bit tag`,
    ],
    ['key derivation, commitment', SEAL_SUITE_1.kdf],
    ['Merkle hashing', SEAL_SUITE_1.merkleHash],
    ['checkpoint signatures', SEAL_SUITE_1.checkpointSignature],
  );
  const ssh = new Policy(true).defaultSshAlgorithms();
  for (const [kind, names] of Object.entries(ssh)) inUse.push([`SSH ${kind} (both legs)`, names.join('\n')]);

  out.push(
    'FIPS module',
    module.toString(),
    '',
    'Start-up checks',
    status.toString(),
    '',
    'In use',
    inUse.toString(),
  );
  out.push('', report.ok ? 'FIPS mode: OK' : 'FIPS mode: FAILED', '');
  return out.join('\n');
}
