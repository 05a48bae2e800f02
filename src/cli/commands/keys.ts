/**
 * `sealgate keys gen-recipient` and `sealgate keys gen-signer`: key pairs for a customer (who decrypts)
 * and for the gate (which signs checkpoints). Private keys are written 0600, encrypted as PBES2
 * (PBKDF2-HMAC-SHA-256, AES-256-CBC) unless `--unencrypted` is given on purpose.
 *
 * `sealgate keys gen --pkcs11 …` makes a key pair inside a token instead, and `sealgate keys
 * export-public <keyref>` prints the public half of any key reference (docs/HSM.md).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  createProvider,
  formatPkcs11Uri,
  PKCS11_MODULE_ENV,
  type CryptoProvider,
  type KeySpec,
  type Pkcs11Settings,
  type RoutingProvider,
} from '../../crypto/index.js';
import { assertStartupOk } from '../../crypto/startup.js';
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

// --- keys in tokens --------------------------------------------------------------------------------

/** The token options every command that may touch a `pkcs11:` key takes (never a PIN on the line). */
export interface TokenCliOptions {
  /** The PKCS#11 module; SEALGATE_PKCS11_MODULE when omitted. */
  readonly module?: string;
  readonly pinFile?: string;
  readonly pinEnv?: string;
  readonly libraryParameters?: string;
}

/** Adds --module, --pin-file, --pin-env and --library-parameters to a command. */
export function tokenOptions(c: Command): Command {
  return c
    .option('--module <path>', `the PKCS#11 module (.so); default $${PKCS11_MODULE_ENV}`)
    .option('--pin-file <file>', 'read the token user PIN from a file')
    .option('--pin-env <var>', 'read the token user PIN from an environment variable')
    .option('--library-parameters <params>', "NSS softoken only: \"configdir='sql:DIR' certPrefix='' …\"");
}

/** The token settings named by flags or the environment, for createProvider; none without a module. */
export function tokenSettings(opts: TokenCliOptions): { pkcs11?: Pkcs11Settings } {
  if (opts.pinFile && opts.pinEnv) throw new UsageError('PIN: give --pin-file or --pin-env, not both');
  const module = opts.module ?? process.env[PKCS11_MODULE_ENV];
  if (!module) return {};
  return {
    pkcs11: {
      module,
      ...(opts.pinFile ? { pinFile: opts.pinFile } : {}),
      ...(opts.pinEnv ? { pinEnv: opts.pinEnv } : {}),
      ...(opts.libraryParameters ? { libraryParameters: opts.libraryParameters } : {}),
    },
  };
}

/** The provider for a command, with the token backend when a module is named (flag or environment). */
export async function providerWithToken(
  fips: boolean,
  opts: TokenCliOptions,
  needToken: boolean,
): Promise<RoutingProvider> {
  if (opts.pinFile && opts.pinEnv) throw new UsageError('PIN: give --pin-file or --pin-env, not both');
  if (needToken && !(opts.module ?? process.env[PKCS11_MODULE_ENV])) {
    throw new UsageError(`a token key needs the PKCS#11 module: --module PATH or $${PKCS11_MODULE_ENV}`);
  }
  const { provider, report } = await createProvider({ fips, ...tokenSettings(opts) });
  try {
    assertStartupOk(report);
  } catch (err) {
    provider.close();
    throw err;
  }
  return provider;
}

export interface GenTokenKeyOptions extends TokenCliOptions {
  readonly pkcs11?: boolean;
  readonly token?: string;
  readonly label?: string;
  /** CKA_ID in hex; random when omitted. */
  readonly id?: string;
  readonly type?: string;
  readonly usage?: string;
  /** Also write the public key (SPKI PEM) here. */
  readonly out?: string;
  readonly force?: boolean;
}

const TOKEN_KEY_TYPES: Readonly<Record<string, KeySpec>> = {
  'ec-p256': { type: 'ec', curve: 'P-256' },
  'ec-p384': { type: 'ec', curve: 'P-384' },
  'rsa-3072': { type: 'rsa', bits: 3072 },
  'rsa-4096': { type: 'rsa', bits: 4096 },
};

/**
 * `sealgate keys gen --pkcs11 --module M --token T --label L --type ec-p384|… (--pin-file F | --pin-env V)`:
 * a key pair made inside the token (CKA_SENSITIVE, not CKA_EXTRACTABLE). Prints its `pkcs11:` reference
 * and its public key.
 */
export async function genTokenKey(fips: boolean, opts: GenTokenKeyOptions): Promise<number> {
  if (!opts.pkcs11) {
    throw new UsageError(
      'keys gen makes keys inside a token: add --pkcs11 (for PEM files use "keys gen-signer" or "keys gen-recipient")',
    );
  }
  if (!opts.token) throw new UsageError('--token LABEL is required');
  if (!opts.label) throw new UsageError('--label OBJECT is required');
  const spec = TOKEN_KEY_TYPES[opts.type ?? ''];
  if (!spec) {
    throw new UsageError(
      `--type must be one of ${Object.keys(TOKEN_KEY_TYPES).join(', ')}, not ${opts.type ?? '(none)'}`,
    );
  }
  const usage = opts.usage;
  if (usage !== undefined && usage !== 'sign' && usage !== 'decrypt' && usage !== 'unwrap') {
    throw new UsageError(`--usage must be sign, decrypt or unwrap, not ${usage}`);
  }
  if (!opts.pinFile && !opts.pinEnv)
    throw new UsageError('the token PIN is needed: --pin-file FILE or --pin-env VAR');
  let id: Uint8Array | undefined;
  if (opts.id !== undefined) {
    if (!/^([0-9a-fA-F]{2})+$/.test(opts.id)) throw new UsageError(`--id must be hex bytes, not ${opts.id}`);
    id = new Uint8Array(Buffer.from(opts.id, 'hex'));
  }
  if (opts.out && existsSync(opts.out) && !opts.force) {
    throw new UsageError(`${opts.out} exists; refusing to overwrite it (use --force)`);
  }
  const provider = await providerWithToken(fips, opts, true);
  try {
    const ref = formatPkcs11Uri({ token: opts.token, object: opts.label, ...(id ? { id } : {}) });
    const key = await provider.generateKeyAt(ref, spec, usage);
    const pub = key.publicKey;
    const keyId = hex(provider.digest('sha256', pub.spkiDer()));
    const details = provider.info().details;
    const alg = key.algorithm;
    const what = alg.type === 'ec' ? `EC ${alg.curve}` : alg.type === 'rsa' ? `RSA-${alg.bits}` : alg.type;
    let text =
      `generated an ${what} key in token "${opts.token}" (${details.tokenManufacturer ?? '?'} ${details.tokenModel ?? '?'}, ` +
      `serial ${details.tokenSerial ?? '?'}); the private key cannot leave the token\n` +
      `key reference: ${key.ref}\n`;
    text +=
      alg.type === 'ec' && alg.curve === 'P-384'
        ? `signed-note key id: ${keyId.slice(0, 8)} (recording.checkpoint_signer; give the public key to auditors)\n`
        : alg.type === 'rsa'
          ? `recipient key id (SHA-256 of SPKI): ${keyId}\n`
          : `key id (SHA-256 of SPKI): ${keyId}\n`;
    if (opts.out) {
      writeFileSync(opts.out, pub.spkiPem(), { mode: 0o644 });
      text += `wrote ${opts.out} (public key, SPKI PEM)\n`;
    } else {
      text += pub.spkiPem();
    }
    process.stdout.write(text);
    return EXIT.ok;
  } finally {
    provider.close();
  }
}

export interface ExportPublicOptions extends TokenCliOptions {
  readonly format?: string;
  readonly comment?: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly out?: string;
  readonly force?: boolean;
}

/**
 * `sealgate keys export-public <keyref> [--format pem|openssh]`: the public half of a key, from a token
 * (its public key object, or its private key with the PIN) or from a PEM file.
 */
export async function exportPublic(fips: boolean, ref: string, opts: ExportPublicOptions): Promise<number> {
  const format = opts.format ?? 'pem';
  if (format !== 'pem' && format !== 'openssh') {
    throw new UsageError(`--format must be pem or openssh, not ${format}`);
  }
  if (opts.out && existsSync(opts.out) && !opts.force) {
    throw new UsageError(`${opts.out} exists; refusing to overwrite it (use --force)`);
  }
  const isToken = ref.startsWith('pkcs11:');
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  const provider = await providerWithToken(fips, opts, isToken);
  try {
    const pub = await provider.loadPublicKey(ref, passphrase);
    const text = format === 'pem' ? pub.spkiPem() : `${pub.openssh(opts.comment)}\n`;
    if (opts.out) writeFileSync(opts.out, text, { mode: 0o644 });
    else process.stdout.write(text);
    return EXIT.ok;
  } finally {
    passphrase?.fill(0);
    provider.close();
  }
}
