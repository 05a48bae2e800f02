/**
 * Issuing a user certificate: the request as the CLI (and later the issuance endpoint) states it, turned
 * into certificate content, signed through the provider. The nonce and a default serial come from the
 * provider's random generator; the CA key may be a file or a token key.
 */
import type { CryptoProvider, PrivateKey } from '../crypto/index.js';
import {
  assembleCertificate,
  canonicalOptions,
  certTypeName,
  CERT_TYPE_USER,
  DEFAULT_EXTENSIONS,
  encodeToBeSigned,
  flagOption,
  stringOption,
  type CertificateContent,
  type CertOption,
} from './certificate.js';
import { blobKeyType } from '../ssh/wire.js';
import { CertError } from './errors.js';
import { publicKeyBlob, signCertificateBody } from './signature.js';

export interface UserCertRequest {
  /** The subject's public key blob. */
  readonly subjectKey: Uint8Array;
  readonly principals: readonly string[];
  readonly keyId: string;
  /** Seconds since the epoch. */
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  /** Random (63 bits, never 0) when omitted. */
  readonly serial?: bigint;
  readonly forceCommand?: string;
  /** CIDR list, comma-separated, as OpenSSH takes it. */
  readonly sourceAddress?: string;
  /** DEFAULT_EXTENSIONS when omitted. */
  readonly extensions?: readonly string[];
}

export interface IssuedCertificate {
  readonly blob: Buffer;
  readonly certType: string;
  readonly content: CertificateContent;
}

/** A serial no other certificate of this CA is likely to have: 63 random bits, not zero. */
export function randomSerial(provider: CryptoProvider): bigint {
  for (;;) {
    const serial = Buffer.from(provider.randomBytes(8)).readBigUInt64BE(0) & 0x7fff_ffff_ffff_ffffn;
    if (serial !== 0n) return serial;
  }
}

function checkRequest(req: UserCertRequest): void {
  if (req.principals.length === 0) {
    throw new CertError(
      'INVALID_REQUEST',
      'a certificate needs at least one principal (none means "anyone")',
    );
  }
  for (const p of req.principals) {
    if (p === '' || /[\s,]/.test(p)) throw new CertError('INVALID_REQUEST', `invalid principal "${p}"`);
  }
  if (req.validBefore <= req.validAfter) {
    throw new CertError('INVALID_REQUEST', 'the certificate would expire before it becomes valid');
  }
  if (req.forceCommand === '') throw new CertError('INVALID_REQUEST', 'force-command is empty');
  if (req.sourceAddress !== undefined && !/^[0-9A-Fa-f.:/,*?]+$/.test(req.sourceAddress)) {
    throw new CertError('INVALID_REQUEST', `source-address "${req.sourceAddress}" is not a CIDR list`);
  }
}

export async function issueUserCertificate(
  provider: CryptoProvider,
  caKey: PrivateKey,
  req: UserCertRequest,
): Promise<IssuedCertificate> {
  checkRequest(req);
  const critical: CertOption[] = [];
  if (req.forceCommand !== undefined) critical.push(stringOption('force-command', req.forceCommand));
  if (req.sourceAddress !== undefined) critical.push(stringOption('source-address', req.sourceAddress));
  const content: CertificateContent = {
    subjectKey: req.subjectKey,
    serial: req.serial ?? randomSerial(provider),
    type: CERT_TYPE_USER,
    keyId: req.keyId,
    principals: req.principals,
    validAfter: req.validAfter,
    validBefore: req.validBefore,
    criticalOptions: canonicalOptions(critical),
    extensions: canonicalOptions((req.extensions ?? DEFAULT_EXTENSIONS).map(flagOption)),
  };
  const tbs = encodeToBeSigned(content, provider.randomBytes(32), publicKeyBlob(caKey.publicKey));
  const signature = await signCertificateBody(provider, caKey, tbs);
  return { blob: assembleCertificate(tbs, signature), certType: certTypeName(subjectKeyType(req)), content };
}

function subjectKeyType(req: UserCertRequest): string {
  const type = blobKeyType(req.subjectKey);
  if (!type) throw new CertError('MALFORMED', 'the subject public key blob has no key type');
  return type;
}
