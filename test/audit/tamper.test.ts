/**
 * Tamper evidence: well over a thousand seeded random mutations of one real bundle, each verified on its
 * own from memory (no disk churn), each required to fail with named codes.
 *
 * Two attackers:
 * - naive: changes a file and leaves the manifest alone: FILE_HASH_MISMATCH (or the manifest's own
 *   failures) must name it;
 * - rewriting: also recomputes every hash, count and size in manifest.json, but cannot sign it. Then
 *   MANIFEST_SIGNATURE_INVALID is certain, and each category must also show its content-level failure
 *   (ROOT_MISMATCH, SEQUENCE_GAP, ENTRIES_TRUNCATED, CHECKPOINT_UNKNOWN_SIGNER, …), without
 *   FILE_HASH_MISMATCH: the content checks stand on their own.
 *
 * The seed is printed; rerun one with SEALGATE_TAMPER_SEED=<seed>. (The base log is new on every run,
 * so a seed reproduces the mutation positions, not the exact bytes.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import {
  Bundle,
  BUNDLE_FILES,
  encodeEntryFrames,
  encodeNoteFrames,
  EntriesDigest,
  HASHED_FILES,
  openBundle,
  readEntryFrames,
  readNoteFrames,
} from '../../src/audit/bundle.js';
import { exportBundle } from '../../src/audit/export.js';
import { bundleSource, type LogEntry } from '../../src/audit/source.js';
import { verifyLog, type VerifyReport } from '../../src/audit/verify/verifier.js';
import { parseCheckpoint, formatCheckpoint } from '../../src/seal/checkpoint.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { EntryKind } from '../../src/seal/format/types.js';
import { hashLeaf } from '../../src/seal/merkle.js';
import { parseNote, signNote } from '../../src/seal/note.js';
import { crashRun, makeKeys, ORIGIN, tempDir, writeRun, type LogKeys } from './helpers.js';

const p = new OpenSslProvider();
const SEED = Number(process.env.SEALGATE_TAMPER_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { int, pick: (xs) => xs[int(xs.length)] as (typeof xs)[number] };
}

type Files = Map<string, Uint8Array>;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha = (b: Uint8Array): Uint8Array => p.digest('sha256', b);
const sha256 = (b: Uint8Array): string => hex(sha(b));
const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('utf8');

/** Every file of a bundle directory, in memory (entries.bin too, which openBundle streams). */
function loadFiles(dir: string): Files {
  const b = openBundle(dir);
  return new Map(b.fileNames.map((n) => [n, b.file(n) ?? new Uint8Array(readFileSync(join(dir, n)))]));
}

function copy(files: Files): Files {
  return new Map([...files].map(([k, v]) => [k, Uint8Array.from(v)]));
}

function frames(files: Files): LogEntry[] {
  return [...readEntryFrames(files.get(BUNDLE_FILES.entries) ?? new Uint8Array(0))].map((e) => ({
    index: e.index,
    bytes: e.bytes.slice(),
  }));
}

function notes(files: Files): string[] {
  return readNoteFrames(files.get(BUNDLE_FILES.checkpoints) ?? new Uint8Array(0)).notes.map((n) => text(n));
}

const sizeOf = (note: string): number => Number(parseCheckpoint(parseNote(note).body).size);

/**
 * The rewriting attacker: every hash, count and size in manifest.json made to fit the files. The
 * signature in manifest.sig cannot be redone without the signer key.
 */
function rewriteManifest(files: Files): Files {
  const m = JSON.parse(text(files.get(BUNDLE_FILES.manifest))) as Record<string, unknown>;
  m.files = Object.fromEntries(
    HASHED_FILES.filter((f) => files.has(f)).map((f) => [f, sha256(files.get(f)!)]),
  );
  let count = 0;
  const digest = new EntriesDigest();
  try {
    for (const e of readEntryFrames(files.get(BUNDLE_FILES.entries)!)) {
      digest.add(e.index, hashLeaf(sha, e.bytes));
      count++;
    }
  } catch {
    // counted up to the broken frame
  }
  m.entries = count;
  m.entries_digest = digest.hex(sha);
  const ns = notes(files);
  m.checkpoints = ns.length;
  try {
    const size = sizeOf(ns.at(-1) ?? '');
    m.tree_size = size;
    if (m.complete === true) m.range = { from: 0, to: size };
  } catch {
    // keep the old size
  }
  files.set(BUNDLE_FILES.manifest, Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
  return files;
}

/**
 * True when two keys/signers.json files say the same thing to the verifier: equal JSON once each
 * signer's PEM is replaced by the SPKI DER it imports as (the verifier's own reading of it).
 */
function signersEquivalent(a: Uint8Array, b: Uint8Array): boolean {
  const normal = (bytes: Uint8Array): string | undefined => {
    try {
      const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as { signers?: { spki_pem?: string }[] };
      for (const s of json.signers ?? []) {
        s.spki_pem = Buffer.from(p.importPublicKey(String(s.spki_pem)).spkiDer()).toString('hex');
      }
      return JSON.stringify(json);
    } catch {
      return undefined;
    }
  };
  const na = normal(a);
  return na !== undefined && na === normal(b);
}

interface Verdict {
  readonly report: VerifyReport;
  readonly codes: Set<string>;
}

describe('tamper evidence', () => {
  let keys: LogKeys;
  let base: Files;
  let fork: Files;
  let foreign: Files;
  let otherExport: Files;
  let attacker: PrivateKey;
  const counts = new Map<string, number>();
  const histograms = new Map<string, Map<string, number>>();
  const rnd = prng(SEED);

  function verify(files: Files, trustedCheckpoint?: string): Verdict {
    const report = verifyLog(p, bundleSource('<memory>', new Bundle(files)), {
      trustedSigners: [keys.signer.publicKey],
      ...(trustedCheckpoint ? { trustedCheckpoint } : {}),
    });
    return { report, codes: new Set(report.failures.map((f) => f.code)) };
  }

  /** Verifies one mutant and checks the failure codes: every code in `all`, and at least one of each group in `anyOf`. */
  function expectDetected(
    category: string,
    what: string,
    files: Files,
    expect: {
      all?: readonly string[];
      anyOf?: readonly (readonly string[])[];
      none?: readonly string[];
      trustedCheckpoint?: string;
    },
  ): void {
    const v = verify(files, expect.trustedCheckpoint);
    const ctx = `[seed ${SEED}] ${category}: ${what}\n${JSON.stringify(v.report.failures.slice(0, 8), null, 1)}`;
    assert.equal(v.report.ok, false, `not detected: ${ctx}`);
    for (const f of v.report.failures) assert.ok(f.location && f.message, `unnamed failure ${ctx}`);
    for (const c of expect.all ?? []) assert.ok(v.codes.has(c), `expected ${c}: ${ctx}`);
    for (const group of expect.anyOf ?? [])
      assert.ok(
        group.some((c) => v.codes.has(c)),
        `expected one of ${group.join('|')}: ${ctx}`,
      );
    for (const c of expect.none ?? []) assert.ok(!v.codes.has(c), `unexpected ${c}: ${ctx}`);
    counts.set(category, (counts.get(category) ?? 0) + 1);
    const h = histograms.get(category) ?? new Map<string, number>();
    for (const c of v.codes) h.set(c, (h.get(c) ?? 0) + 1);
    histograms.set(category, h);
  }

  /** The same structural mutation, by both attackers. */
  function bothAttackers(
    category: string,
    what: string,
    mutated: Files,
    content: { all?: readonly string[]; anyOf?: readonly (readonly string[])[] },
  ): void {
    expectDetected(`${category} (manifest untouched)`, what, copy(mutated), {
      all: ['FILE_HASH_MISMATCH'],
      ...content,
    });
    expectDetected(`${category} (manifest hashes rewritten)`, what, rewriteManifest(copy(mutated)), {
      ...content,
      all: ['MANIFEST_SIGNATURE_INVALID', ...(content.all ?? [])],
      none: ['FILE_HASH_MISMATCH'],
    });
  }

  const SEGMENT_LEVEL = [
    'SEQUENCE_GAP',
    'FINAL_MISSING',
    'RECORD_AFTER_FINAL',
    'CRASH_RECOVERY_MISMATCH',
    'SEGMENT_OPEN_UNACCOUNTED',
  ];

  before(async () => {
    console.log(`tamper seed ${SEED} (rerun with SEALGATE_TAMPER_SEED=${SEED})`);
    keys = await makeKeys(p);
    attacker = await p.generateKey({ type: 'ec', curve: 'P-384' });
    const store = join(tempDir(), 'store');
    await writeRun(p, store, keys, { create: true, policy: { heartbeatMs: 25 }, waitMs: 80 });
    crashRun(p, store, keys);
    await writeRun(p, store, keys, { sessions: 2, records: 4 });
    const out = join(tempDir(), 'bundle');
    await exportBundle({ provider: p, storeDir: store, outDir: out, signer: keys.signer });
    base = loadFiles(out);
    // Another export of the same log: a valid manifest.sig, over another manifest.
    const other = join(tempDir(), 'bundle');
    await exportBundle({ provider: p, storeDir: store, outDir: other, signer: keys.signer, from: 3, to: 20 });
    otherExport = loadFiles(other);
    // A fork (same origin, same signer key) and a foreign log (another origin and key).
    const forkStore = join(tempDir(), 'fork');
    await writeRun(p, forkStore, keys, { create: true, sessions: 3, records: 7 });
    const forkOut = join(tempDir(), 'bundle');
    await exportBundle({ provider: p, storeDir: forkStore, outDir: forkOut, signer: keys.signer });
    fork = loadFiles(forkOut);
    const foreignKeys = await makeKeys(p);
    const foreignStore = join(tempDir(), 'foreign');
    await writeRun(p, foreignStore, foreignKeys, {
      create: true,
      origin: 'foreign.example/log',
      sessions: 2,
    });
    const foreignOut = join(tempDir(), 'bundle');
    await exportBundle({
      provider: p,
      storeDir: foreignStore,
      outDir: foreignOut,
      signer: foreignKeys.signer,
    });
    foreign = loadFiles(foreignOut);
    const r = verify(base);
    assert.equal(r.report.ok, true, JSON.stringify(r.report.failures));
  });

  it('a bit flip anywhere in any bundle file', () => {
    const names = [...base.keys()].sort();
    for (let i = 0; i < 500; i++) {
      const name = rnd.pick(names);
      const files = copy(base);
      const bytes = files.get(name)!;
      const bit = rnd.int(bytes.length * 8);
      bytes[bit >> 3] ^= 1 << (bit & 7);
      const what = `${name} bit ${bit}`;
      if (name === BUNDLE_FILES.manifest) {
        expectDetected('bit flip: manifest.json', what, files, { all: ['MANIFEST_SIGNATURE_INVALID'] });
      } else if (name === BUNDLE_FILES.signature) {
        expectDetected('bit flip: manifest.sig', what, files, { all: ['MANIFEST_SIGNATURE_INVALID'] });
      } else {
        expectDetected(`bit flip: ${name} (manifest untouched)`, what, copy(files), {
          all: ['FILE_HASH_MISMATCH'],
        });
        const content: Record<string, string[]> = {
          [BUNDLE_FILES.entries]: ['ROOT_MISMATCH', 'INDEX_NOT_CONTIGUOUS', 'ENTRY_MALFORMED'],
          [BUNDLE_FILES.checkpoints]: [
            'CHECKPOINT_SIGNATURE_INVALID',
            'CHECKPOINT_UNKNOWN_SIGNER',
            'CHECKPOINT_MALFORMED',
          ],
          [BUNDLE_FILES.proofs]: ['PROOFS_MALFORMED', 'CONSISTENCY_PROOF_INVALID'],
          [BUNDLE_FILES.signers]: ['SIGNERS_FILE_INVALID'],
        };
        // A flip that leaves signers.json meaning the same (a PEM's whitespace, or a base64 digit's
        // unused low bits: the same key) is caught by the manifest signature alone.
        const sameMeaning = name === BUNDLE_FILES.signers && signersEquivalent(base.get(name)!, bytes);
        expectDetected(`bit flip: ${name} (manifest hashes rewritten)`, what, rewriteManifest(files), {
          all: ['MANIFEST_SIGNATURE_INVALID'],
          anyOf: sameMeaning ? [] : [content[name] ?? []],
          none: ['FILE_HASH_MISMATCH'],
        });
      }
    }
  });

  it('a record deleted', () => {
    const all = frames(base);
    const records = all.map((e, i) => ({ e, i })).filter(({ e }) => e.bytes[0] === EntryKind.SEALED_RECORD);
    for (let n = 0; n < 40; n++) {
      const { i } = rnd.pick(records);
      const renumber = n % 2 === 1;
      const kept = all.filter((_, j) => j !== i).map((e, j) => (renumber ? { index: j, bytes: e.bytes } : e));
      const files = copy(base);
      files.set(BUNDLE_FILES.entries, encodeEntryFrames(kept));
      bothAttackers('record deleted', `leaf ${i}${renumber ? ', later leaves renumbered' : ''}`, files, {
        // The entries no longer fill the last checkpoint (ENTRIES_TRUNCATED), and where the hole is shows
        // in the segment's sequence (or its FINAL, or the crash accounting) and in the leaf indexes.
        all: renumber ? ['ENTRIES_TRUNCATED'] : ['ENTRIES_TRUNCATED', 'INDEX_NOT_CONTIGUOUS'],
        anyOf: [SEGMENT_LEVEL],
      });
    }
  });

  it('two records swapped', () => {
    const all = frames(base);
    const bySegment = new Map<string, number[]>();
    all.forEach((e, i) => {
      const d = decodeEntry(e.bytes);
      if (d.kind === EntryKind.SEALED_RECORD) {
        const id = hex(d.segmentId);
        bySegment.set(id, [...(bySegment.get(id) ?? []), i]);
      }
    });
    const segments = [...bySegment.values()].filter((xs) => xs.length >= 2);
    for (let n = 0; n < 40; n++) {
      const sameSegment = n % 2 === 0;
      let a: number;
      let b: number;
      if (sameSegment) {
        const xs = rnd.pick(segments);
        a = rnd.pick(xs);
        do b = rnd.pick(xs);
        while (b === a);
      } else {
        a = rnd.int(all.length);
        do b = rnd.int(all.length);
        while (b === a);
      }
      const swapped = all.map((e) => ({ ...e }));
      [swapped[a]!.bytes, swapped[b]!.bytes] = [all[b]!.bytes, all[a]!.bytes];
      const files = copy(base);
      files.set(BUNDLE_FILES.entries, encodeEntryFrames(swapped));
      bothAttackers(
        sameSegment ? 'two records of a segment swapped' : 'two entries swapped',
        `leaves ${a} and ${b}`,
        files,
        {
          all: sameSegment ? ['ROOT_MISMATCH', 'SEQUENCE_GAP'] : ['ROOT_MISMATCH'],
        },
      );
    }
  });

  it('the tail truncated', () => {
    const all = frames(base);
    const ns = notes(base);
    const entriesBin = base.get(BUNDLE_FILES.entries)!;
    const lastNote = ns.at(-1)!;
    for (let n = 0; n < 60; n++) {
      const files = copy(base);
      const variant = n % 4;
      if (variant === 0) {
        // Whole frames cut off the end of entries.bin; the checkpoints still cover them.
        const k = 1 + rnd.int(Math.floor(all.length / 2));
        files.set(BUNDLE_FILES.entries, encodeEntryFrames(all.slice(0, all.length - k)));
        bothAttackers('tail truncated: entries', `last ${k} entries`, files, { all: ['ENTRIES_TRUNCATED'] });
      } else if (variant === 1) {
        // entries.bin cut at any byte.
        const at = 1 + rnd.int(entriesBin.length - 1);
        files.set(BUNDLE_FILES.entries, entriesBin.slice(0, at));
        bothAttackers('tail truncated: entries.bin bytes', `cut at byte ${at}`, files, {
          all: ['ENTRIES_TRUNCATED'],
        });
      } else if (variant === 2) {
        // The last checkpoints dropped: entries after the new last one are unsigned.
        const k = 1 + rnd.int(ns.length - 1);
        files.set(BUNDLE_FILES.checkpoints, encodeNoteFrames(ns.slice(0, ns.length - k)));
        bothAttackers('tail truncated: checkpoints', `last ${k} checkpoints`, files, {
          all: ['ENTRIES_AFTER_LAST_CHECKPOINT'],
        });
      } else {
        // A clean cut at a checkpoint: a genuine prefix of the log. Only the manifest signature shows it,
        // and, given the auditor's retained checkpoint, TAIL_TRUNCATED (the CloudTrail blind spot).
        const j = rnd.int(ns.length - 1);
        const size = sizeOf(ns[j]!);
        files.set(BUNDLE_FILES.entries, encodeEntryFrames(all.slice(0, size)));
        files.set(BUNDLE_FILES.checkpoints, encodeNoteFrames(ns.slice(0, j + 1)));
        const proofs = JSON.parse(text(files.get(BUNDLE_FILES.proofs))) as {
          tree_size: number;
          consistency: { to: number }[];
        };
        proofs.tree_size = size;
        proofs.consistency = proofs.consistency.filter((c) => c.to <= size);
        files.set(BUNDLE_FILES.proofs, Buffer.from(JSON.stringify(proofs)));
        const rewritten = rewriteManifest(files);
        expectDetected(
          'tail truncated at a checkpoint (everything rewritten)',
          `cut to size ${size}`,
          copy(rewritten),
          {
            all: ['MANIFEST_SIGNATURE_INVALID'],
            none: ['FILE_HASH_MISMATCH'],
          },
        );
        expectDetected(
          'tail truncated at a checkpoint, auditor holds the last checkpoint',
          `cut to size ${size}`,
          rewritten,
          {
            all: ['MANIFEST_SIGNATURE_INVALID', 'TAIL_TRUNCATED'],
            trustedCheckpoint: lastNote,
          },
        );
      }
    }
  });

  it('a segment spliced in from another log', () => {
    const all = frames(base);
    const segmentOf = (files: Files): LogEntry[][] => {
      const segs = new Map<string, LogEntry[]>();
      for (const e of frames(files)) {
        const d = decodeEntry(e.bytes);
        if (d.kind === EntryKind.SEGMENT_HEADER || d.kind === EntryKind.SEALED_RECORD) {
          const id = hex(d.segmentId);
          segs.set(id, [...(segs.get(id) ?? []), e]);
        }
      }
      return [...segs.values()];
    };
    const forkSegments = segmentOf(fork);
    const foreignSegments = segmentOf(foreign);
    for (let n = 0; n < 40; n++) {
      const fromForeign = n % 2 === 1;
      const seg = rnd.pick(fromForeign ? foreignSegments : forkSegments);
      const at = 1 + rnd.int(all.length - 1);
      const spliced = [...all.slice(0, at), ...seg, ...all.slice(at)].map((e, i) => ({
        index: i,
        bytes: e.bytes,
      }));
      const files = copy(base);
      files.set(BUNDLE_FILES.entries, encodeEntryFrames(spliced));
      bothAttackers(
        fromForeign
          ? 'segment spliced from a foreign log'
          : 'segment spliced from a fork (same origin and key)',
        `${seg.length} entries at leaf ${at}`,
        files,
        {
          all: fromForeign ? ['ROOT_MISMATCH', 'ORIGIN_MISMATCH'] : ['ROOT_MISMATCH'],
        },
      );
    }
  });

  it('a checkpoint replaced or re-signed with another key', async () => {
    const ns = notes(base);
    const forkNotes = notes(fork);
    const foreignNotes = notes(foreign);
    for (let n = 0; n < 60; n++) {
      const i = rnd.int(ns.length);
      const replaced = [...ns];
      const variant = n % 5;
      let category: string;
      let content: { all?: string[]; anyOf?: string[][] };
      if (variant === 0) {
        replaced[i] = rnd.pick(foreignNotes);
        category = "checkpoint replaced by another log's";
        content = { all: ['CHECKPOINT_UNKNOWN_SIGNER', 'ORIGIN_MISMATCH'] };
      } else if (variant === 1) {
        replaced[i] = await signNote(p, attacker, ORIGIN, parseNote(ns[i]!).body);
        category = 'checkpoint re-signed with another key';
        content = { all: ['CHECKPOINT_UNKNOWN_SIGNER'] };
      } else if (variant === 2) {
        const cp = parseCheckpoint(parseNote(ns[i]!).body);
        const root = Uint8Array.from(cp.root);
        root[rnd.int(32)] ^= 1;
        replaced[i] = await signNote(p, attacker, ORIGIN, formatCheckpoint({ ...cp, root }));
        category = 'checkpoint forged and signed with another key';
        content = { all: ['CHECKPOINT_UNKNOWN_SIGNER', 'ROOT_MISMATCH'] };
      } else if (variant === 3) {
        replaced[i] = rnd.pick(forkNotes);
        category = "checkpoint replaced by a fork's (same origin and key)";
        content = { anyOf: [['ROOT_MISMATCH', 'ENTRIES_TRUNCATED']] };
      } else {
        let j: number;
        do j = rnd.int(ns.length);
        while (j === i);
        replaced[i] = ns[j]!;
        category = 'checkpoint replaced by another of the same log';
        content = { anyOf: [['CHECKPOINT_INCONSISTENT', 'CONSISTENCY_PROOF_INVALID']] };
      }
      const files = copy(base);
      files.set(BUNDLE_FILES.checkpoints, encodeNoteFrames(replaced));
      bothAttackers(category, `checkpoint ${i}`, files, content);
    }
  });

  it('the manifest edited', async () => {
    const m0 = JSON.parse(text(base.get(BUNDLE_FILES.manifest))) as Record<string, unknown>;
    const edits: [string, (m: Record<string, unknown>) => void, string[]][] = [
      ['complete set to false', (m) => (m.complete = false), ['INCLUSION_PROOF_INVALID']],
      [
        'entries changed',
        (m) => (m.entries = (m.entries as number) + 1 + rnd.int(5)),
        ['MANIFEST_CONTENT_MISMATCH'],
      ],
      [
        'checkpoints changed',
        (m) => (m.checkpoints = (m.checkpoints as number) - 1),
        ['MANIFEST_CONTENT_MISMATCH'],
      ],
      [
        'tree_size changed',
        (m) => (m.tree_size = (m.tree_size as number) - 1 - rnd.int(5)),
        ['MANIFEST_CONTENT_MISMATCH'],
      ],
      [
        'range changed',
        (m) => (m.range = { from: 1 + rnd.int(3), to: m.tree_size }),
        ['MANIFEST_CONTENT_MISMATCH'],
      ],
      ['origin changed', (m) => (m.origin = `evil${rnd.int(100)}.example/log`), ['ORIGIN_MISMATCH']],
      [
        'a file hash changed',
        (m) =>
          ((m.files as Record<string, string>)[rnd.pick(HASHED_FILES)] = sha256(Uint8Array.of(rnd.int(256)))),
        ['FILE_HASH_MISMATCH'],
      ],
      ['format changed', (m) => (m.format = 'sealgate-bundle-v2'), ['MANIFEST_MALFORMED']],
      ['created changed', (m) => (m.created = new Date(rnd.int(2 ** 40)).toISOString()), []],
      ['not JSON', () => undefined, ['MANIFEST_MALFORMED']],
    ];
    for (let n = 0; n < 60; n++) {
      const [what, edit, specific] = edits[n % edits.length]!;
      const m = structuredClone(m0);
      edit(m);
      const files = copy(base);
      const bytes =
        what === 'not JSON'
          ? Buffer.from(`${JSON.stringify(m).slice(0, -1 - rnd.int(10))}`)
          : Buffer.from(JSON.stringify(m, null, 2));
      files.set(BUNDLE_FILES.manifest, bytes);
      const resign = n % 3 === 2;
      if (resign) {
        files.set(
          BUNDLE_FILES.signature,
          Buffer.from(
            await signNote(p, attacker, ORIGIN, `sealgate bundle v1\n${ORIGIN}\n${sha256(bytes)}\n`),
          ),
        );
      }
      expectDetected(`manifest edited${resign ? ' and re-signed with another key' : ''}`, what, files, {
        all: ['MANIFEST_SIGNATURE_INVALID', ...specific],
      });
    }
    // Another export's manifest and signature (valid, same log, same key) in place of this one's.
    for (const swap of [[BUNDLE_FILES.signature], [BUNDLE_FILES.signature, BUNDLE_FILES.manifest]]) {
      const files = copy(base);
      for (const name of swap) files.set(name, otherExport.get(name)!);
      expectDetected('manifest.sig from another export', swap.join(' and '), files, {
        anyOf: [['MANIFEST_SIGNATURE_INVALID', 'FILE_HASH_MISMATCH']],
      });
    }
  });

  it('covers every category, more than a thousand mutations in all', (t: TestContext) => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    for (const [category, n] of [...counts].sort()) {
      const h = [...(histograms.get(category) ?? [])]
        .sort((a, b) => b[1] - a[1])
        .map(([c, k]) => `${c} ${k}`);
      t.diagnostic(`${n} × ${category}: ${h.join(', ')}`);
    }
    t.diagnostic(`${total} mutations, every one detected with named codes (seed ${SEED})`);
    assert.ok(total >= 1000, `only ${total} mutations`);
    for (const prefix of [
      'bit flip',
      'record deleted',
      'two records of a segment swapped',
      'tail truncated',
      'segment spliced',
      'checkpoint re',
      'manifest edited',
    ]) {
      assert.ok(
        [...counts.keys()].some((k) => k.startsWith(prefix)),
        `no mutations of category ${prefix}`,
      );
    }
  });
});
