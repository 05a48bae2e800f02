/**
 * `sealgate serve --config FILE`: the gate.
 *
 * 1. Loads the config; with `fips: true` (or `--fips`) re-runs itself in a FIPS-mode Node.
 * 2. Start-up checks (../startup-checks.ts, the same as `config check`): the provider (FIPS runtime and
 *    module in FIPS mode, known-answer tests always), every key the config names, loaded through the
 *    provider and checked for its role, the store and log paths. Anything refused there is never found
 *    later, by a session.
 * 3. Opens the sealed log (`recording.*`), then the gate; logs "listening" with the FIPS state.
 * 4. On SIGTERM or SIGINT: stops listening, ends every session (SESSION_END), writes LOG_STOP and a final
 *    checkpoint, and exits 0.
 *
 * Key files for `serve` are unencrypted PEM (mode 0600) or live in a token (`pkcs11:`): the gate starts
 * unattended, and a passphrase on its command line or in its config would be no protection.
 */
import { loadConfigFile } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { createLogger } from '../../ops/logger.js';
import { SealError } from '../../seal/errors.js';
import { SealedLog, type LogPolicy } from '../../seal/log.js';
import { GateError } from '../../ssh/errors.js';
import { startGate, type Gate } from '../../ssh/gate.js';
import { EXIT, UsageError } from '../errors.js';
import { isFipsChild, relaunchInFipsMode } from '../fips-launch.js';
import { formatWarning, runStartupChecks } from '../startup-checks.js';

export interface ServeOptions {
  readonly config: string;
}

/** The sealed log's policy from `recording.*`. */
export function logPolicy(r: Config['recording']): Partial<LogPolicy> {
  return {
    checkpointEveryEntries: r.checkpoint_every_records,
    checkpointEveryMs: r.checkpoint_every_seconds * 1000,
    heartbeatMs: r.heartbeat_seconds * 1000,
    fsyncEveryEntries: r.fsync_every_records,
    fsyncEveryMs: r.fsync_every_ms,
    maxRecords: r.segment_max_records,
    maxAgeMs: r.segment_max_seconds * 1000,
    maxPlaintextBytes: r.segment_max_bytes,
  };
}

export async function serveCommand(argv: string[], opts: ServeOptions, fipsFlag: boolean): Promise<number> {
  const config = loadConfigFile(opts.config, { fips: fipsFlag });
  if (config.fips && !isFipsChild()) return relaunchInFipsMode(argv);

  // Everything serve could not use later is refused here, as `config check` refuses it.
  const { provider, report, recipients, signingKey, origin, warnings } = await runStartupChecks(
    config,
    opts.config,
  );
  const logger = createLogger({
    level: config.log.level,
    format: config.log.format,
    ...(config.log.file ? { file: config.log.file } : {}),
  });
  try {
    const info = provider.info();
    logger.info('crypto provider started', {
      fips: info.fipsMode,
      backend: info.backend,
      library: info.library,
      ...info.details,
      self_tests: `${report.selfTests.filter((t) => t.ok).length}/${report.selfTests.length} passed`,
    });
    for (const w of warnings) logger.warn(`start-up check: ${formatWarning(w)}`);
    const ref: { gate?: Gate } = {};
    const log = await SealedLog.open({
      provider,
      dir: config.recording.store,
      origin,
      recipients,
      signingKey,
      create: true,
      policy: logPolicy(config.recording),
      onFailure: (err) => {
        if (ref.gate) ref.gate.recordingFailed(err);
        else logger.error('ALERT: the sealed log failed', { alert: 'recording.failed', error: err.message });
      },
    });
    if (log.recovery) {
      const r = log.recovery;
      logger.warn('the last run did not stop cleanly: crash recovery ran (CRASH_RECOVERY is sealed)', {
        previous_run_id: r.previousRunId,
        entries: r.entriesFound,
        open_segments: r.openSegments,
        truncated_bytes: r.truncatedBytes,
        truncated_checkpoint_bytes: r.truncatedCheckpointBytes,
        index_rebuilt: r.indexRebuilt,
      });
    }
    try {
      ref.gate = await startGate({ config, provider, log, logger });
    } catch (err) {
      await log.close('start-up failed').catch(() => undefined);
      throw err;
    }
    const gate = ref.gate;
    // The handlers go in before "listening" is logged: whoever waits for that line may signal at once,
    // and a SIGTERM before them would kill the process without LOG_STOP.
    const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
      const on = (s: NodeJS.Signals) => () => resolve(s);
      process.once('SIGTERM', on('SIGTERM'));
      process.once('SIGINT', on('SIGINT'));
    });
    logger.info('listening', {
      host: gate.host,
      port: gate.port,
      fips: info.fipsMode,
      backend: info.backend,
      origin,
      store: config.recording.store,
      host_key: gate.hostKeyLine,
    });

    const signal = await stopSignal;
    logger.info('stopping', { signal, live_connections: gate.connections });
    await gate.close('gate stopping');
    try {
      await log.close('stopped');
    } catch (err) {
      logger.error('the sealed log did not close cleanly', { error: (err as Error).message });
      return EXIT.checkFailed;
    }
    logger.info('stopped', { entries: log.size });
    return EXIT.ok;
  } catch (err) {
    // Failures the operator can fix (a key, a port, the store) are one line, not a stack trace.
    if (err instanceof GateError || err instanceof SealError) throw new UsageError(err.message);
    throw err;
  } finally {
    provider.close();
    await new Promise<void>((resolve) => {
      logger.on('finish', () => resolve());
      logger.end();
      setTimeout(resolve, 1_000).unref();
    });
  }
}
