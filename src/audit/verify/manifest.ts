/**
 * The bundle's own integrity (docs/FORMAT.md §7, §8 step 1): manifest.json lists every other file with
 * its SHA-256, and manifest.sig is a signed note over the manifest's hash by a trusted signer. These
 * checks say "the bundle is as it was exported"; the content checks after them say whether what was
 * exported is the log, so a forger who rewrites the manifest's hashes still fails those.
 */
import type { CryptoProvider } from '../../crypto/index.js';
import { SealError } from '../../seal/errors.js';
import { verifyNote } from '../../seal/note.js';
import { BUNDLE_FILES, HASHED_FILES, manifestNoteBody, type Bundle, type BundleManifest } from '../bundle.js';
import type { Findings } from './error.js';
import type { SignerTrust } from './trust.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/**
 * manifest.json's shape, and every file's presence and hash (entries.bin's digest is checked in the
 * verifier's pass over the entries, which computes its leaf hashes anyway). Returns the manifest if it parses (its
 * fields are then checked against the content by the verifier).
 */
export function checkManifestFiles(
  provider: CryptoProvider,
  bundle: Bundle,
  findings: Findings,
): BundleManifest | undefined {
  const parsed = bundle.parsedManifest;
  if (parsed.problem !== undefined)
    findings.fail('MANIFEST_MALFORMED', BUNDLE_FILES.manifest, parsed.problem);
  if (!bundle.file(BUNDLE_FILES.signature))
    findings.fail('FILE_MISSING', BUNDLE_FILES.signature, 'the manifest signature is missing');
  if (!bundle.has(BUNDLE_FILES.entries))
    findings.fail('FILE_MISSING', BUNDLE_FILES.entries, 'a file every bundle holds is missing');
  const listed = parsed.value?.files ?? {};
  const names = new Set<string>([...HASHED_FILES, ...Object.keys(listed)]);
  names.delete(BUNDLE_FILES.entries); // committed by entries_digest, checked in the verifier's pass
  for (const name of names) {
    const bytes = bundle.file(name);
    if (!bytes) {
      findings.fail(
        'FILE_MISSING',
        name,
        (HASHED_FILES as readonly string[]).includes(name)
          ? 'a file every bundle holds is missing'
          : 'the manifest lists it, but it is missing',
      );
      continue;
    }
    const want = listed[name];
    if (parsed.value && want === undefined) {
      findings.fail('MANIFEST_MALFORMED', BUNDLE_FILES.manifest, `files does not list ${name}`);
      continue;
    }
    if (want === undefined) continue;
    const got = hex(provider.digest('sha256', bytes));
    if (got !== want) findings.fail('FILE_HASH_MISMATCH', name, `SHA-256 ${got}, the manifest says ${want}`);
  }
  for (const name of bundle.fileNames) {
    const known =
      name === BUNDLE_FILES.manifest || name === BUNDLE_FILES.signature || name === BUNDLE_FILES.entries;
    if (!known && !names.has(name)) {
      findings.warn('FILE_UNLISTED', name, 'a file the manifest does not list (ignored)');
    }
  }
  return parsed.value;
}

/**
 * manifest.sig: a signed note whose text is "sealgate bundle v1\n<origin>\n<hex H(manifest.json)>\n",
 * signed by a signer trusted at the bundle's last checkpoint (the exporter signs with the log's current
 * key). MANIFEST_SIGNATURE_INVALID for every way it can fail.
 */
export function checkManifestSignature(
  provider: CryptoProvider,
  bundle: Bundle,
  trust: SignerTrust,
  treeSize: number,
  findings: Findings,
): void {
  const sig = bundle.file(BUNDLE_FILES.signature);
  const manifest = bundle.file(BUNDLE_FILES.manifest);
  if (!sig || !manifest) return; // reported as FILE_MISSING / not a bundle
  const where = BUNDLE_FILES.signature;
  const keys = trust.keysAt(treeSize);
  let body: string;
  try {
    body = verifyNote(provider, sig, keys).body;
  } catch (err) {
    const why =
      err instanceof SealError && err.code === 'NOTE_UNKNOWN_SIGNER'
        ? `not signed by a signer trusted at size ${treeSize} (${(err as Error).message})`
        : (err as Error).message;
    findings.fail('MANIFEST_SIGNATURE_INVALID', where, why);
    return;
  }
  const want = manifestNoteBody(trust.origin, hex(provider.digest('sha256', manifest)));
  if (body !== want) {
    const lines = body.split('\n');
    const why =
      lines[1] !== trust.origin
        ? `it signs origin ${JSON.stringify(lines[1])}, not ${JSON.stringify(trust.origin)}`
        : `it signs manifest hash ${lines[2] ?? '?'}, not this manifest.json's (${want.split('\n')[2]})`;
    findings.fail('MANIFEST_SIGNATURE_INVALID', where, why);
  }
}
