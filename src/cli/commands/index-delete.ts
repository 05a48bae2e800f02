/**
 * `sealgate index delete`: removes the auditor-side index (docs/AUDITOR.md §9.3), which holds plaintext
 * derived from sealed sessions. `SOURCE`: every index of that log (all keys); `--index DIR`: that
 * directory; `--all`: every index under the default root. Only index files are ever deleted.
 */
import { AuditError } from '../../audit/errors.js';
import { defaultIndexRoot, deleteIndexTree, logIndexDir } from '../../audit/index/directory.js';
import { openLogSource } from '../../audit/source.js';
import { LeafHasher } from '../../audit/verify/tree.js';
import type { CryptoProvider } from '../../crypto/index.js';
import { EXIT, UsageError } from '../errors.js';

export interface IndexDeleteOptions {
  readonly index?: string;
  readonly all?: boolean;
}

function targetDir(provider: CryptoProvider, source: string | undefined, opts: IndexDeleteOptions): string {
  const given = [source !== undefined, opts.index !== undefined, Boolean(opts.all)].filter(Boolean).length;
  if (given !== 1) throw new UsageError('index delete takes one of: SOURCE, --index DIR, --all');
  if (opts.index !== undefined) return opts.index;
  if (opts.all) return defaultIndexRoot();
  const src = openLogSource(source!);
  try {
    let first: Uint8Array | undefined;
    for (const e of src.entries(0)) {
      first = Uint8Array.from(e.bytes);
      break;
    }
    if (!first) throw new UsageError(`${source!} is empty: it has no index`);
    const leaf = new LeafHasher((d) => provider.digest('sha256', d)).leafHash(first);
    return logIndexDir(defaultIndexRoot(), src.origin, Buffer.from(leaf).toString('hex'));
  } finally {
    src.close();
  }
}

export async function indexDelete(
  provider: CryptoProvider,
  source: string | undefined,
  opts: IndexDeleteOptions,
): Promise<number> {
  let dir: string;
  try {
    dir = targetDir(provider, source, opts);
    const removed = deleteIndexTree(dir);
    process.stdout.write(removed ? `deleted ${dir}\n` : `no index at ${dir}\n`);
  } catch (err) {
    if (err instanceof AuditError) throw new UsageError(err.message);
    throw err;
  }
  return EXIT.ok;
}
