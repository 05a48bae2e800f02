/**
 * `sealgate init DIR`: a working demo gate in one directory: a config and every key it names.
 *
 *   DIR/sealgate.yaml                 the config (listen 127.0.0.1:2222, one target `local`, one user `demo`)
 *   DIR/keys/host_key.pem             ECDSA P-256 SSH host key of the gate
 *   DIR/keys/upstream_key.pem, .pub   ECDSA P-256 key the gate logs in to targets with (.pub: OpenSSH line)
 *   DIR/keys/signer.key.pem, .pub.pem ECDSA P-384 checkpoint signer
 *   DIR/keys/recipient.key.pem, .pub.pem  RSA-3072 customer key: UNENCRYPTED, for the demo only
 *   DIR/keys/demo_user_key.pem        the demo user's SSH key (`ssh -i`)
 *   DIR/authorized_keys/demo          its public half, the user's allow-list
 *   DIR/known_hosts/local             placeholder: pin the target's host key here
 *   DIR/store/                        the sealed log (created by `serve`)
 *
 * Private keys are written 0600 and unencrypted: `serve` starts unattended. In production the customer's
 * recipient key never sits beside the gate (the gate needs only its public half), and the signer lives in
 * a token.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { validateConfig } from '../../config/load.js';
import type { CryptoProvider, KeySpec } from '../../crypto/index.js';
import { EXIT, UsageError } from '../errors.js';

export interface InitOptions {
  readonly force?: boolean;
  readonly user?: string;
  readonly targetHost?: string;
  readonly targetPort?: string;
  readonly targetUser?: string;
  readonly listenPort?: string;
}

function port(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`${what} must be a port number, not ${text}`);
  return n;
}

export async function initCommand(
  provider: CryptoProvider,
  dirArg: string,
  opts: InitOptions,
): Promise<number> {
  const dir = resolve(dirArg);
  const configFile = join(dir, 'sealgate.yaml');
  if (existsSync(configFile) && !opts.force) {
    throw new UsageError(`${configFile} exists; refusing to overwrite it (use --force)`);
  }
  const user = opts.user ?? 'demo';
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const targetPort = port(opts.targetPort, 22, '--target-port');
  const listenPort = port(opts.listenPort, 2222, '--listen-port');
  const keys = join(dir, 'keys');
  for (const d of [dir, keys, join(dir, 'authorized_keys'), join(dir, 'known_hosts')]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  const generate = async (name: string, spec: KeySpec) => {
    const key = await provider.generateKey(spec);
    const path = join(keys, name);
    writeFileSync(path, provider.exportPrivateKey(key), { mode: 0o600 });
    return { key, path };
  };
  const host = await generate('host_key.pem', { type: 'ec', curve: 'P-256' });
  const upstream = await generate('upstream_key.pem', { type: 'ec', curve: 'P-256' });
  writeFileSync(join(keys, 'upstream_key.pub'), `${upstream.key.publicKey.openssh('sealgate-upstream')}\n`);
  const signer = await generate('signer.key.pem', { type: 'ec', curve: 'P-384' });
  writeFileSync(join(keys, 'signer.pub.pem'), signer.key.publicKey.spkiPem());
  const recipient = await generate('recipient.key.pem', { type: 'rsa', bits: 3072 });
  const recipientPub = join(keys, 'recipient.pub.pem');
  writeFileSync(recipientPub, recipient.key.publicKey.spkiPem());
  const demoUser = await generate('demo_user_key.pem', { type: 'ec', curve: 'P-256' });
  const authorizedKeys = join(dir, 'authorized_keys', user);
  writeFileSync(authorizedKeys, `${demoUser.key.publicKey.openssh(`${user}@sealgate-demo`)}\n`);
  const knownHosts = join(dir, 'known_hosts', 'local');
  const scan = targetPort === 22 ? `ssh-keyscan ${targetHost}` : `ssh-keyscan -p ${targetPort} ${targetHost}`;
  writeFileSync(
    knownHosts,
    `# The pinned host key(s) of target "local". Fill in with:\n#   ${scan} > ${knownHosts}\n`,
  );

  const config = {
    listen: { host: '127.0.0.1', port: listenPort, host_key: `file:${host.path}` },
    ssh: { banner: 'This demo gate records everything you do.\n' },
    targets: [
      {
        name: 'local',
        host: targetHost,
        port: targetPort,
        ...(opts.targetUser ? { user: opts.targetUser } : {}),
        known_hosts: knownHosts,
      },
    ],
    users: [{ name: user, authorized_keys_file: authorizedKeys, targets: ['*'] }],
    upstream: { client_key: `file:${upstream.path}` },
    recording: {
      store: join(dir, 'store'),
      origin: `sealgate-demo/${hostname().replace(/[^\x21-\x7e]|\+/g, '-') || 'localhost'}`,
      recipients: [`file:${recipientPub}`],
      checkpoint_signer: `file:${signer.path}`,
    },
  };
  validateConfig(structuredClone(config), { source: configFile });
  writeFileSync(
    configFile,
    `# sealgate demo configuration, written by "sealgate init". See deploy/examples/sealgate.yaml for every key.\n${stringify(config)}`,
    { mode: 0o600 },
  );

  const login = `${user}+local`;
  const readArgs = `--keys ${join(keys, 'signer.pub.pem')} --key file:${recipient.path}`;
  process.stdout.write(
    [
      `wrote ${configFile} and its keys in ${keys}`,
      '',
      `NOTE: ${recipient.path} is the customer's RSA-3072 decryption key, written UNENCRYPTED for this demo.`,
      '      In production it never sits beside the gate: the gate needs only the public half',
      '      (make one with "sealgate keys gen-recipient", with a passphrase).',
      '',
      'next:',
      `  1. pin the target's host key:      ${scan} > ${knownHosts}`,
      `  2. let the gate log in to it:       append ${join(keys, 'upstream_key.pub')} to the target user's authorized_keys`,
      `  3. start the gate:                  sealgate serve --config ${configFile}`,
      `  4. connect through it:              ssh -p ${listenPort} -i ${demoUser.path} ${login}@127.0.0.1`,
      `  5. see what was run:                sealgate commands ${join(dir, 'store')} ${readArgs}`,
      `  6. watch a moment of a session:     sealgate replay ${join(dir, 'store')} SESSION ${readArgs} --at INDEX`,
      `     (SESSION and INDEX from step 5; also: sealgate sessions, sealgate text, sealgate decrypt)`,
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}
