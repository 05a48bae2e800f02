/**
 * The upstream leg: one ssh2 Client per client connection, to the routed target.
 *
 * - Explicit algorithm lists (algorithms.ts), with the host key algorithms narrowed to the pinned keys'
 *   types.
 * - The target's host key must be one pinned in its known_hosts file (known-hosts.ts), compared in
 *   constant time through the provider. No pinned key, a different key, or a revoked key: the connection
 *   is refused (fail closed), with a message for the user.
 * - The gate logs in with its own key through ProviderAgent, so the provider makes every signature.
 * - A failure is told apart (upstreamFailure): a changed host key or a target with no allowed algorithm
 *   raises an ALERT; anything else is an ordinary refusal.
 */
import { readFile } from 'node:fs/promises';
import ssh2, { type AgentAuthMethod } from 'ssh2';
import type { Target } from '../config/schema.js';
import type { CryptoProvider, SshAlgorithms } from '../crypto/index.js';
import { pinnedHostKeyAlgorithms, toSsh2 } from './algorithms.js';
import { GateError } from './errors.js';
import { knownHostsName, parseKnownHosts, pinnedKeys } from './known-hosts.js';
import type { ProviderAgent } from './provider-agent.js';

export type UpstreamClient = InstanceType<typeof ssh2.Client>;

export interface UpstreamOptions {
  readonly provider: CryptoProvider;
  readonly target: Target;
  readonly remoteUser: string;
  readonly algorithms: SshAlgorithms;
  readonly agent: ProviderAgent;
  /** TCP connect plus handshake plus login; default 10 s. */
  readonly timeoutMs?: number;
}

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/** "target web1 (10.0.0.5:22)" */
export function describeTarget(target: Target): string {
  return `target ${target.name} (${target.host}:${target.port})`;
}

/** Upstream failures that raise an ALERT (sealed, and in the operational log), with their severity. */
const ALERTING_UPSTREAM_FAILURES: Partial<Record<GateError['code'], 'critical' | 'warning'>> = {
  HOST_KEY_MISMATCH: 'critical',
  HOST_KEY_UNPINNED: 'critical',
  NO_COMMON_ALGORITHM: 'warning',
};

/** Why the upstream connection failed, and the ALERT it raises, if any. */
export interface UpstreamFailure {
  readonly error: GateError;
  readonly alert?: { readonly rule: string; readonly severity: 'critical' | 'warning' };
}

/**
 * Classifies a failure to connect to `target`. A changed host key may be an attack; a target with no
 * algorithm the policy allows is one that cannot be reached compliantly (in FIPS mode: it offers only
 * non-approved algorithms). Both raise an ALERT.
 */
export function upstreamFailure(err: unknown, target: Target): UpstreamFailure {
  const error =
    err instanceof GateError
      ? err
      : new GateError('UPSTREAM_FAILED', `${describeTarget(target)}: ${(err as Error).message}`);
  const severity = ALERTING_UPSTREAM_FAILURES[error.code];
  return severity ? { error, alert: { rule: `upstream.${error.code.toLowerCase()}`, severity } } : { error };
}

/** Connects and logs in; rejects with a GateError whose message is meant for the user. */
export async function connectUpstream(opts: UpstreamOptions): Promise<UpstreamClient> {
  const { provider, target } = opts;
  let text: string;
  try {
    text = await readFile(target.known_hosts, 'utf8');
  } catch (err) {
    throw new GateError(
      'HOST_KEY_UNPINNED',
      `no pinned host key for ${target.name}: cannot read ${target.known_hosts} (${(err as NodeJS.ErrnoException).code ?? 'error'}); refusing`,
    );
  }
  const { pinned, revoked } = pinnedKeys(parseKnownHosts(text), target.host, target.port);
  const hostKeyAlgorithms = pinnedHostKeyAlgorithms(
    opts.algorithms.serverHostKey,
    pinned.map((k) => k.keyType),
  );
  if (pinned.length === 0 || hostKeyAlgorithms.length === 0) {
    throw new GateError(
      'HOST_KEY_UNPINNED',
      `no pinned host key for ${target.name} (${knownHostsName(target.host, target.port)}) of an allowed type in ${target.known_hosts}; refusing`,
    );
  }

  const agentAuth: AgentAuthMethod = { type: 'agent', username: opts.remoteUser, agent: opts.agent };
  return new Promise<UpstreamClient>((resolve, reject) => {
    const client = new ssh2.Client();
    let hostKey: 'ok' | 'mismatch' | 'revoked' | undefined;
    let settled = false;
    const fail = (err: GateError) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      fail(classify(err, hostKey, opts));
    });
    client.on('close', () =>
      fail(new GateError('UPSTREAM_FAILED', `${describeTarget(target)} closed the connection`)),
    );
    client.connect({
      host: target.host,
      port: target.port,
      username: opts.remoteUser,
      algorithms: toSsh2({ ...opts.algorithms, serverHostKey: hostKeyAlgorithms }),
      authHandler: [agentAuth],
      readyTimeout: opts.timeoutMs ?? 10_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      ident: 'sealgate',
      hostVerifier: (key: Buffer): boolean => {
        const blob = new Uint8Array(key.buffer, key.byteOffset, key.length);
        // Every candidate is compared, so timing does not reveal which pinned key matched.
        let isRevoked = false;
        for (const r of revoked) if (provider.equal(r.blob, blob)) isRevoked = true;
        let isPinned = false;
        for (const p of pinned) if (provider.equal(p.blob, blob)) isPinned = true;
        hostKey = isRevoked ? 'revoked' : isPinned ? 'ok' : 'mismatch';
        return hostKey === 'ok';
      },
    });
  });
}

function classify(
  err: Error & { level?: string; code?: string },
  hostKey: 'ok' | 'mismatch' | 'revoked' | undefined,
  opts: UpstreamOptions,
): GateError {
  const { target } = opts;
  if (hostKey === 'mismatch' || hostKey === 'revoked') {
    return new GateError(
      'HOST_KEY_MISMATCH',
      hostKey === 'revoked'
        ? `host key for ${target.name} is revoked in ${target.known_hosts}; refusing`
        : `host key for ${target.name} does not match the pinned key; refusing`,
      { cause: err },
    );
  }
  if ((err.code && NETWORK_ERRORS.has(err.code)) || err.level === 'client-timeout') {
    return new GateError('TARGET_UNREACHABLE', `${describeTarget(target)} is not reachable`, { cause: err });
  }
  if (err.level === 'handshake' && /no matching/i.test(err.message)) {
    return new GateError(
      'NO_COMMON_ALGORITHM',
      `${describeTarget(target)} offers no algorithm the gate's policy allows (${err.message})`,
      { cause: err },
    );
  }
  if (err.level === 'client-authentication' || err.level === 'agent') {
    return new GateError(
      'UPSTREAM_AUTH_FAILED',
      `the gate could not log in to ${target.name} as ${opts.remoteUser}`,
      { cause: err },
    );
  }
  return new GateError('UPSTREAM_FAILED', `connection to ${describeTarget(target)} failed: ${err.message}`, {
    cause: err,
  });
}
