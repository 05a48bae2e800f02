/**
 * OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): the pinned host keys of a target.
 * Pure: text in, entries out; comparing key blobs is the caller's job (in constant time, via the provider).
 *
 * Supported: comma-separated host patterns with `*`, `?` and `!` negation; `[host]:port` for a port other
 * than 22; the `@revoked` marker (a revoked key is refused for every host, as OpenSSH does).
 * Not supported, and reported as problems rather than silently matched: hashed host names (`|1|…`, whose
 * HMAC-SHA-1 the gate does not compute; write the file with `ssh-keyscan` without `-H`) and
 * `@cert-authority` lines (host certificates are a later step).
 */
import { blobKeyType } from './wire.js';

export interface KnownHostKey {
  /** The line it came from, 1-based. */
  readonly line: number;
  readonly patterns: readonly string[];
  readonly keyType: string;
  readonly blob: Uint8Array;
  readonly revoked: boolean;
}

export interface KnownHostsProblem {
  readonly line: number;
  readonly message: string;
}

export interface KnownHosts {
  readonly keys: readonly KnownHostKey[];
  readonly problems: readonly KnownHostsProblem[];
}

export function parseKnownHosts(text: string): KnownHosts {
  const keys: KnownHostKey[] = [];
  const problems: KnownHostsProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else {
        problems.push({
          line,
          message:
            marker === '@cert-authority'
              ? '@cert-authority lines are not supported yet; line ignored'
              : `unknown marker ${marker}; line ignored`,
        });
        return;
      }
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) {
      problems.push({ line, message: 'expected "hostnames keytype base64-key [comment]"; line ignored' });
      return;
    }
    if (hosts.startsWith('|')) {
      problems.push({
        line,
        message:
          'hashed host names are not supported (write the file with ssh-keyscan without -H); line ignored',
      });
      return;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      problems.push({ line, message: 'the key is not base64; line ignored' });
      return;
    }
    const blob = new Uint8Array(Buffer.from(b64, 'base64'));
    if (blobKeyType(blob) !== keyType) {
      problems.push({ line, message: `the line says ${keyType}, but the key blob is not one; line ignored` });
      return;
    }
    keys.push({ line, patterns: hosts.split(','), keyType, blob, revoked });
  });
  return { keys, problems };
}

/** The name a host is looked up under: `host` for port 22, `[host]:port` otherwise (as ssh writes it). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The keys pinned for `host`:`port` (not revoked), and every revoked key in the file. */
export function pinnedKeys(
  known: KnownHosts,
  host: string,
  port: number,
): { pinned: KnownHostKey[]; revoked: KnownHostKey[] } {
  const name = knownHostsName(host, port).toLowerCase();
  return {
    pinned: known.keys.filter((k) => !k.revoked && matchesHost(k.patterns, name)),
    revoked: known.keys.filter((k) => k.revoked),
  };
}

/** OpenSSH's rule: a negated pattern that matches vetoes the line; otherwise any positive match counts. */
export function matchesHost(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    if (wildcard(negated ? p.slice(1) : p, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** `*` and `?` glob, case-insensitive (host names are). */
function wildcard(pattern: string, name: string): boolean {
  const re = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}
