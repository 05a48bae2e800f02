/**
 * The export bundle (docs/FORMAT.md §7): one directory, read and written here, pure where it can be.
 *
 *     manifest.json      {"format":"sealgate-bundle-v1","origin","complete","range","tree_size",
 *                         "entries","entries_digest","checkpoints","created","files"}
 *     manifest.sig       signed note: "sealgate bundle v1\n<origin>\n<hex H(manifest.json)>\n"
 *     entries.bin        frames u64 leaf_index || u32 len || entry, ascending
 *     checkpoints.bin    frames u32 len || signed note, oldest first
 *     proofs.json        consistency and inclusion proofs
 *     keys/signers.json  the signers' public keys and the rotation chain
 *
 * A `Bundle` holds the small files' bytes (from a directory, or from memory: the tamper tests mutate
 * copies without touching the disk) and parses them lazily and leniently: a broken file is a finding
 * for the verifier, not an exception, so that one run can name every failure. entries.bin, which holds
 * nearly all of a bundle's bytes, is read from disk through one reused window instead of being loaded
 * whole: the manifest commits to it by a digest over its leaf hashes (FORMAT.md §7), which the
 * verifier computes anyway, so no whole-file hash is needed and each byte is hashed once.
 */
import fs from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { AuditError } from './errors.js';
import type { LogEntry } from './source.js';

export const BUNDLE_FORMAT = 'sealgate-bundle-v1';
export const PROOFS_FORMAT = 'sealgate-proofs-v1';
export const SIGNERS_FORMAT = 'sealgate-signers-v1';
/** The first line of the manifest signature's note text (FORMAT.md §7). */
export const MANIFEST_NOTE_HEADER = 'sealgate bundle v1';

/** File names inside a bundle directory (FORMAT.md §7). */
export const BUNDLE_FILES = {
  manifest: 'manifest.json',
  signature: 'manifest.sig',
  entries: 'entries.bin',
  checkpoints: 'checkpoints.bin',
  proofs: 'proofs.json',
  signers: 'keys/signers.json',
} as const;

/** The files manifest.json lists with their SHA-256: all but entries.bin (see `entries_digest`) and the manifest and its signature. */
export const HASHED_FILES = [BUNDLE_FILES.checkpoints, BUNDLE_FILES.proofs, BUNDLE_FILES.signers] as const;

const ENTRY_FRAME_HEADER = 12; // u64 leaf_index || u32 len
const NOTE_FRAME_HEADER = 4; // u32 len
/** Bundle files are read whole; refuse anything a verifier could not hold in memory. */
const MAX_FILE_BYTES = 2 ** 31 - 1;

export interface BundleManifest {
  readonly format: typeof BUNDLE_FORMAT;
  readonly origin: string;
  /** Every leaf from 0 to tree_size - 1 (true), or a selection with inclusion proofs (false). */
  readonly complete: boolean;
  /** Leaf indexes [from, to) the selection was drawn from. */
  readonly range: { readonly from: number; readonly to: number };
  /** Session ids (hex) of a session export. */
  readonly sessions?: readonly string[];
  /** The size of the bundle's last checkpoint. */
  readonly tree_size: number;
  /** Frames in entries.bin. */
  readonly entries: number;
  /** Hex SHA-256 over every frame of entries.bin, in order, of `u64 leaf_index || leaf hash` (EntriesDigest). */
  readonly entries_digest: string;
  /** Frames in checkpoints.bin. */
  readonly checkpoints: number;
  /** When the export ran (RFC 3339). */
  readonly created: string;
  /** Hex SHA-256 of each file in HASHED_FILES. */
  readonly files: Readonly<Record<string, string>>;
}

/**
 * The manifest's commitment to entries.bin (FORMAT.md §7): SHA-256 over the concatenation, for each
 * frame in order, of `u64 leaf_index || H(0x00 || entry)`, the RFC 6962 leaf hash. It binds every
 * byte of the file as exactly as a hash of the file would (the index directly, the entry through its
 * leaf hash, the length through the framing), but costs the verifier 40 bytes per entry on top of the
 * leaf hashes it computes for the tree, instead of a second pass over every byte.
 */
export class EntriesDigest {
  #buf: Uint8Array;
  #view: DataView;
  #used = 0;

  /** `expected`: how many entries to make room for at once (it grows if there are more). */
  constructor(expected = 1024) {
    this.#buf = new Uint8Array(40 * Math.max(1, Math.min(expected, 2 ** 24)));
    this.#view = new DataView(this.#buf.buffer);
  }

  add(index: number, leafHash: Uint8Array): void {
    if (this.#used + 40 > this.#buf.length) {
      const grown = new Uint8Array(this.#buf.length * 2);
      grown.set(this.#buf.subarray(0, this.#used));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    const buf = this.#buf;
    const at = this.#used;
    this.#view.setUint32(at, Math.floor(index / 2 ** 32));
    this.#view.setUint32(at + 4, index >>> 0);
    for (let i = 0; i < 32; i++) buf[at + 8 + i] = leafHash[i]!;
    this.#used = at + 40;
  }

  /** Hex SHA-256 of what was added. */
  hex(sha256: (data: Uint8Array) => Uint8Array): string {
    const h = sha256(this.#buf.subarray(0, this.#used));
    return Buffer.from(h.buffer, h.byteOffset, h.length).toString('hex');
  }
}

export interface ConsistencyProofJson {
  readonly from: number;
  readonly to: number;
  /** base64 hashes, RFC 9162 §2.1.4 order. */
  readonly proof: readonly string[];
}

export interface InclusionProofJson {
  readonly index: number;
  /** base64 hashes, leaf to root (RFC 9162 §2.1.3). */
  readonly proof: readonly string[];
}

/** proofs.json. */
export interface BundleProofs {
  readonly format: typeof PROOFS_FORMAT;
  /** The tree size every inclusion proof leads to: the bundle's last checkpoint. */
  readonly tree_size: number;
  readonly consistency: readonly ConsistencyProofJson[];
  readonly inclusion: readonly InclusionProofJson[];
}

export interface SignerJson {
  /** The signed-note key id: hex of the first 4 bytes of SHA-256(SPKI DER). */
  readonly key_id: string;
  /** Hex SHA-256(SPKI DER). */
  readonly sha256: string;
  readonly spki_pem: string;
}

export interface RotationJson {
  /** The leaf index of the SIGNER_ROTATION entry. */
  readonly index: number;
  readonly old_key_id: string;
  readonly new_key_id: string;
  readonly new_key_spki: string;
  readonly signature: string;
}

/** keys/signers.json. */
export interface SignersFile {
  readonly format: typeof SIGNERS_FORMAT;
  readonly origin: string;
  readonly signers: readonly SignerJson[];
  readonly rotations: readonly RotationJson[];
}

/** The manifest signature's note text (FORMAT.md §7). */
export function manifestNoteBody(origin: string, manifestSha256Hex: string): string {
  return `${MANIFEST_NOTE_HEADER}\n${origin}\n${manifestSha256Hex}\n`;
}

/** A frame that does not parse: where, and why. */
export class FramingError extends AuditError {
  constructor(
    readonly location: string,
    message: string,
  ) {
    super('BUNDLE_UNREADABLE', `${location}: ${message}`);
  }
}

// --- encoding -----------------------------------------------------------------------------------------

/** entries.bin: `u64 leaf_index || u32 len || entry` per entry, in the given (ascending) order. */
export function encodeEntryFrames(entries: readonly LogEntry[]): Uint8Array {
  const size = entries.reduce((n, e) => n + ENTRY_FRAME_HEADER + e.bytes.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    view.setBigUint64(at, BigInt(e.index));
    view.setUint32(at + 8, e.bytes.length);
    out.set(e.bytes, at + ENTRY_FRAME_HEADER);
    at += ENTRY_FRAME_HEADER + e.bytes.length;
  }
  return out;
}

/** checkpoints.bin: `u32 len || note` per note. */
export function encodeNoteFrames(notes: readonly string[]): Uint8Array {
  const encoded = notes.map((n) => Buffer.from(n, 'utf8'));
  const out = new Uint8Array(encoded.reduce((n, b) => n + NOTE_FRAME_HEADER + b.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of encoded) {
    view.setUint32(at, b.length);
    out.set(b, at + NOTE_FRAME_HEADER);
    at += NOTE_FRAME_HEADER + b.length;
  }
  return out;
}

// --- decoding -----------------------------------------------------------------------------------------

/** One frame's header, read at `at` (`remaining` bytes from there to the end of the file). */
function frameHeader(
  view: DataView,
  pos: number,
  at: number,
  remaining: number,
): { index: number; len: number } {
  const where = `${BUNDLE_FILES.entries} offset ${at}`;
  if (remaining < ENTRY_FRAME_HEADER) {
    throw new FramingError(where, `a frame header needs 12 bytes, ${remaining} left`);
  }
  const hi = view.getUint32(pos);
  if (hi >= 2 ** 21) throw new FramingError(where, 'leaf_index is beyond 2^53 - 1');
  const index = hi * 2 ** 32 + view.getUint32(pos + 4);
  const len = view.getUint32(pos + 8);
  if (len === 0) throw new FramingError(where, `the entry for leaf ${index} is empty`);
  if (len > remaining - ENTRY_FRAME_HEADER) {
    throw new FramingError(where, `the entry for leaf ${index} (${len} bytes) runs past the end of the file`);
  }
  return { index, len };
}

/**
 * The frames of entries.bin held in memory, as views into `bytes` (no copy). Throws FramingError at the
 * first frame that does not parse: a header or entry that runs past the end, an empty entry, an index
 * beyond 2^53.
 */
export function* readEntryFrames(bytes: Uint8Array): Generator<LogEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < bytes.length;) {
    const { index, len } = frameHeader(view, at, at, bytes.length - at);
    const start = at + ENTRY_FRAME_HEADER;
    yield { index, bytes: bytes.subarray(start, start + len) };
    at = start + len;
  }
}

/** Bytes read from entries.bin at a time; the window grows only for an entry larger than this. */
const READ_WINDOW = 1024 * 1024;

/**
 * The frames of an entries.bin file, read through one reused window: each entry is a view into the
 * window, valid until the next one is pulled. Memory stays at the window's size however large the file,
 * and the same pages are reused (on small VMs, touching fresh pages costs more than reading them).
 */
export function* readEntryFramesFromFile(path: string): Generator<LogEntry> {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let window = Buffer.allocUnsafe(Math.min(READ_WINDOW, Math.max(size, 1)));
    let view = new DataView(window.buffer, window.byteOffset, window.length);
    let winStart = 0; // file offset of window[0]
    let winLen = 0;
    /** Makes the file's bytes [at, at + need) present in the window. */
    const ensure = (at: number, need: number): void => {
      if (at >= winStart && at + need <= winStart + winLen) return;
      const keep = at >= winStart && at < winStart + winLen ? winStart + winLen - at : 0;
      if (need > window.length) {
        const grown = Buffer.allocUnsafe(need);
        window.copy(grown, 0, at - winStart, at - winStart + keep);
        window = grown;
        view = new DataView(window.buffer, window.byteOffset, window.length);
      } else if (keep > 0) {
        window.copy(window, 0, at - winStart, at - winStart + keep);
      }
      let got = keep;
      const want = Math.min(window.length, size - at);
      while (got < want) {
        const n = fs.readSync(fd, window, got, want - got, at + got);
        if (n === 0) break;
        got += n;
      }
      winStart = at;
      winLen = got;
    };
    for (let at = 0; at < size;) {
      ensure(at, Math.min(ENTRY_FRAME_HEADER, size - at));
      const { index, len } = frameHeader(view, at - winStart, at, size - at);
      ensure(at, ENTRY_FRAME_HEADER + len);
      const start = at - winStart + ENTRY_FRAME_HEADER;
      yield { index, bytes: new Uint8Array(window.buffer, window.byteOffset + start, len) };
      at += ENTRY_FRAME_HEADER + len;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Counts the frames that parse, without keeping them. */
function countFrames(frames: Iterable<LogEntry>): number {
  let n = 0;
  try {
    for (const it = frames[Symbol.iterator](); !it.next().done;) n++;
  } catch {
    // The verifier reports the broken frame; the count is of the frames before it.
  }
  return n;
}

/**
 * The notes in checkpoints.bin, as bytes (views), and the first framing problem if any. Notes are not
 * decoded here: the signed-note parser checks their UTF-8 itself.
 */
export function readNoteFrames(bytes: Uint8Array): { notes: Uint8Array[]; problem?: FramingError } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const notes: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const where = `${BUNDLE_FILES.checkpoints} offset ${at}`;
    if (bytes.length - at < NOTE_FRAME_HEADER) {
      return {
        notes,
        problem: new FramingError(where, `a frame header needs 4 bytes, ${bytes.length - at} left`),
      };
    }
    const len = view.getUint32(at);
    const start = at + NOTE_FRAME_HEADER;
    if (len === 0) return { notes, problem: new FramingError(where, 'an empty note') };
    if (len > bytes.length - start) {
      return {
        notes,
        problem: new FramingError(where, `a note of ${len} bytes runs past the end of the file`),
      };
    }
    notes.push(bytes.subarray(start, start + len));
    at = start + len;
  }
  return { notes };
}

/** A JSON file's value, or why it is not JSON. */
export type Parsed<T> =
  | { readonly value: T; readonly problem?: undefined }
  | { readonly value?: undefined; readonly problem: string };

function parseJsonFile(bytes: Uint8Array | undefined, name: string): Parsed<unknown> {
  if (!bytes) return { problem: `${name} is missing` };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { problem: `${name} is not UTF-8` };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { problem: `${name} is not JSON (${(err as Error).message})` };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHex = (v: unknown, bytes: number): v is string =>
  typeof v === 'string' && v.length === bytes * 2 && /^[0-9a-f]*$/.test(v);
const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Checks manifest.json's shape (FORMAT.md §7). */
export function parseManifest(bytes: Uint8Array | undefined): Parsed<BundleManifest> {
  const json = parseJsonFile(bytes, BUNDLE_FILES.manifest);
  if (json.problem !== undefined) return json;
  const m = json.value;
  const bad = (why: string): Parsed<BundleManifest> => ({ problem: `${BUNDLE_FILES.manifest}: ${why}` });
  if (!isObject(m)) return bad('not a JSON object');
  if (m.format !== BUNDLE_FORMAT) return bad(`format is ${JSON.stringify(m.format)}, not "${BUNDLE_FORMAT}"`);
  if (typeof m.origin !== 'string' || m.origin === '') return bad('origin is missing');
  if (typeof m.complete !== 'boolean') return bad('complete is not a boolean');
  const range = m.range;
  if (!isObject(range) || !isIndex(range.from) || !isIndex(range.to) || range.from > range.to)
    return bad('range is not {"from","to"} with from ≤ to');
  if (m.sessions !== undefined && !(isStringArray(m.sessions) && m.sessions.every((s) => isHex(s, 16))))
    return bad('sessions is not a list of 32-digit hex session ids');
  for (const k of ['tree_size', 'entries', 'checkpoints'] as const) {
    if (!isIndex(m[k])) return bad(`${k} is not a non-negative integer`);
  }
  if (!isHex(m.entries_digest, 32)) return bad('entries_digest is not a hex SHA-256');
  if (typeof m.created !== 'string') return bad('created is not a string');
  if (!isObject(m.files)) return bad('files is not an object');
  for (const [name, hash] of Object.entries(m.files)) {
    if (!isHex(hash, 32)) return bad(`files["${name}"] is not a hex SHA-256`);
  }
  return { value: m as unknown as BundleManifest };
}

/** Checks proofs.json's shape. Hashes stay base64 strings; the verifier decodes them. */
export function parseProofs(bytes: Uint8Array | undefined): Parsed<BundleProofs> {
  const json = parseJsonFile(bytes, BUNDLE_FILES.proofs);
  if (json.problem !== undefined) return json;
  const p = json.value;
  const bad = (why: string): Parsed<BundleProofs> => ({ problem: `${BUNDLE_FILES.proofs}: ${why}` });
  if (!isObject(p)) return bad('not a JSON object');
  if (p.format !== PROOFS_FORMAT) return bad(`format is ${JSON.stringify(p.format)}, not "${PROOFS_FORMAT}"`);
  if (!isIndex(p.tree_size)) return bad('tree_size is not a non-negative integer');
  if (!Array.isArray(p.consistency)) return bad('consistency is not a list');
  for (const [i, c] of p.consistency.entries()) {
    if (!isObject(c) || !isIndex(c.from) || !isIndex(c.to) || !isStringArray(c.proof))
      return bad(`consistency[${i}] is not {"from","to","proof":[base64…]}`);
  }
  if (!Array.isArray(p.inclusion)) return bad('inclusion is not a list');
  for (const [i, c] of p.inclusion.entries()) {
    if (!isObject(c) || !isIndex(c.index) || !isStringArray(c.proof))
      return bad(`inclusion[${i}] is not {"index","proof":[base64…]}`);
  }
  return { value: p as unknown as BundleProofs };
}

/** Checks keys/signers.json's shape. */
export function parseSigners(bytes: Uint8Array | undefined): Parsed<SignersFile> {
  const json = parseJsonFile(bytes, BUNDLE_FILES.signers);
  if (json.problem !== undefined) return json;
  const s = json.value;
  const bad = (why: string): Parsed<SignersFile> => ({ problem: `${BUNDLE_FILES.signers}: ${why}` });
  if (!isObject(s)) return bad('not a JSON object');
  if (s.format !== SIGNERS_FORMAT)
    return bad(`format is ${JSON.stringify(s.format)}, not "${SIGNERS_FORMAT}"`);
  if (typeof s.origin !== 'string') return bad('origin is not a string');
  if (!Array.isArray(s.signers)) return bad('signers is not a list');
  for (const [i, k] of s.signers.entries()) {
    if (!isObject(k) || !isHex(k.key_id, 4) || !isHex(k.sha256, 32) || typeof k.spki_pem !== 'string')
      return bad(`signers[${i}] is not {"key_id","sha256","spki_pem"}`);
  }
  if (!Array.isArray(s.rotations)) return bad('rotations is not a list');
  for (const [i, r] of s.rotations.entries()) {
    const fields = ['old_key_id', 'new_key_id', 'new_key_spki', 'signature'] as const;
    if (!isObject(r) || !isIndex(r.index) || fields.some((f) => typeof r[f] !== 'string'))
      return bad(`rotations[${i}] is not {"index","old_key_id","new_key_id","new_key_spki","signature"}`);
  }
  return { value: s as unknown as SignersFile };
}

// --- the bundle ---------------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);

export class Bundle {
  readonly #files: ReadonlyMap<string, Uint8Array>;
  readonly #entriesPath: string | undefined;
  #manifest: Parsed<BundleManifest> | undefined;
  #entryCount: number | undefined;

  /**
   * `files` maps names relative to the bundle directory (with `/`) to their bytes. entries.bin is either
   * among them (in memory) or read from `entriesPath` when its entries are iterated.
   */
  constructor(files: ReadonlyMap<string, Uint8Array>, entriesPath?: string) {
    this.#files = files;
    this.#entriesPath = files.has(BUNDLE_FILES.entries) ? undefined : entriesPath;
  }

  /** The names of every file present, sorted. */
  get fileNames(): string[] {
    return [...this.#files.keys(), ...(this.#entriesPath ? [BUNDLE_FILES.entries] : [])].sort();
  }

  has(name: string): boolean {
    return this.#files.has(name) || (name === BUNDLE_FILES.entries && this.#entriesPath !== undefined);
  }

  /** A file held in memory (every file but a streamed entries.bin). */
  file(name: string): Uint8Array | undefined {
    return this.#files.get(name);
  }

  /** manifest.json, parsed, or why it cannot be. */
  get parsedManifest(): Parsed<BundleManifest> {
    return (this.#manifest ??= parseManifest(this.file(BUNDLE_FILES.manifest)));
  }

  get manifest(): BundleManifest | undefined {
    return this.parsedManifest.value;
  }

  /** Entries in entries.bin up to the first frame that does not parse (reads the file: O(entries)). */
  get entryCount(): number {
    return (this.#entryCount ??= countFrames(this.entries()));
  }

  /**
   * The entries, as views into entries.bin (or into a window over it: valid until the next is pulled).
   * Throws FramingError (an AuditError) at a broken frame.
   */
  entries(): Iterable<LogEntry> {
    if (this.#entriesPath) return readEntryFramesFromFile(this.#entriesPath);
    return readEntryFrames(this.file(BUNDLE_FILES.entries) ?? EMPTY);
  }

  /** The checkpoint notes as text (lossy for invalid UTF-8: verify reads the bytes instead). */
  checkpoints(): string[] {
    const { notes } = readNoteFrames(this.file(BUNDLE_FILES.checkpoints) ?? EMPTY);
    return notes.map((n) => Buffer.from(n.buffer, n.byteOffset, n.length).toString('utf8'));
  }
}

function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) =>
      relative(dir, join(d.parentPath ?? d.path, d.name))
        .split(sep)
        .join('/'),
    );
}

/**
 * Opens a bundle directory: every file but entries.bin is read into memory; entries.bin is streamed when
 * its entries are iterated. Throws AuditError BUNDLE_UNREADABLE when a file cannot be read or is too
 * large; missing files are left for the verifier to report.
 */
export function openBundle(dir: string): Bundle {
  const files = new Map<string, Uint8Array>();
  let names: string[];
  try {
    names = listFiles(dir);
  } catch (err) {
    throw new AuditError('BUNDLE_UNREADABLE', `${dir}: cannot list the bundle (${(err as Error).message})`, {
      cause: err,
    });
  }
  let entriesPath: string | undefined;
  for (const name of names) {
    const path = join(dir, name);
    if (name === BUNDLE_FILES.entries) {
      try {
        fs.accessSync(path, fs.constants.R_OK);
      } catch (err) {
        throw new AuditError(
          'BUNDLE_UNREADABLE',
          `${path}: cannot read it (${(err as NodeJS.ErrnoException).code})`,
          { cause: err },
        );
      }
      entriesPath = path;
      continue;
    }
    try {
      const size = fs.statSync(path).size;
      if (size > MAX_FILE_BYTES) {
        throw new AuditError(
          'BUNDLE_UNREADABLE',
          `${path}: ${size} bytes is more than a bundle file may hold`,
        );
      }
      const buf = fs.readFileSync(path);
      files.set(name, new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
    } catch (err) {
      if (err instanceof AuditError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new AuditError('BUNDLE_UNREADABLE', `${path}: cannot read it (${code})`, { cause: err });
    }
  }
  return new Bundle(files, entriesPath);
}

/** Writes `files` under `dir` (which must exist), each 0644, directories 0755, and fsyncs them. */
export function writeBundleFiles(dir: string, files: ReadonlyMap<string, Uint8Array>): void {
  for (const [name, bytes] of files) {
    const path = join(dir, ...name.split('/'));
    fs.mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const fd = fs.openSync(path, 'wx', 0o644);
    try {
      for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}
