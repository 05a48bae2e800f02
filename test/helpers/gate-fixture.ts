/**
 * A gate for integration tests: keys and a config in a temporary directory, a SealedLog there, startGate
 * in-process on a free port, in front of a real sshd (helpers/sshd.ts). The real OpenSSH client talks to
 * it (helpers/ssh-client.ts), and `records()` opens what was sealed with the recipient key.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { storeSource } from '../../src/audit/source.js';
import { verifyLog, type VerifyReport } from '../../src/audit/verify/verifier.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import {
  OpenSslProvider,
  type CryptoProvider,
  type KeySpec,
  type PrivateKey,
} from '../../src/crypto/index.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { decodePayload } from '../../src/seal/format/payload.js';
import { EntryKind, recordTypeName, systemTypeName, type RecordType } from '../../src/seal/format/types.js';
import { SealedLog, type LogPolicy } from '../../src/seal/log.js';
import { SegmentOpener } from '../../src/seal/opener.js';
import { LocalStore } from '../../src/seal/store.js';
import type { GateLimits } from '../../src/ssh/services.js';
import { startGate, type Gate } from '../../src/ssh/gate.js';
import type { Sshd } from './sshd.js';
import { runSsh, type SshResult, type SshRunOptions } from './ssh-client.js';

export const ORIGIN = 'test.sealgate/ssh';

/** One opened record; system entries have an empty `session` and their body as `payload`. */
export interface Rec {
  readonly session: string;
  readonly type: string;
  readonly final: boolean;
  /** The JSON object, or `{ channel, data }` for the data types. */
  readonly payload: Record<string, unknown> & { data?: Uint8Array };
}

export interface GateFixture {
  readonly dir: string;
  readonly provider: CryptoProvider;
  readonly gate: Gate;
  readonly log: SealedLog;
  readonly config: Config;
  /** The gate user's OpenSSH private key (authorized for user `ops`). */
  readonly userKey: string;
  /** A key nobody authorized. */
  readonly strangerKey: string;
  /** known_hosts for ssh clients: pins the gate's host key. */
  readonly clientKnownHosts: string;
  /** Operational log lines (winston JSON). */
  readonly opsLog: Record<string, unknown>[];
  /** The log's recipient (its private key opens every record) and its checkpoint signer. */
  readonly recipient: PrivateKey;
  readonly signer: PrivateKey;
  /** ssh's options for this gate, without the destination. */
  sshOptions(key?: string): string[];
  /**
   * Writes an ssh_config for ProxyJump (`ssh -F CONFIG web1` goes through `Host gate`) and returns its
   * path. `-J` passes no `-i`/`-o` to the jump leg, so both legs are set here. The gate presents its own
   * host key for a jump's inner session, so it is pinned under each of `innerNames`.
   */
  jumpConfig(innerNames: readonly string[]): string;
  /** Runs `ssh [extra…] [options…] login@127.0.0.1 [command…]` against the gate. */
  ssh(
    login: string,
    command: string[],
    opts?: SshRunOptions & { extra?: string[]; key?: string },
  ): Promise<SshResult>;
  /** Every sealed record so far, opened with the recipient key, in log order. */
  records(): Promise<Rec[]>;
  /** The offline verifier over the store as it stands (checkpointed first when the log still runs). */
  verify(): Promise<VerifyReport>;
  /** Waits until `n` sessions have ended (SESSION_END), then returns all records. */
  recordsAfterSessions(n: number, timeoutMs?: number): Promise<Rec[]>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  readonly sshd: Sshd;
  /** Changes the raw config before it is validated. */
  readonly configure?: (
    config: Record<string, unknown> & {
      targets: Record<string, unknown>[];
      users: Record<string, unknown>[];
    },
  ) => void;
  readonly limits?: Partial<GateLimits>;
  readonly logPolicy?: Partial<LogPolicy>;
  /** Told when the log fails (after the gate has been told). */
  readonly onLogFailure?: (err: Error) => void;
  /** The gate's upstream key (default ECDSA P-256). */
  readonly upstreamKey?: KeySpec;
}

export function sshKeygen(path: string): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-C', 'test', '-f', path], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return spawnSync('cat', [`${path}.pub`], { encoding: 'utf8' }).stdout.trim();
}

export async function startGateFixture(opts: FixtureOptions): Promise<GateFixture> {
  const provider = new OpenSslProvider();
  const dir = mkdtempSync(join(tmpdir(), 'sealgate-gate-'));
  const writeKey = async (name: string, key: PrivateKey): Promise<string> => {
    const path = join(dir, name);
    writeFileSync(path, provider.exportPrivateKey(key), { mode: 0o600 });
    return path;
  };
  const hostKey = await provider.generateKey({ type: 'ec', curve: 'P-256' });
  const upstreamKey = await provider.generateKey(opts.upstreamKey ?? { type: 'ec', curve: 'P-256' });
  const signer = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  const recipient = await provider.generateKey({ type: 'rsa', bits: 2048 });
  const hostKeyPath = await writeKey('host_key.pem', hostKey);
  const upstreamKeyPath = await writeKey('upstream_key.pem', upstreamKey);
  const signerPath = await writeKey('signer.key.pem', signer);
  writeFileSync(join(dir, 'recipient.pub.pem'), recipient.publicKey.spkiPem());
  const knownHosts = join(dir, 'known_hosts.local');
  writeFileSync(knownHosts, `${opts.sshd.knownHostsLine}\n`);
  opts.sshd.authorize(upstreamKey.publicKey.openssh('sealgate-test-upstream'));

  const userKey = join(dir, 'user_key');
  const userPub = sshKeygen(userKey);
  const strangerKey = join(dir, 'stranger_key');
  sshKeygen(strangerKey);

  const raw = {
    listen: { host: '127.0.0.1', port: 2222, host_key: `file:${hostKeyPath}` },
    targets: [
      {
        name: 'local',
        host: '127.0.0.1',
        port: opts.sshd.port,
        user: opts.sshd.user,
        known_hosts: knownHosts,
      },
    ] as Record<string, unknown>[],
    users: [{ name: 'ops', authorized_keys: [userPub], targets: ['*'] }] as Record<string, unknown>[],
    upstream: { client_key: `file:${upstreamKeyPath}` },
    recording: {
      store: join(dir, 'store'),
      recipients: [`file:${join(dir, 'recipient.pub.pem')}`],
      checkpoint_signer: `file:${signerPath}`,
    },
  };
  opts.configure?.(raw);
  const config = validateConfig(raw, { source: 'test' });

  const opsLog: Record<string, unknown>[] = [];
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk: Buffer, _enc, cb) {
            for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
              opsLog.push(JSON.parse(line) as Record<string, unknown>);
            cb();
          },
        }),
      }),
    ],
  });

  const gateRef: { gate?: Gate } = {};
  const log = await SealedLog.open({
    provider,
    dir: config.recording.store,
    origin: ORIGIN,
    recipients: [recipient.publicKey],
    signingKey: signer,
    create: true,
    onFailure: (err) => {
      gateRef.gate?.recordingFailed(err);
      opts.onLogFailure?.(err);
    },
    ...(opts.logPolicy ? { policy: opts.logPolicy } : {}),
  });
  const gate = await startGate({
    config,
    provider,
    log,
    logger,
    port: 0,
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  gateRef.gate = gate;
  const clientKnownHosts = join(dir, 'client_known_hosts');
  writeFileSync(clientKnownHosts, `[127.0.0.1]:${gate.port} ${gate.hostKeyLine}\n`);

  const sshOptions = (key = userKey): string[] => [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${clientKnownHosts}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'ConnectTimeout=10',
    '-i',
    key,
    '-p',
    String(gate.port),
  ];

  const records = async (): Promise<Rec[]> => {
    if (!log.failed) await log.checkpoint().catch(() => undefined);
    return openStore(provider, config.recording.store, recipient);
  };

  return {
    dir,
    provider,
    gate,
    log,
    config,
    userKey,
    strangerKey,
    clientKnownHosts,
    opsLog,
    recipient,
    signer,
    sshOptions,
    ssh(login, command, o = {}) {
      // `extra` first: ssh takes the first value of an option, so tests can override the defaults.
      return runSsh([...(o.extra ?? []), ...sshOptions(o.key), `${login}@127.0.0.1`, ...command], o);
    },
    records,
    jumpConfig(innerNames) {
      const innerKnownHosts = join(dir, 'inner_known_hosts');
      writeFileSync(innerKnownHosts, innerNames.map((n) => `${n} ${gate.hostKeyLine}\n`).join(''));
      const common = [
        '  User ops',
        `  IdentityFile ${userKey}`,
        '  IdentitiesOnly yes',
        '  IdentityAgent none',
        '  BatchMode yes',
        '  StrictHostKeyChecking yes',
        '  ConnectTimeout 10',
      ];
      const config = join(dir, 'ssh_config');
      writeFileSync(
        config,
        [
          'Host gate',
          '  HostName 127.0.0.1',
          `  Port ${gate.port}`,
          `  UserKnownHostsFile ${clientKnownHosts}`,
          '  ProxyJump none',
          ...common,
          'Host *',
          '  ProxyJump gate',
          `  UserKnownHostsFile ${innerKnownHosts}`,
          ...common,
          '',
        ].join('\n'),
      );
      return config;
    },
    async verify() {
      if (!log.failed) await log.checkpoint();
      const source = storeSource(config.recording.store);
      try {
        return verifyLog(provider, source, {
          trustedSigners: [signer.publicKey],
          heartbeatSeconds: (opts.logPolicy?.heartbeatMs ?? 60_000) / 1000,
        });
      } finally {
        source.close();
      }
    },
    async recordsAfterSessions(n: number, timeoutMs = 10_000): Promise<Rec[]> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const recs = await records();
        if (recs.filter((r) => r.type === 'SESSION_END').length >= n || Date.now() > deadline) return recs;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      await gate.close('test done');
      if (!log.failed) await log.close('test done');
      else await log.close('test done').catch(() => undefined);
      logger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every record in the store at `dir`, opened with `recipient`, in log order. */
export async function openStore(
  provider: CryptoProvider,
  dir: string,
  recipient: PrivateKey,
): Promise<Rec[]> {
  const store = LocalStore.openReadOnly(dir);
  const out: Rec[] = [];
  const openers = new Map<string, { opener: SegmentOpener; session: string }>();
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  try {
    for (const bytes of store.entries(0, store.size)) {
      const e = decodeEntry(bytes);
      if (e.kind === EntryKind.SEGMENT_HEADER) {
        openers.set(hex(e.segmentId), {
          opener: await SegmentOpener.open(provider, bytes, recipient),
          session: hex(e.sessionId),
        });
      } else if (e.kind === EntryKind.SEALED_RECORD) {
        const seg = openers.get(hex(e.segmentId));
        if (!seg) throw new Error('record before its segment header');
        const r = seg.opener.open(bytes);
        const payload = decodePayload(r.type as RecordType, r.plaintext) as Rec['payload'];
        out.push({ session: seg.session, type: recordTypeName(r.type), final: r.final, payload });
      } else {
        out.push({ session: '', type: systemTypeName(e.type), final: false, payload: e.body });
      }
    }
  } finally {
    await store.close();
  }
  return out;
}

/** The bytes of the data records of `type` (DATA_IN/OUT/ERR), concatenated, as text. */
export function dataText(recs: readonly Rec[], type: 'DATA_IN' | 'DATA_OUT' | 'DATA_ERR'): string {
  return Buffer.concat(
    recs.filter((r) => r.type === type).map((r) => r.payload.data ?? new Uint8Array(0)),
  ).toString('utf8');
}
