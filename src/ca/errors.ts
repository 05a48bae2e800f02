/**
 * One error type for OpenSSH certificates (docs/CERTS.md), with a closed set of codes. The gate's
 * certificate checks name their refusals by these codes; tests assert on `code`.
 */
export type CertErrorCode =
  /** The blob is not a well-formed certificate: truncated, trailing bytes, a bad field. */
  | 'MALFORMED'
  /** The certificate (or subject key) type is not one sealgate reads. */
  | 'UNSUPPORTED_KEY_TYPE'
  /** The signature algorithm is not one sealgate accepts (e.g. `ssh-rsa`, SHA-1), or does not fit the CA key. */
  | 'UNSUPPORTED_SIGNATURE'
  /** Options or extensions are not in strict name order, or a name repeats (PROTOCOL.certkeys). */
  | 'NOT_CANONICAL'
  /** The values asked for cannot be put in a certificate (empty principal, validity backwards, …). */
  | 'INVALID_REQUEST';

export class CertError extends Error {
  override readonly name = 'CertError';
  constructor(
    readonly code: CertErrorCode,
    message: string,
  ) {
    super(message);
  }
}
