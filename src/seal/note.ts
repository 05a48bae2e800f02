/**
 * C2SP signed-note (docs/FORMAT.md §5.2), with signature type 0x02 (ECDSA) only:
 *
 *     <text, ending in a newline>
 *     <empty line>
 *     — <key name> <base64(key_id || signature)>\n   (one line per signature)
 *
 * - key_id: the first 4 bytes of SHA-256(SubjectPublicKeyInfo DER), as signed-note specifies for 0x02;
 * - signature: ECDSA P-384 with SHA-384 over the text's UTF-8 bytes (final newline included), DER.
 *
 * Parsing follows golang.org/x/mod/sumdb/note `Open`: the text ends at the LAST blank line; the note is
 * valid UTF-8 with no control characters but newline; at most 100 signature lines. Verification follows
 * the spec's rules: lines from unknown keys are ignored (even if they share a name or a key id with a
 * trusted key, but not both); a line from a trusted key MUST verify, and a failing one rejects the
 * whole note (signed-note: "clients SHOULD reject the whole note"), because a bad signature from a key
 * we trust means tampering or a broken signer, never something to shrug off.
 */
import type { CryptoProvider, PrivateKey, PublicKey, SignatureScheme } from '../crypto/index.js';
import { decodeBase64Strict, encodeBase64 } from './checkpoint.js';
import { SealError } from './errors.js';

/** ECDSA P-384 with SHA-384, DER (X9.62): suite 1's checkpoint signature (FORMAT.md §2). */
export const NOTE_SIGNATURE_SCHEME: SignatureScheme = { scheme: 'ecdsa', hash: 'sha384', encoding: 'der' };
/** signed-note's signature type identifier for ECDSA (as implemented by transparency-dev/witness). */
export const NOTE_SIGNATURE_TYPE_ECDSA = 0x02;
/** Verifiers must accept at least 16 signatures; x/mod/sumdb/note stops at 100, and so do we. */
export const MAX_NOTE_SIGNATURES = 100;

const KEY_ID_SIZE = 4;
/** U+2014 EM DASH, then a space: the start of every signature line. */
const SIG_PREFIX = '\u2014 ';
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface NoteSignature {
  readonly name: string;
  readonly keyId: Uint8Array;
  /** The signature bytes after the key id (DER ECDSA for type 0x02). */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, final newline included, blank separator line excluded. */
  readonly body: string;
  readonly signatures: readonly NoteSignature[];
}

export interface TrustedKey {
  /** The key name (sealgate: the log origin). */
  readonly name: string;
  readonly key: PublicKey;
}

function malformed(message: string): never {
  throw new SealError('NOTE_MALFORMED', `signed note: ${message}`);
}

/** signed-note: key names are non-empty and contain no Unicode white space (newline included) and no '+'. */
export function isValidKeyName(name: string): boolean {
  return (
    name.length > 0 &&
    !/[\p{White_Space}+]/u.test(name) &&
    !CONTROL_BUT_NEWLINE.test(name) &&
    !LONE_SURROGATE.test(name)
  );
}

function requireP384(key: PublicKey, what: string): void {
  if (key.algorithm.type !== 'ec' || key.algorithm.curve !== 'P-384') {
    const got = key.algorithm.type === 'ec' ? `EC ${key.algorithm.curve}` : key.algorithm.type;
    throw new SealError('INVALID_ARGUMENT', `${what} must be an ECDSA P-384 key, got ${got}`);
  }
}

/** The signed-note key id for signature type 0x02: the first 4 bytes of SHA-256(SPKI DER). */
export function noteKeyId(provider: CryptoProvider, publicKey: PublicKey): Uint8Array {
  return provider.digest('sha256', publicKey.spkiDer()).slice(0, KEY_ID_SIZE);
}

/** Text that a note may carry: well-formed, no control characters but newline. Returns the reason if not. */
function textProblem(text: string): string | undefined {
  if (LONE_SURROGATE.test(text)) return 'it is not valid UTF-8 (lone surrogate)';
  if (CONTROL_BUT_NEWLINE.test(text)) return 'it holds a control character other than newline';
  return undefined;
}

/**
 * Signs `body` and returns the whole note: body, blank line, one signature line. The key must be an
 * ECDSA P-384 private key; its backend (software or token) does the signing.
 */
export async function signNote(
  provider: CryptoProvider,
  key: PrivateKey,
  name: string,
  body: string,
): Promise<string> {
  if (!isValidKeyName(name)) {
    throw new SealError(
      'INVALID_ARGUMENT',
      `key name ${JSON.stringify(name)} has a space or '+', or is empty`,
    );
  }
  if (!body.endsWith('\n')) throw new SealError('INVALID_ARGUMENT', 'note text must end with a newline');
  const problem = textProblem(body);
  if (problem) throw new SealError('INVALID_ARGUMENT', `note text cannot be signed: ${problem}`);
  requireP384(key.publicKey, 'the note signing key');
  const signature = await provider.sign(key, Buffer.from(body, 'utf8'), NOTE_SIGNATURE_SCHEME);
  const keyId = noteKeyId(provider, key.publicKey);
  const blob = new Uint8Array(KEY_ID_SIZE + signature.length);
  blob.set(keyId);
  blob.set(signature, KEY_ID_SIZE);
  return `${body}\n${SIG_PREFIX}${name} ${encodeBase64(blob)}\n`;
}

/**
 * Splits a note into text and signature lines without verifying anything. Bytes are decoded as strict
 * UTF-8 (invalid sequences are malformed, a BOM is kept as text); a string must be well-formed.
 */
export function parseNote(input: string | Uint8Array): Note {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      malformed('it is not valid UTF-8');
    }
  }
  const problem = textProblem(text);
  if (problem) malformed(problem);

  const split = text.lastIndexOf('\n\n');
  if (split < 0) malformed('no blank line separates the text from the signatures');
  const body = text.slice(0, split + 1);
  const block = text.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n'))
    malformed('the signature block does not end with a newline');

  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    malformed(`${lines.length} signature lines, at most ${MAX_NOTE_SIGNATURES} accepted`);
  }
  const signatures = lines.map((line, i): NoteSignature => {
    const where = `signature line ${i + 1}`;
    if (!line.startsWith(SIG_PREFIX))
      malformed(`${where} does not start with an em dash (U+2014) and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) malformed(`${where} has no space between key name and signature`);
    const name = rest.slice(0, space);
    const b64 = rest.slice(space + 1);
    if (!isValidKeyName(name)) malformed(`${where} has an invalid key name ${JSON.stringify(name)}`);
    const blob = b64.length > 0 ? decodeBase64Strict(b64) : undefined;
    if (!blob) malformed(`${where} has invalid base64`);
    if (blob.length < KEY_ID_SIZE + 1) malformed(`${where} has ${blob.length} bytes, want at least 5`);
    return { name, keyId: blob.slice(0, KEY_ID_SIZE), signature: blob.slice(KEY_ID_SIZE) };
  });
  return { body, signatures };
}

/**
 * Verifies a note against trusted ECDSA P-384 keys and returns its text and the key that signed it.
 *
 * - NOTE_MALFORMED: the note does not parse;
 * - NOTE_SIGNATURE_INVALID: a line whose name and key id match a trusted key does not verify (the whole
 *   note is rejected even if another trusted line verifies);
 * - NOTE_UNKNOWN_SIGNER: no line matches a trusted key.
 */
export function verifyNote(
  provider: CryptoProvider,
  text: string | Uint8Array,
  trusted: readonly TrustedKey[],
): { body: string; signer: PublicKey } {
  const known = trusted.map((t) => {
    requireP384(t.key, `trusted key ${JSON.stringify(t.name)}`);
    return { ...t, keyId: noteKeyId(provider, t.key) };
  });
  const note = parseNote(text);
  const data = Buffer.from(note.body, 'utf8');
  let signer: PublicKey | undefined;
  for (const [i, sig] of note.signatures.entries()) {
    for (const k of known) {
      if (k.name !== sig.name || !provider.equal(k.keyId, sig.keyId)) continue;
      if (!provider.verify(k.key, data, sig.signature, NOTE_SIGNATURE_SCHEME)) {
        const id = Buffer.from(sig.keyId).toString('hex');
        throw new SealError(
          'NOTE_SIGNATURE_INVALID',
          `signed note: signature line ${i + 1} (${sig.name}, key id ${id}) does not verify`,
        );
      }
      signer ??= k.key;
    }
  }
  if (!signer) {
    const seen = note.signatures.map((s) => `${s.name}/${Buffer.from(s.keyId).toString('hex')}`).join(', ');
    throw new SealError(
      'NOTE_UNKNOWN_SIGNER',
      `signed note: no signature from a trusted key (found ${seen})`,
    );
  }
  return { body: note.body, signer };
}
