/**
 * The crypto state, in the operational log at every start: FIPS mode on or off, the backend, and the
 * FIPS module's name, version and checksum. Commands log at `warn` unless SEALGATE_LOG_LEVEL says
 * otherwise, so auditors' tools stay quiet; the gate itself logs at `info`.
 */
import type { ProviderInfo } from '../crypto/index.js';
import type { StartupReport } from '../crypto/startup.js';
import { createLogger, type LoggerOptions } from '../ops/logger.js';

export function logCryptoState(
  report: StartupReport,
  info: ProviderInfo,
  level?: LoggerOptions['level'],
): void {
  const envLevel = process.env.SEALGATE_LOG_LEVEL as LoggerOptions['level'] | undefined;
  const logger = createLogger({ level: envLevel ?? level ?? 'warn' });
  logger.info('crypto provider started', {
    fips: info.fipsMode,
    backend: info.backend,
    library: info.library,
    ...info.details,
    self_tests: `${report.selfTests.filter((t) => t.ok).length}/${report.selfTests.length} passed`,
  });
  logger.close();
}
