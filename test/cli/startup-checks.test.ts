/**
 * "config check says OK" must mean "serve starts and can record" (issue 10): every config here is run
 * through the real CLI twice, as `sealgate config check FILE` and as `sealgate serve -c FILE`. A config
 * one refuses, the other refuses with the same message, and serve exits before it listens; a config the
 * check passes, serve starts with.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { BAD, edited, type Loose } from '../config/bad-configs.js';
import { runCli, showRun as show, STACK_LINE, type CliRun } from '../helpers/cli.js';
import { cliPath, repoRoot } from '../helpers/paths.js';
import { freePort } from '../helpers/sshd.js';
import { makeSoftHsm2, type TestToken } from '../tokens/tokens.js';

const FIPS_DIR = resolve(process.env.SEALGATE_FIPS_DIR ?? join(repoRoot(), '.cache', 'fips'));
const HEADLINE = 'the gate cannot start with this config';

let tmp: string;
/** `sealgate init`'s config, its target pinned: the good config every case edits. */
let good: string;
let keys: string;
let origin: string;

const sealgate = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> =>
  runCli(args, { SEALGATE_FIPS_DIR: FIPS_DIR, ...env });

/** openssl(1) makes the keys the provider's policy will not even generate (RSA-1024). */
function opensslKey(name: string, args: string[], pub: boolean): string {
  const priv = join(tmp, `${name}.pem`);
  const r = spawnSync('openssl', ['genpkey', ...args, '-out', priv], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  if (!pub) return priv;
  const out = join(tmp, `${name}.pub.pem`);
  const p = spawnSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', out], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  return out;
}

/** Writes the good config with `edit` applied to its data, and returns the file. */
function variant(name: string, edit: (c: Loose) => void): string {
  const config = parse(readFileSync(good, 'utf8')) as Loose;
  edit(config);
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  return file;
}

/**
 * Runs `config check` and `serve` on `file`: both exit 2 with the same message on stderr, one line per
 * problem and no stack trace; serve never got as far as listening. Returns the message.
 */
async function bothRefuse(file: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const [check, serve] = await Promise.all([
    sealgate([...flags, 'config', 'check', file], env),
    sealgate([...flags, 'serve', '-c', file], env),
  ]);
  assert.equal(check.status, 2, show(check));
  assert.equal(check.stdout, '', show(check));
  assert.doesNotMatch(check.stderr, STACK_LINE, show(check));
  assert.equal(serve.status, 2, show(serve));
  assert.doesNotMatch(serve.stderr, /"listening"/, show(serve));
  assert.equal(serve.stderr, check.stderr, `serve and config check differ\n${show(serve)}`);
  return check.stderr;
}

/** The message for start-up issues, as both commands print it. */
const refusal = (file: string, ...lines: string[]): string =>
  `sealgate: ${file}: ${HEADLINE}\n${lines.join('\n')}\n`;

/** Starts `serve -c file`, waits for "listening", stops it with SIGTERM; returns its stderr. */
async function serveStarts(file: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(process.execPath, [cliPath(), 'serve', '-c', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SEALGATE_FIPS_DIR: FIPS_DIR, ...env },
  });
  let log = '';
  child.stderr.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  try {
    const deadline = Date.now() + 20_000;
    while (!log.includes('"listening"')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `serve did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    return log;
  } finally {
    child.kill('SIGKILL');
  }
}

let rsa1024: string;
let rsa2048: string;
let ed25519: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sealgate-startup-'));
  const gate = join(tmp, 'gate');
  const init = await sealgate(['init', gate, '--listen-port', String(await freePort())]);
  assert.equal(init.status, 0, show(init));
  keys = join(gate, 'keys');
  writeFileSync(
    join(gate, 'known_hosts', 'local'),
    `127.0.0.1 ${readFileSync(join(keys, 'upstream_key.pub'), 'utf8')}`,
  );
  good = join(gate, 'sealgate.yaml');
  origin = (parse(readFileSync(good, 'utf8')) as { recording: { origin: string } }).recording.origin;
  rsa1024 = opensslKey('rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], true);
  rsa2048 = opensslKey('rsa2048', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], true);
  ed25519 = opensslKey('ed25519', ['-algorithm', 'ed25519'], false);
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('config check refuses what serve refuses, with the same message', () => {
  it('the good config: config check OK, with nothing to warn about, and serve starts', async () => {
    const r = await sealgate(['config', 'check', good]);
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdout, `${good}: OK (1 target(s), 1 user(s), FIPS mode off)\n`);
    assert.equal(r.stderr, '');
    await serveStarts(good);
  });

  it('a limits.max_connections beyond the file-descriptor budget', async () => {
    const file = variant('max-connections', (c) => (c.limits = { max_connections: 10_000_000 }));
    const message = await bothRefuse(file);
    assert.match(
      message,
      /^limits\.max_connections: is 10000000, but this process's file-descriptor limit \(\d+, \d+ open, 64 reserved\) allows \d+ \(two sockets each\); raise the limit \(ulimit -n, or LimitNOFILE= in the systemd unit\) or lower max_connections$/m,
    );
  });

  it('an RSA-1024 recipient', async () => {
    const file = variant('rsa1024', (c) => (c.recording.recipients = [`file:${rsa1024}`]));
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `recording.recipients[0] (file:${rsa1024}): RSA-1024 is below the 2048-bit minimum [suite.rsa-min-2048]; ` +
          'RSA-OAEP recipients need ≥ 3072 bits (2048 accepted with a warning)',
      ),
    );
  });

  it('an EC recipient (serve used to start, then drop every session at its first segment)', async () => {
    const pub = join(keys, 'signer.pub.pem');
    const file = variant('ec-recipient', (c) => c.recording.recipients.push(`file:${pub}`));
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `recording.recipients[1] (file:${pub}): is an ECDSA P-384 key; recipients must be RSA keys ` +
          '(segment keys are wrapped with RSA-OAEP-SHA-256, ≥ 3072 bits)',
      ),
    );
  });

  it('an RSA-2048 recipient: accepted with a warning by both', async () => {
    const file = variant('rsa2048', (c) => (c.recording.recipients = [`file:${rsa2048}`]));
    const warning =
      `recording.recipients[0] (file:${rsa2048}): RSA-2048 is accepted, but 3072 bits or more are ` +
      'recommended (docs/FORMAT.md §2)';
    const r = await sealgate(['config', 'check', file]);
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stderr, `sealgate: warning: ${warning}\n`);
    const log = await serveStarts(file);
    assert.ok(log.includes(JSON.stringify(`start-up check: ${warning}`)), log);
  });

  it('a target that pins nothing and an unreadable authorized_keys file: config check passes, with warnings', async () => {
    const empty = join(tmp, 'empty_known_hosts');
    writeFileSync(empty, '# nothing pinned yet\n');
    const noKeys = join(tmp, 'no-such-authorized-keys');
    const file = variant('warnings', (c) => {
      c.targets[0].known_hosts = empty;
      c.users[0].authorized_keys_file = noKeys;
    });
    const r = await sealgate(['config', 'check', file]);
    assert.equal(r.status, 0, show(r));
    assert.equal(
      r.stderr,
      `sealgate: warning: targets[0].known_hosts (${empty}): pins no host key for local; sessions to it will be refused\n` +
        `sealgate: warning: users[0].authorized_keys_file (${noKeys}): skipped: cannot read: ENOENT\n`,
    );
  });

  it('a public key as the checkpoint signer', async () => {
    const pub = join(keys, 'signer.pub.pem');
    const file = variant('signer-pub', (c) => (c.recording.checkpoint_signer = `file:${pub}`));
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `recording.checkpoint_signer (file:${pub}): holds only a public key (ECDSA P-384); the checkpoint ` +
          'signer needs the private key (it signs checkpoints)',
      ),
    );
  });

  it('a checkpoint signer that is not P-384, and a host key the client leg does not list', async () => {
    const p256 = join(keys, 'host_key.pem');
    const p384 = join(keys, 'signer.key.pem');
    const file = variant('wrong-curves', (c) => {
      c.recording.checkpoint_signer = `file:${p256}`;
      c.listen.host_key = `file:${p384}`;
      c.ssh.client_leg = { server_host_key: ['ecdsa-sha2-nistp256'] };
    });
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `listen.host_key (file:${p384}): is ecdsa-sha2-nistp384, which ssh.client_leg.server_host_key does not ` +
          'list; no client could connect',
        `recording.checkpoint_signer (file:${p256}): is an ECDSA P-256 key; the checkpoint signer must be ` +
          'ECDSA P-384 (docs/FORMAT.md §2)',
      ),
    );
  });

  it('an Ed25519 host key (normal mode)', async () => {
    const file = variant('ed25519-host', (c) => (c.listen.host_key = `file:${ed25519}`));
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `listen.host_key (file:${ed25519}): is an Ed25519 key; the SSH host key must be ECDSA P-256 or P-384`,
      ),
    );
  });

  it('fips: true with an Ed25519 host key and an Ed25519 upstream key (in a FIPS-mode Node)', async () => {
    const file = variant('fips-ed25519', (c) => {
      c.fips = true;
      c.listen.host_key = `file:${ed25519}`;
      c.upstream.client_key = `file:${ed25519}`;
    });
    const rule = 'Ed25519 keys are not FIPS-approved (FIPS 186-4) [fips.no-ed25519]';
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `listen.host_key (file:${ed25519}): ${rule}`,
        `upstream.client_key (file:${ed25519}): ${rule}`,
      ),
    );
    // The same file without fips: true is refused only for the host key (Ed25519 upstream keys are fine).
    const normal = variant('normal-ed25519-upstream', (c) => (c.upstream.client_key = `file:${ed25519}`));
    const r = await sealgate(['config', 'check', normal]);
    assert.equal(r.status, 0, show(r));
    assert.equal((await sealgate(['--fips', 'config', 'check', normal])).status, 2);
  });

  it('a missing key file, a store path that is a file, and a store of another origin', async () => {
    const missing = join(tmp, 'no-such-key.pem');
    const notDir = join(tmp, 'a-file');
    writeFileSync(notDir, 'not a store\n');
    const file = variant('files', (c) => {
      c.upstream.client_key = `file:${missing}`;
      c.recording.store = notDir;
    });
    assert.equal(
      await bothRefuse(file),
      refusal(
        file,
        `upstream.client_key (file:${missing}): cannot read key file ${missing}: ENOENT`,
        `recording.store (${notDir}): ${notDir} is not a directory`,
      ),
    );

    const store = join(tmp, 'other-store');
    mkdirSync(store);
    for (const name of ['entries.bin', 'entries.idx', 'checkpoints.bin'])
      writeFileSync(join(store, name), '');
    writeFileSync(
      join(store, 'LOG'),
      `${JSON.stringify({ format: 'sealgate-store-v1', origin: 'other.example/sealgate', created: new Date().toISOString() })}\n`,
    );
    const foreign = variant('foreign-store', (c) => (c.recording.store = store));
    assert.equal(
      await bothRefuse(foreign),
      refusal(
        foreign,
        `recording.origin (${store}): the store belongs to origin "other.example/sealgate", not ${JSON.stringify(origin)}`,
      ),
    );

    const stray = join(tmp, 'not-a-store');
    mkdirSync(stray);
    writeFileSync(join(stray, 'notes.txt'), '');
    const strayFile = variant('stray-store', (c) => (c.recording.store = stray));
    assert.equal(
      await bothRefuse(strayFile),
      refusal(
        strayFile,
        `recording.store (${stray}): holds no store (no LOG file) and is not empty (notes.txt)`,
      ),
    );
  });

  it('the bad-config corpus: both refuse every case with the same message, naming each issue', async () => {
    const queue = [...BAD.entries()];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [i, bad] = next;
        const file = join(tmp, `corpus-${i}.json`);
        writeFileSync(file, JSON.stringify(edited(bad.edit)));
        const message = await bothRefuse(file, bad.fips ? ['--fips'] : []);
        const lines = message.trimEnd().split('\n');
        for (const issue of bad.issues) {
          assert.ok(lines.includes(`${issue.path}: ${issue.message}`), `${bad.name}\n${message}`);
        }
        assert.equal(lines.length, bad.issues.length + 1, `${bad.name}\n${message}`);
      }
    };
    await Promise.all([worker(), worker()]);
  });
});

describe('config check and serve load pkcs11: keys through the token, as serve does', () => {
  let token: TestToken;
  const gen = async (label: string, type: string): Promise<void> => {
    const r = await sealgate(
      ['keys', 'gen', '--pkcs11', '--module', token.module, '--token', token.labels[0] ?? 'sealgate'].concat([
        '--label',
        label,
        '--type',
        type,
        '--pin-file',
        token.pinFile,
      ]),
      token.env,
    );
    assert.equal(r.status, 0, show(r));
  };
  const withToken = (name: string, edit: (c: Loose) => void): string =>
    variant(name, (c) => {
      c.pkcs11 = { module: token.module, pin_file: token.pinFile };
      edit(c);
    });

  before(async () => {
    token = makeSoftHsm2();
    await gen('signer-p384', 'ec-p384');
    await gen('key-p256', 'ec-p256');
  });

  it('a P-384 signer in the token: OK, and serve starts with it', async () => {
    const file = withToken('token-good', (c) => {
      c.recording.checkpoint_signer = token.uri('signer-p384');
      c.recording.store = join(tmp, 'token-store'); // a store of its own: another signer signs it
    });
    const r = await sealgate(['config', 'check', file], token.env);
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stderr, '', show(r));
    await serveStarts(file, token.env);
  });

  it('token keys in the wrong role: a P-256 signer, an EC recipient, a host key in a token', async () => {
    const p256 = token.uri('key-p256');
    const p384 = token.uri('signer-p384');
    const file = withToken('token-bad', (c) => {
      c.recording.checkpoint_signer = p256;
      c.recording.recipients = [p384];
      c.listen.host_key = p256;
    });
    assert.equal(
      await bothRefuse(file, [], token.env),
      refusal(
        file,
        `listen.host_key (${p256}): is held in a token; ssh2 signs the key exchange itself, so the SSH host ` +
          'key must be a file: PEM key',
        `recording.recipients[0] (${p384}): is an ECDSA P-384 key; recipients must be RSA keys (segment keys ` +
          'are wrapped with RSA-OAEP-SHA-256, ≥ 3072 bits)',
        `recording.checkpoint_signer (${p256}): is an ECDSA P-256 key; the checkpoint signer must be ECDSA ` +
          'P-384 (docs/FORMAT.md §2)',
      ),
    );
  });

  it('a module that cannot be loaded, and a PIN the token refuses', async () => {
    const module = join(tmp, 'no-such-module.so');
    const noModule = withToken('token-no-module', (c) => {
      c.pkcs11.module = module;
      c.recording.checkpoint_signer = token.uri('signer-p384');
    });
    const message = await bothRefuse(noModule, [], token.env);
    assert.ok(
      message.startsWith(
        refusal(noModule, `pkcs11.module (${module}): cannot load PKCS#11 module ${module}: `).trimEnd(),
      ),
      message,
    );
    assert.equal(message.trimEnd().split('\n').length, 2, message);

    const wrongPin = join(tmp, 'wrong.pin');
    writeFileSync(wrongPin, '000000\n');
    const signer = token.uri('signer-p384');
    const badPin = withToken('token-bad-pin', (c) => {
      c.pkcs11.pin_file = wrongPin;
      c.recording.checkpoint_signer = signer;
    });
    const lines = (await bothRefuse(badPin, [], token.env)).trimEnd().split('\n');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.ok(lines[1]?.startsWith(`recording.checkpoint_signer (${signer}): `), lines.join('\n'));
  });
});
