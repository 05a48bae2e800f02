/**
 * `sealgate keys gen-recipient` and `sealgate keys gen-signer`: key pairs for a customer (who decrypts)
 * and for the gate (which signs checkpoints). Private keys are written 0600, encrypted as PBES2
 * (PBKDF2-HMAC-SHA-256, AES-256-CBC) unless `--unencrypted` is given on purpose.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CryptoProvider, KeySpec } from '../../crypto/index.js';
import { EXIT, UsageError } from '../errors.js';
import { readSecret } from '../secrets.js';

export interface GenKeyOptions {
  readonly out: string;
  readonly name?: string;
  readonly bits?: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly unencrypted?: boolean;
  readonly force?: boolean;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export async function genRecipient(provider: CryptoProvider, opts: GenKeyOptions): Promise<number> {
  const bits = Number(opts.bits ?? '3072');
  if (bits !== 3072 && bits !== 4096)
    throw new UsageError(`--bits must be 3072 or 4096, not ${opts.bits ?? ''}`);
  const spec: KeySpec = { type: 'rsa', bits };
  const { pub, keyFile, pubFile } = await generate(provider, spec, opts, opts.name ?? 'recipient');
  const keyId = hex(provider.digest('sha256', pub.spkiDer()));
  process.stdout.write(
    `wrote ${keyFile} (RSA-${bits} private key${opts.unencrypted ? ', UNENCRYPTED' : ', PBES2-encrypted'})\n` +
      `wrote ${pubFile} (give this to the gate: recording.recipients)\n` +
      `recipient key id (SHA-256 of SPKI): ${keyId}\n`,
  );
  return EXIT.ok;
}

export async function genSigner(provider: CryptoProvider, opts: GenKeyOptions): Promise<number> {
  const { pub, keyFile, pubFile } = await generate(
    provider,
    { type: 'ec', curve: 'P-384' },
    opts,
    opts.name ?? 'signer',
  );
  const noteKeyId = hex(provider.digest('sha256', pub.spkiDer()).subarray(0, 4));
  process.stdout.write(
    `wrote ${keyFile} (ECDSA P-384 checkpoint signing key${opts.unencrypted ? ', UNENCRYPTED' : ', PBES2-encrypted'})\n` +
      `wrote ${pubFile} (give this to auditors: it verifies checkpoints)\n` +
      `signed-note key id: ${noteKeyId}\n`,
  );
  return EXIT.ok;
}

async function generate(provider: CryptoProvider, spec: KeySpec, opts: GenKeyOptions, name: string) {
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  if (!passphrase && !opts.unencrypted) {
    throw new UsageError(
      'a private key needs a passphrase: --passphrase-file FILE or --passphrase-env VAR (or --unencrypted, on purpose)',
    );
  }
  if (passphrase && opts.unencrypted)
    throw new UsageError('--unencrypted and a passphrase contradict each other');
  const keyFile = join(opts.out, `${name}.key.pem`);
  const pubFile = join(opts.out, `${name}.pub.pem`);
  for (const f of [keyFile, pubFile]) {
    if (existsSync(f) && !opts.force)
      throw new UsageError(`${f} exists; refusing to overwrite it (use --force)`);
  }
  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const key = await provider.generateKey(spec);
  writeFileSync(keyFile, provider.exportPrivateKey(key, passphrase), { mode: 0o600 });
  writeFileSync(pubFile, key.publicKey.spkiPem(), { mode: 0o644 });
  passphrase?.fill(0);
  return { pub: key.publicKey, keyFile, pubFile };
}
