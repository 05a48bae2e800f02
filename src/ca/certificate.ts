/**
 * OpenSSH certificates (PROTOCOL.certkeys; docs/CERTS.md): the body that a CA signs, the whole blob, and
 * a decoder into typed fields. Pure format code: no I/O and no crypto (the nonce is given; signing and
 * verifying are in signature.ts, through the provider).
 */
import { CertError } from './errors.js';
import { CertReader, sshString, sshU32, sshU64, U64_MAX } from './wire.js';

export const CERT_TYPE_USER = 1;
export const CERT_TYPE_HOST = 2;

/** `valid before` of a certificate that never expires. */
export const VALID_FOREVER = U64_MAX;

/** Subject key types sealgate certifies, with the number of `string`/`mpint` fields their key has. */
const SUBJECT_KEY_FIELDS: Readonly<Record<string, number>> = {
  'ssh-rsa': 2, // mpint e, mpint n
  'ecdsa-sha2-nistp256': 2, // string curve, string Q
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
  'ssh-ed25519': 1, // string pk
};

const CERT_SUFFIX = '-cert-v01@openssh.com';

/** `ecdsa-sha2-nistp256` → `ecdsa-sha2-nistp256-cert-v01@openssh.com`. */
export function certTypeName(keyType: string): string {
  if (!(keyType in SUBJECT_KEY_FIELDS)) {
    throw new CertError('UNSUPPORTED_KEY_TYPE', `cannot certify a ${keyType} key`);
  }
  return keyType + CERT_SUFFIX;
}

/** A name with its data: a critical option or an extension. */
export interface CertOption {
  readonly name: string;
  /** The raw data field. For `force-command` and `source-address` it holds one `string`. */
  readonly data: Uint8Array;
}

/** What a CA decides: every field of the certificate except the nonce, the CA key and the signature. */
export interface CertificateContent {
  /** The subject's public key blob (`string type || key fields`), as in its `.pub` line. */
  readonly subjectKey: Uint8Array;
  readonly serial: bigint;
  /** CERT_TYPE_USER or CERT_TYPE_HOST. */
  readonly type: number;
  readonly keyId: string;
  /** Empty means "any principal": sealgate never issues that (issue.ts refuses). */
  readonly principals: readonly string[];
  /** Seconds since the epoch. */
  readonly validAfter: bigint;
  /** Seconds since the epoch; VALID_FOREVER for no end. */
  readonly validBefore: bigint;
  readonly criticalOptions: readonly CertOption[];
  readonly extensions: readonly CertOption[];
}

export interface Certificate extends CertificateContent {
  /** `ecdsa-sha2-nistp256-cert-v01@openssh.com`, … */
  readonly certType: string;
  /** The subject key's type, `ecdsa-sha2-nistp256`, … */
  readonly keyType: string;
  readonly nonce: Uint8Array;
  readonly reserved: Uint8Array;
  /** The CA's public key blob. */
  readonly signatureKey: Uint8Array;
  /** The signature blob: `string algorithm || string signature`. */
  readonly signature: Uint8Array;
  /** The bytes the signature covers: the blob from its start up to and including the signature key. */
  readonly signedBytes: Uint8Array;
}

/** An option whose data is one `string` (`force-command`, `source-address`), as OpenSSH encodes it. */
export function stringOption(name: string, value: string): CertOption {
  return { name, data: sshString(value) };
}

/** A flag option or extension: empty data (`permit-pty`, …). */
export function flagOption(name: string): CertOption {
  return { name, data: new Uint8Array(0) };
}

/** The `string` inside an option's data, or undefined when the data is not exactly one string. */
export function optionString(option: CertOption): string | undefined {
  const r = new CertReader(option.data, `option ${option.name}`);
  try {
    const text = r.text('value');
    r.end();
    return text;
  } catch {
    return undefined;
  }
}

/** The extensions `ssh-keygen -s` grants by default, in the order OpenSSH requires (sorted by name). */
export const DEFAULT_EXTENSIONS: readonly string[] = [
  'permit-X11-forwarding',
  'permit-agent-forwarding',
  'permit-port-forwarding',
  'permit-pty',
  'permit-user-rc',
];

/** Options sorted by name (byte order, as OpenSSH's strcmp), refusing a name given twice. */
export function canonicalOptions(options: readonly CertOption[]): CertOption[] {
  const sorted = [...options].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  assertCanonical(sorted, 'options');
  return sorted;
}

function assertCanonical(options: readonly CertOption[], what: string): void {
  for (let i = 1; i < options.length; i++) {
    const prev = options[i - 1]?.name ?? '';
    const cur = options[i]?.name ?? '';
    if (Buffer.compare(Buffer.from(prev), Buffer.from(cur)) >= 0) {
      throw new CertError(
        'NOT_CANONICAL',
        prev === cur ? `${what}: ${cur} appears twice` : `${what}: ${cur} comes after ${prev}`,
      );
    }
  }
}

function encodeOptions(options: readonly CertOption[]): Buffer {
  return Buffer.concat(options.flatMap((o) => [sshString(o.name), sshString(o.data)]));
}

/** The subject key's type and its key fields (the blob without its leading type string). */
function splitSubjectKey(blob: Uint8Array): { keyType: string; fields: Uint8Array } {
  const r = new CertReader(blob, 'subject public key');
  const keyType = r.text('key type');
  const count = SUBJECT_KEY_FIELDS[keyType];
  if (count === undefined) throw new CertError('UNSUPPORTED_KEY_TYPE', `cannot certify a ${keyType} key`);
  const start = r.offset;
  for (let i = 0; i < count; i++) r.string('key field');
  r.end();
  return { keyType, fields: blob.subarray(start) };
}

/**
 * The bytes a CA signs: everything of the certificate before the signature, in PROTOCOL.certkeys order.
 * Options and extensions must already be canonical (canonicalOptions).
 */
export function encodeToBeSigned(content: CertificateContent, nonce: Uint8Array, caKey: Uint8Array): Buffer {
  const { keyType, fields } = splitSubjectKey(content.subjectKey);
  assertCanonical(content.criticalOptions, 'critical options');
  assertCanonical(content.extensions, 'extensions');
  if (content.validAfter > content.validBefore) {
    throw new CertError('INVALID_REQUEST', 'valid after is later than valid before');
  }
  return Buffer.concat([
    sshString(certTypeName(keyType)),
    sshString(nonce),
    fields,
    sshU64(content.serial),
    sshU32(content.type),
    sshString(content.keyId),
    sshString(Buffer.concat(content.principals.map((p) => sshString(p)))),
    sshU64(content.validAfter),
    sshU64(content.validBefore),
    sshString(encodeOptions(content.criticalOptions)),
    sshString(encodeOptions(content.extensions)),
    sshString(new Uint8Array(0)), // reserved
    sshString(caKey),
  ]);
}

/** The whole certificate blob: the signed bytes, then the signature blob. */
export function assembleCertificate(toBeSigned: Uint8Array, signatureBlob: Uint8Array): Buffer {
  return Buffer.concat([toBeSigned, sshString(signatureBlob)]);
}

function decodeOptions(data: Uint8Array, what: string): CertOption[] {
  const r = new CertReader(data, what);
  const out: CertOption[] = [];
  while (!r.done) out.push({ name: r.text('name'), data: r.string('data') });
  assertCanonical(out, what);
  return out;
}

function decodePrincipals(data: Uint8Array): string[] {
  const r = new CertReader(data, 'valid principals');
  const out: string[] = [];
  while (!r.done) out.push(r.text('principal'));
  return out;
}

/** Parses a certificate blob into its fields. Checks form only: no signature, time or principal check. */
export function decodeCertificate(blob: Uint8Array): Certificate {
  const r = new CertReader(blob);
  const certType = r.text('type');
  if (!certType.endsWith(CERT_SUFFIX)) {
    throw new CertError('UNSUPPORTED_KEY_TYPE', `${certType} is not an OpenSSH certificate type`);
  }
  const keyType = certType.slice(0, -CERT_SUFFIX.length);
  const count = SUBJECT_KEY_FIELDS[keyType];
  if (count === undefined)
    throw new CertError('UNSUPPORTED_KEY_TYPE', `unsupported certificate type ${certType}`);
  const nonce = r.string('nonce');
  const keyStart = r.offset;
  for (let i = 0; i < count; i++) r.string('public key');
  const subjectKey = Buffer.concat([sshString(keyType), blob.subarray(keyStart, r.offset)]);
  const serial = r.u64('serial');
  const type = r.u32('certificate type');
  const keyId = r.text('key id');
  const principals = decodePrincipals(r.string('valid principals'));
  const validAfter = r.u64('valid after');
  const validBefore = r.u64('valid before');
  const criticalOptions = decodeOptions(r.string('critical options'), 'critical options');
  const extensions = decodeOptions(r.string('extensions'), 'extensions');
  const reserved = r.string('reserved');
  const signatureKey = r.string('signature key');
  const signedBytes = blob.subarray(0, r.offset);
  const signature = r.string('signature');
  r.end();
  return {
    certType,
    keyType,
    nonce,
    subjectKey,
    serial,
    type,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    reserved,
    signatureKey,
    signature,
    signedBytes,
  };
}
