/**
 * A store of recorded sessions for the auditor benchmarks, sealed through the real SealedLog (no gate):
 * a mix of exec sessions (`ssh host 'journalctl …'`: one EXEC and bulk output, no PTY) and interactive
 * sessions (PTY and shell: a prompt, each keystroke one DATA_IN record and its echo one DATA_OUT record
 * as a real client and sshd send them, Enter echoed as CRLF, then the command's output with colours and
 * the next prompt). Sessions overlap (several open at once, their records interleaved), their times are
 * spread over the last 30 days, and one command in about 200 is a `kubectl delete`.
 *
 * Deterministic for a seed (a small PRNG), so that two builds hold the same sessions and commands.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CryptoProvider } from '../../src/crypto/index.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import type { SessionRecorder } from '../../src/seal/session-recorder.js';

export interface AuditStoreOptions {
  readonly sessions: number;
  /** Plaintext bytes to aim for, over all sessions. */
  readonly bytes: number;
  /** Share of interactive sessions (0..1). */
  readonly interactive: number;
  /** How many sessions are open at once. */
  readonly concurrency: number;
  readonly seed: number;
}

export interface AuditStore {
  readonly dir: string;
  /** The recipient private key, PEM (unencrypted: a benchmark key). */
  readonly keyFile: string;
  /** A directory with the checkpoint signer's public key, for `--keys`. */
  readonly signersDir?: string;
  readonly sessions: number;
  readonly commands: number;
  readonly kubectlDeletes: number;
  readonly plaintextBytes: number;
}

const enc = new TextEncoder();

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
const TARGETS = ['web01', 'web02', 'web03', 'db01', 'db02', 'k8s-admin', 'build01', 'cache01'];
const SHELL_COMMANDS = [
  'ls -la /var/log',
  'cd /srv/app && git status',
  'sudo systemctl status nginx',
  'tail -n 50 /var/log/syslog',
  'df -h',
  'free -m',
  'ps aux --sort=-%cpu | head',
  'kubectl get pods -n prod',
  'kubectl describe deployment api -n prod',
  'grep -r "timeout" /etc/nginx/',
  'cat /etc/os-release',
  'docker ps --format "{{.Names}}"',
  'journalctl -u app --since "1 hour ago" | tail',
  'uptime',
  'ip addr show',
  'psql -c "select count(*) from orders"',
];
const EXEC_COMMANDS = [
  'journalctl -u app --no-pager --since yesterday',
  'cat /var/log/nginx/access.log',
  'tar czf - /srv/app/releases/current | base64',
  'find / -xdev -type f -size +10M',
  'dmesg',
  'rsync --server --sender -logDtpre.iLsfxC . /var/backups/',
];

function logLine(rand: () => number, n: number): string {
  const ip = `10.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}`;
  const path = ['/api/orders', '/api/users/42', '/healthz', '/static/app.js', '/login'][n % 5]!;
  const status = [200, 200, 200, 304, 404, 500][Math.floor(rand() * 6)]!;
  return `${ip} - - [02/Dec/2026:10:${String(n % 60).padStart(2, '0')}:00 +0000] "GET ${path} HTTP/1.1" ${status} ${Math.floor(rand() * 50000)} "-" "curl/7.88.1"\n`;
}

/**
 * A command's output, heavy-tailed as an operator's are: mostly a few lines, sometimes a listing or a
 * grep of tens of KiB, now and then a log of hundreds of KiB (`cat`, `journalctl`).
 */
function commandOutput(rand: () => number, command: string): string {
  const lines: string[] = [];
  const roll = rand();
  const want =
    roll < 0.7 ? 200 + rand() * 2000 : roll < 0.95 ? 5000 + rand() * 25_000 : 50_000 + rand() * 450_000;
  for (let i = 0, size = 0; size < want; i++) {
    let line: string;
    if (command.startsWith('ls'))
      line = `-rw-r----- 1 syslog adm ${Math.floor(rand() * 1e6)} Dec  2 10:0${i % 10} \x1b[01;34mfile${i}.log\x1b[0m`;
    else if (command.startsWith('kubectl'))
      line = `api-7f9c${i.toString(16)}d-x${i}   1/1     Running   0          ${i}d`;
    else line = logLine(rand, i).trimEnd();
    lines.push(line);
    size += line.length + 2;
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** What a PTY gives sshd per read: output reaches the client in chunks of at most 4 KiB. */
const PTY_CHUNK = 4096;

interface Live {
  readonly rec: SessionRecorder;
  readonly steps: Generator<void>;
}

/** Builds the store in `dir` (which must not exist). */
export async function buildAuditStore(
  provider: CryptoProvider,
  dir: string,
  opts: AuditStoreOptions,
): Promise<AuditStore> {
  const rand = prng(opts.seed);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const recipient = await provider.generateKey({ type: 'rsa', bits: 3072 });
  const signer = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  const keyFile = join(dir, 'recipient.key.pem');
  writeFileSync(keyFile, provider.exportPrivateKey(recipient), { mode: 0o600 });
  const signersDir = join(dir, 'signers');
  mkdirSync(signersDir, { mode: 0o700 });
  writeFileSync(join(signersDir, 'signer.pub.pem'), signer.publicKey.spkiPem());
  // Times: 30 days ago to now, spread evenly over the records.
  const startUs = BigInt(Date.now() - 30 * 86400e3) * 1000n;
  const spanUs = 30n * 86400n * 1_000_000n;
  // An interactive session averages about 50 commands of about 19 KB of output (commandOutput): exec
  // sessions fill the rest of the byte target.
  const interactiveBytes = opts.sessions * opts.interactive * 50 * 19_000;
  const execBytesPerSession = Math.max(
    16_000,
    (opts.bytes - interactiveBytes) / Math.max(1, opts.sessions * (1 - opts.interactive)),
  );
  let plaintext = 0;
  let clockUs = startUs;
  const clock = (): bigint => {
    const t = startUs + BigInt(Math.floor((Math.min(plaintext, opts.bytes) / opts.bytes) * Number(spanUs)));
    clockUs = t > clockUs ? t : clockUs + 1n;
    return clockUs;
  };
  const log = await SealedLog.open({
    provider,
    dir: join(dir, 'store'),
    origin: 'bench.sealgate/commands-grep',
    recipients: [recipient.publicKey],
    signingKey: signer,
    create: true,
    clock,
    policy: { fsyncEveryEntries: 4096, fsyncEveryMs: 200 },
  });
  let commands = 0;
  let kubectlDeletes = 0;
  const data = (rec: SessionRecorder, type: RecordType, text: string | Uint8Array): void => {
    const bytes = typeof text === 'string' ? enc.encode(text) : text;
    plaintext += bytes.length;
    rec.event(type as typeof RecordType.DATA_OUT, { channel: 0, data: bytes });
  };

  function* exec(rec: SessionRecorder, user: string, target: string): Generator<void> {
    yield* start(rec, user, target);
    const command = EXEC_COMMANDS[Math.floor(rand() * EXEC_COMMANDS.length)]!;
    rec.event(RecordType.EXEC, { channel: 0, command });
    commands++;
    const want = execBytesPerSession * (0.5 + rand());
    for (let sent = 0, n = 0; sent < want;) {
      let chunk = '';
      while (chunk.length < 16_000) chunk += logLine(rand, n++);
      data(rec, RecordType.DATA_OUT, chunk);
      sent += chunk.length;
      yield;
    }
    rec.event(RecordType.EXIT_STATUS, { channel: 0, code: rand() < 0.9 ? 0 : 1 });
    rec.event(RecordType.CHANNEL_CLOSE, { channel: 0 });
    rec.end('client disconnected');
  }

  function* interactive(rec: SessionRecorder, user: string, target: string): Generator<void> {
    yield* start(rec, user, target);
    rec.event(RecordType.PTY_REQ, {
      channel: 0,
      term: 'xterm-256color',
      cols: 120,
      rows: 40,
      width: 0,
      height: 0,
    });
    rec.event(RecordType.SHELL, { channel: 0 });
    const prompt = `\x1b[01;32m${user}@${target}\x1b[00m:\x1b[01;34m~\x1b[00m$ `;
    data(rec, RecordType.DATA_OUT, `Welcome to Debian GNU/Linux 12\r\n${prompt}`);
    const count = 20 + Math.floor(rand() * 60);
    for (let n = 0; n < count; n++) {
      let command = SHELL_COMMANDS[Math.floor(rand() * SHELL_COMMANDS.length)]!;
      if (rand() < 0.005) {
        command = `kubectl delete pod api-${Math.floor(rand() * 1e6).toString(16)} -n prod`;
        kubectlDeletes++;
      }
      for (const ch of command) {
        data(rec, RecordType.DATA_IN, ch);
        data(rec, RecordType.DATA_OUT, ch);
      }
      data(rec, RecordType.DATA_IN, '\r');
      const out = `\r\n${commandOutput(rand, command)}${prompt}`;
      for (let at = 0; at < out.length; at += PTY_CHUNK)
        data(rec, RecordType.DATA_OUT, out.slice(at, at + PTY_CHUNK));
      commands++;
      yield;
    }
    for (const ch of 'exit') {
      data(rec, RecordType.DATA_IN, ch);
      data(rec, RecordType.DATA_OUT, ch);
    }
    data(rec, RecordType.DATA_IN, '\r');
    data(rec, RecordType.DATA_OUT, '\r\nlogout\r\n');
    commands++;
    rec.event(RecordType.EXIT_STATUS, { channel: 0, code: 0 });
    rec.event(RecordType.CHANNEL_CLOSE, { channel: 0 });
    rec.end('client disconnected');
  }

  function* start(rec: SessionRecorder, user: string, target: string): Generator<void> {
    rec.event(RecordType.SESSION_START, {
      user: 'deploy',
      target,
      client: `192.0.2.${1 + Math.floor(rand() * 250)}:${40000 + Math.floor(rand() * 20000)}`,
      gate_user: user,
      target_host: `${target}.internal`,
      target_port: 22,
    });
    rec.event(RecordType.AUTH_RESULT, { method: 'publickey', ok: true, key_fingerprint: 'SHA256:bench' });
    rec.event(RecordType.CHANNEL_OPEN, { channel: 0, type: 'session' });
    yield;
  }

  const live: Live[] = [];
  let opened = 0;
  const openOne = (): void => {
    const rec = log.openSession();
    const user = USERS[Math.floor(rand() * USERS.length)]!;
    const target = TARGETS[Math.floor(rand() * TARGETS.length)]!;
    const steps = rand() < opts.interactive ? interactive(rec, user, target) : exec(rec, user, target);
    live.push({ rec, steps });
    opened++;
  };
  let turns = 0;
  while (opened < opts.sessions || live.length > 0) {
    while (live.length < opts.concurrency && opened < opts.sessions) openOne();
    const i = Math.floor(rand() * live.length);
    if (live[i]!.steps.next().done) live.splice(i, 1);
    if (++turns % 256 === 0) await log.flush();
  }
  await log.close('bench store built');
  return {
    dir: join(dir, 'store'),
    keyFile,
    signersDir,
    sessions: opts.sessions,
    commands,
    kubectlDeletes,
    plaintextBytes: plaintext,
  };
}
