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

/** ../shared/vectors beside the repo (Wycheproof and RFC 6962 vectors). */
export function vectorsDir(): string {
  return join(repoRoot(), '..', 'shared', 'vectors');
}

/** The sealgate CLI entry point. */
export function cliPath(): string {
  return join(repoRoot(), 'bin', 'sealgate.js');
}
