import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo root: the nearest ancestor of this (compiled) file that holds package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repo root not found');
    dir = up;
  }
  return dir;
}

/**
 * The shared test vectors (Wycheproof and RFC 6962): ../shared/vectors beside the repo, as the project
 * lays it out. SEALGATE_VECTORS_DIR overrides it, for a checkout that lives elsewhere. A missing
 * directory is an error that says where it looked, never a silently skipped test.
 */
export function vectorsDir(): string {
  const candidates = [process.env.SEALGATE_VECTORS_DIR, join(repoRoot(), '..', 'shared', 'vectors')].filter(
    (d): d is string => Boolean(d),
  );
  const found = candidates.find((d) => existsSync(join(d, 'wycheproof')));
  if (!found) {
    throw new Error(`test vectors not found (looked in ${candidates.join(', ')}); set SEALGATE_VECTORS_DIR`);
  }
  return found;
}

/** The sealgate CLI entry point. */
export function cliPath(): string {
  return join(repoRoot(), 'bin', 'sealgate.js');
}
