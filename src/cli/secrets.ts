/**
 * Secrets (passphrases, PINs) come from a file or an environment variable, never from the command
 * line, where `ps` and shell history would show them.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

export interface SecretSource {
  readonly file?: string;
  readonly env?: string;
}

/** Reads a secret; a trailing newline in a file is not part of it. Undefined when no source is named. */
export function readSecret(what: string, source: SecretSource): Uint8Array | undefined {
  if (source.file && source.env) throw usage(`${what}: give a file or an environment variable, not both`);
  if (source.file) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw usage(`${what}: cannot read ${source.file} (${(err as NodeJS.ErrnoException).code})`);
    }
    return nonEmpty(what, text.replace(/\r?\n$/, ''));
  }
  if (source.env) {
    const value = process.env[source.env];
    if (value === undefined) throw usage(`${what}: environment variable ${source.env} is not set`);
    return nonEmpty(what, value);
  }
  return undefined;
}

function nonEmpty(what: string, text: string): Uint8Array {
  if (!text) throw usage(`${what} is empty`);
  return new TextEncoder().encode(text);
}

function usage(message: string): UsageError {
  return new UsageError(message);
}
