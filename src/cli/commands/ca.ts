/**
 * `sealgate ca init` and `sealgate ca issue`: a user certificate authority and the OpenSSH user
 * certificates it signs (docs/CERTS.md). The CA key is a PEM file (PBES2-encrypted unless
 * `--unencrypted`) or a `pkcs11:` key in a token; every signature goes through the provider.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CryptoError, type CryptoProvider, type KeySpec } from '../../crypto/index.js';
import { decodeCertificate } from '../../ca/certificate.js';
import { CertError } from '../../ca/errors.js';
import { issueUserCertificate } from '../../ca/issue.js';
import { VALID_FOREVER } from '../../ca/certificate.js';
import { EXIT, UsageError } from '../errors.js';
import { readSecret } from '../secrets.js';
import { providerWithToken, type TokenCliOptions } from './keys.js';

export interface CaInitOptions {
  readonly out: string;
  readonly curve?: string;
  readonly rsa?: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly unencrypted?: boolean;
  readonly force?: boolean;
}

function caKeySpec(opts: CaInitOptions): KeySpec {
  if (opts.curve !== undefined && opts.rsa !== undefined) {
    throw new UsageError('give --curve or --rsa, not both');
  }
  if (opts.rsa !== undefined) {
    if (opts.rsa !== '3072' && opts.rsa !== '4096') {
      throw new UsageError(`--rsa must be 3072 or 4096, not ${opts.rsa}`);
    }
    return { type: 'rsa', bits: opts.rsa === '3072' ? 3072 : 4096 };
  }
  const curve = opts.curve ?? 'P-256';
  if (curve !== 'P-256' && curve !== 'P-384') {
    throw new UsageError(`--curve must be P-256 or P-384, not ${curve}`);
  }
  return { type: 'ec', curve };
}

/** `sealgate ca init --out DIR`: DIR/user_ca.pem (0600) and DIR/user_ca.pub (the OpenSSH line). */
export async function caInit(provider: CryptoProvider, opts: CaInitOptions): Promise<number> {
  const spec = caKeySpec(opts);
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  try {
    if (!passphrase && !opts.unencrypted) {
      throw new UsageError(
        'a CA key needs a passphrase: --passphrase-file FILE or --passphrase-env VAR (or --unencrypted, on purpose)',
      );
    }
    if (passphrase && opts.unencrypted) {
      throw new UsageError('--unencrypted and a passphrase contradict each other');
    }
    const keyFile = join(opts.out, 'user_ca.pem');
    const pubFile = join(opts.out, 'user_ca.pub');
    for (const f of [keyFile, pubFile]) {
      if (existsSync(f) && !opts.force) {
        throw new UsageError(`${f} exists; refusing to overwrite it (use --force)`);
      }
    }
    mkdirSync(opts.out, { recursive: true, mode: 0o700 });
    const key = await provider.generateKey(spec);
    writeFileSync(keyFile, provider.exportPrivateKey(key, passphrase), { mode: 0o600 });
    const line = key.publicKey.openssh('sealgate-user-ca');
    writeFileSync(pubFile, `${line}\n`, { mode: 0o644 });
    const what =
      spec.type === 'rsa' ? `RSA-${spec.bits}` : spec.type === 'ec' ? `ECDSA ${spec.curve}` : spec.type;
    process.stdout.write(
      `wrote ${keyFile} (${what} user CA private key${passphrase ? ', PBES2-encrypted' : ', UNENCRYPTED'})\n` +
        `wrote ${pubFile} (for TrustedUserCAKeys on targets, and the gate's trusted CAs)\n`,
    );
    return EXIT.ok;
  } finally {
    passphrase?.fill(0);
  }
}

export interface CaIssueOptions extends TokenCliOptions {
  readonly ca: string;
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
  readonly principal: string[];
  readonly ttl: string;
  readonly pubkey: string;
  readonly serial?: string;
  readonly keyId?: string;
  readonly sourceAddress?: string;
  readonly forceCommand?: string;
  readonly validFrom?: string;
  readonly force?: boolean;
}

/** Clock skew allowance: a certificate is valid from this many seconds before it is issued. */
export const BACKDATE_SECONDS = 300;

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `8h`, `30m`, `1h30m`, `2d`, `90s` → seconds. */
export function parseTtl(text: string): number {
  if (!/^(\d+[smhdw])+$/.test(text)) {
    throw new UsageError(`--ttl must be a span like 8h, 30m, 1h30m, 2d (s, m, h, d, w), not "${text}"`);
  }
  let total = 0;
  for (const m of text.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
  if (total <= 0) throw new UsageError('--ttl must be longer than zero');
  return total;
}

/** Where `ssh-keygen -s` writes the certificate of `key.pub`: `key-cert.pub`. */
export function certPathFor(pubkey: string): string {
  return `${pubkey.endsWith('.pub') ? pubkey.slice(0, -4) : pubkey}-cert.pub`;
}

function readPublicKeyLine(provider: CryptoProvider, file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--pubkey: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  const line = text.split('\n').find((l) => l.trim() !== '' && !l.startsWith('#')) ?? '';
  const [type, b64, ...comment] = line.trim().split(/\s+/);
  if (!type || !b64) throw new UsageError(`--pubkey: ${file} holds no OpenSSH public key line`);
  if (type.endsWith('-cert-v01@openssh.com')) {
    throw new UsageError(`--pubkey: ${file} is a certificate; give the public key it was made for`);
  }
  try {
    provider.importPublicKey(`${type} ${b64}`); // checks the blob and that it matches its type
  } catch (err) {
    if (err instanceof CryptoError) throw new UsageError(`--pubkey: ${file}: ${err.message}`);
    throw err;
  }
  return { blob: new Uint8Array(Buffer.from(b64, 'base64')), comment: comment.join(' ') };
}

function parseSerial(text: string): bigint {
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > VALID_FOREVER) {
    throw new UsageError(`--serial must be an unsigned 64-bit decimal number, not "${text}"`);
  }
  return BigInt(text);
}

function parseValidFrom(text: string): bigint {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(`--valid-from must be an ISO 8601 time (2026-01-05T10:00Z), not "${text}"`);
  }
  return BigInt(Math.floor(ms / 1000));
}

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z');

/** `sealgate ca issue`: signs the public key's user certificate and writes it beside the key. */
export async function caIssue(fips: boolean, opts: CaIssueOptions): Promise<number> {
  const ttl = parseTtl(opts.ttl);
  const serial = opts.serial !== undefined ? parseSerial(opts.serial) : undefined;
  const validAfter =
    opts.validFrom !== undefined
      ? parseValidFrom(opts.validFrom)
      : BigInt(Math.floor(Date.now() / 1000) - BACKDATE_SECONDS);
  const validBefore =
    (opts.validFrom !== undefined ? validAfter : validAfter + BigInt(BACKDATE_SECONDS)) + BigInt(ttl);
  const out = certPathFor(opts.pubkey);
  if (existsSync(out) && !opts.force)
    throw new UsageError(`${out} exists; refusing to overwrite it (use --force)`);
  const isToken = opts.ca.startsWith('pkcs11:');
  const passphrase = readSecret('passphrase', { file: opts.passphraseFile, env: opts.passphraseEnv });
  const provider = await providerWithToken(fips, opts, isToken);
  try {
    const subject = readPublicKeyLine(provider, opts.pubkey);
    const caKey = await provider.loadPrivateKey(opts.ca, passphrase);
    const issued = await issueUserCertificate(provider, caKey, {
      subjectKey: subject.blob,
      principals: opts.principal,
      keyId: opts.keyId ?? (subject.comment || basename(opts.pubkey)),
      validAfter,
      validBefore,
      ...(serial !== undefined ? { serial } : {}),
      ...(opts.forceCommand !== undefined ? { forceCommand: opts.forceCommand } : {}),
      ...(opts.sourceAddress !== undefined ? { sourceAddress: opts.sourceAddress } : {}),
    });
    decodeCertificate(issued.blob); // what we write, we can read
    const line = `${issued.certType} ${issued.blob.toString('base64')}${subject.comment ? ` ${subject.comment}` : ''}`;
    writeFileSync(out, `${line}\n`, { mode: 0o644 });
    const c = issued.content;
    process.stdout.write(
      `wrote ${out} (${issued.certType} user certificate)\n` +
        `serial: ${c.serial}\n` +
        `key id: ${c.keyId}\n` +
        `principals: ${c.principals.join(',')}\n` +
        `valid: from ${iso(c.validAfter)} to ${iso(c.validBefore)}\n`,
    );
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CertError) throw new UsageError(`cannot issue the certificate: ${err.message}`);
    throw err;
  } finally {
    passphrase?.fill(0);
    provider.close();
  }
}
