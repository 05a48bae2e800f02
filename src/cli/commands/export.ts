/**
 * `sealgate export <store> -o <dir> --signer-key REF`: writes an export bundle (docs/FORMAT.md §7) of
 * the whole log up to its last checkpoint, a leaf range (--from, --to) or some sessions (--sessions),
 * signed with the log's signer key, and logs the export in the store's audit spool (§6.1).
 */
import { readFileSync } from 'node:fs';
import type { CryptoProvider } from '../../crypto/index.js';
import { exportBundle, type ExportProgress } from '../../audit/export.js';
import { EXIT, UsageError } from '../errors.js';
import { readSecret } from '../secrets.js';
import { asUsageError, progressBar } from './verify.js';

export interface ExportCliOptions {
  readonly store: string;
  readonly out: string;
  readonly signerKey: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly from?: string;
  readonly to?: string;
  readonly sessions?: string;
  readonly trustedCheckpoint?: string;
}

function leafIndex(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(0|[1-9][0-9]*)$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `${flag} must be a leaf index (a non-negative integer), not ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

export async function exportCommand(provider: CryptoProvider, opts: ExportCliOptions): Promise<number> {
  const from = leafIndex(opts.from, '--from');
  const to = leafIndex(opts.to, '--to');
  const sessions = opts.sessions
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  let trustedCheckpoint: string | undefined;
  if (opts.trustedCheckpoint) {
    try {
      trustedCheckpoint = readFileSync(opts.trustedCheckpoint, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--trusted-checkpoint ${opts.trustedCheckpoint}: cannot read it (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  const signer = await provider.loadPrivateKey(opts.signerKey, passphrase);
  passphrase?.fill(0);
  const bar = progressBar('export');
  let result;
  try {
    result = await exportBundle({
      provider,
      storeDir: opts.store,
      outDir: opts.out,
      signer,
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      ...(sessions ? { sessions } : {}),
      ...(trustedCheckpoint !== undefined ? { trustedCheckpoint } : {}),
      onProgress: (p: ExportProgress) => bar.update(p.done, p.total, p.phase),
    });
  } catch (err) {
    asUsageError(err);
  } finally {
    bar.stop();
  }
  const m = result.manifest;
  const what = m.complete
    ? 'complete'
    : m.sessions
      ? `partial: sessions ${m.sessions.join(', ')}`
      : `partial: leaves ${m.range.from}..${m.range.to - 1}`;
  process.stdout.write(
    `wrote ${result.outDir} (${what})\n` +
      `  ${m.entries} entries, ${m.checkpoints} checkpoints, tree size ${m.tree_size}\n` +
      `  manifest.json SHA-256 ${result.manifestSha256} (signed in manifest.sig)\n` +
      `  export logged: ${opts.store}/audit-spool/${result.auditSpoolFile} (sealed into the log at the gate's next heartbeat or start)\n`,
  );
  for (const w of result.warnings) process.stderr.write(`sealgate: warning: ${w}\n`);
  return EXIT.ok;
}
