import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSslProvider, type PrivateKey } from '../../src/crypto/index.js';
import { formatCheckpoint, parseCheckpoint, type Checkpoint } from '../../src/seal/checkpoint.js';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';
import { MAX_NOTE_SIGNATURES, noteKeyId, parseNote, signNote, verifyNote } from '../../src/seal/note.js';

const provider = new OpenSslProvider();
const ORIGIN = 'test.sealgate/log';
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const isSealError =
  (code: SealErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof SealError, `expected SealError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };

const root = (seed: number): Uint8Array => new Uint8Array(32).map((_, i) => (seed * 31 + i) & 0xff);
const checkpoint = (size: bigint, seed = 1): Checkpoint => ({ origin: ORIGIN, size, root: root(seed) });

let key: PrivateKey;
let otherKey: PrivateKey;
let work: string;

before(async () => {
  key = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  otherKey = await provider.generateKey({ type: 'ec', curve: 'P-384' });
  work = mkdtempSync(join(tmpdir(), 'sealgate-note-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A note with `lines` as its signature block, around a valid checkpoint body. */
const noteWith = (...lines: string[]): string =>
  `${formatCheckpoint(checkpoint(10n))}\n${lines.map((l) => `${l}\n`).join('')}`;

describe('checkpoint body (FORMAT.md §5.1)', () => {
  test('formats origin, decimal size and base64 root, each ending in a newline', () => {
    const cp = checkpoint(20852163n);
    assert.equal(formatCheckpoint(cp), `${ORIGIN}\n20852163\n${b64(cp.root)}\n`);
    assert.deepEqual(parseCheckpoint(formatCheckpoint(cp)), cp);
  });

  test('round-trips size 0 and 2^64 - 1', () => {
    for (const size of [0n, 1n, (1n << 64n) - 1n]) {
      assert.equal(parseCheckpoint(formatCheckpoint(checkpoint(size))).size, size);
    }
  });

  test('accepts and ignores extension lines', () => {
    const cp = parseCheckpoint(`${formatCheckpoint(checkpoint(5n))}ext one\n— not a signature\n`);
    assert.deepEqual(cp, checkpoint(5n));
  });

  test('refuses malformed bodies with CHECKPOINT_MALFORMED', () => {
    const r = b64(root(1));
    const cases: Record<string, string> = {
      'leading zero': `${ORIGIN}\n01\n${r}\n`,
      plus: `${ORIGIN}\n+1\n${r}\n`,
      minus: `${ORIGIN}\n-1\n${r}\n`,
      space: `${ORIGIN}\n 1\n${r}\n`,
      hex: `${ORIGIN}\n0x10\n${r}\n`,
      'empty size': `${ORIGIN}\n\n${r}\n`,
      '2^64': `${ORIGIN}\n18446744073709551616\n${r}\n`,
      'root of 31 bytes': `${ORIGIN}\n1\n${b64(new Uint8Array(31))}\n`,
      'root of 33 bytes': `${ORIGIN}\n1\n${b64(new Uint8Array(33))}\n`,
      'root without padding': `${ORIGIN}\n1\n${r.replace(/=+$/, '')}\n`,
      'root in base64url': `${ORIGIN}\n1\n${Buffer.from(new Uint8Array(32).fill(0xff)).toString('base64url')}=\n`,
      'root with non-zero trailing bits': `${ORIGIN}\n1\n${r.slice(0, 42)}B=\n`,
      'empty origin': `\n1\n${r}\n`,
      'no final newline': `${ORIGIN}\n1\n${r}`,
      'two lines': `${ORIGIN}\n1\n`,
      'empty extension line': `${ORIGIN}\n1\n${r}\n\n`,
      'carriage return': `${ORIGIN}\r\n1\n${r}\n`,
    };
    for (const [name, text] of Object.entries(cases)) {
      assert.throws(() => parseCheckpoint(text), isSealError('CHECKPOINT_MALFORMED'), name);
    }
  });

  test('refuses to format an impossible checkpoint', () => {
    const bad: Checkpoint[] = [
      { origin: '', size: 1n, root: root(1) },
      { origin: 'a\nb', size: 1n, root: root(1) },
      { origin: ORIGIN, size: -1n, root: root(1) },
      { origin: ORIGIN, size: 1n << 64n, root: root(1) },
      { origin: ORIGIN, size: 1n, root: new Uint8Array(31) },
    ];
    for (const cp of bad) assert.throws(() => formatCheckpoint(cp), isSealError('INVALID_ARGUMENT'));
  });
});

describe('signed note (FORMAT.md §5.2)', () => {
  test('signs and verifies a checkpoint with an ECDSA P-384 key', async () => {
    const body = formatCheckpoint(checkpoint(10n));
    const note = await signNote(provider, key, ORIGIN, body);
    assert.ok(note.startsWith(`${body}\n\u2014 ${ORIGIN} `), note);
    assert.ok(note.endsWith('\n'));
    const parsed = parseNote(note);
    assert.equal(parsed.body, body);
    assert.equal(parsed.signatures.length, 1);
    assert.equal(parsed.signatures[0].name, ORIGIN);
    assert.deepEqual(parsed.signatures[0].keyId, noteKeyId(provider, key.publicKey));
    const verified = verifyNote(provider, note, [{ name: ORIGIN, key: key.publicKey }]);
    assert.equal(verified.body, body);
    assert.deepEqual(verified.signer.spkiDer(), key.publicKey.spkiDer());
    assert.deepEqual(parseCheckpoint(verified.body), checkpoint(10n));
    // The same note as bytes.
    assert.equal(verifyNote(provider, Buffer.from(note), [{ name: ORIGIN, key: key.publicKey }]).body, body);
  });

  test('the key id is the first 4 bytes of SHA-256 of the SPKI DER, as openssl computes it', () => {
    const pem = join(work, 'keyid.pem');
    writeFileSync(pem, key.publicKey.spkiPem());
    const out = execFileSync('sh', ['-c', `openssl pkey -pubin -in '${pem}' -outform DER | sha256sum`], {
      encoding: 'utf8',
    });
    assert.equal(hex(noteKeyId(provider, key.publicKey)), out.slice(0, 8));
  });

  test('the openssl command line verifies the signature over the body bytes', async () => {
    const body = formatCheckpoint(checkpoint(123456n, 7));
    const note = await signNote(provider, key, ORIGIN, body);
    const blob = Buffer.from(note.trimEnd().split(' ').at(-1)!, 'base64');
    const [pub, sig, txt, bad] = ['pub.pem', 'sig.der', 'body.txt', 'bad.txt'].map((f) => join(work, f));
    writeFileSync(pub, key.publicKey.spkiPem());
    writeFileSync(sig, blob.subarray(4));
    writeFileSync(txt, body);
    writeFileSync(bad, body.replace('123456', '123457'));
    const ok = spawnSync('openssl', ['dgst', '-sha384', '-verify', pub, '-signature', sig, txt], {
      encoding: 'utf8',
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /Verified OK/);
    const no = spawnSync('openssl', ['dgst', '-sha384', '-verify', pub, '-signature', sig, bad], {
      encoding: 'utf8',
    });
    assert.notEqual(no.status, 0);
    assert.match(no.stdout, /Verification failure/);
  });

  test('a changed size, root, origin or signature is NOTE_SIGNATURE_INVALID', async () => {
    const cp = checkpoint(10n);
    const note = await signNote(provider, key, ORIGIN, formatCheckpoint(cp));
    const trusted = [{ name: ORIGIN, key: key.publicKey }];
    const sigLine = note.slice(note.lastIndexOf('\n\n') + 2);
    const tampered = {
      size: `${formatCheckpoint({ ...cp, size: 11n })}\n${sigLine}`,
      root: `${formatCheckpoint({ ...cp, root: root(2) })}\n${sigLine}`,
      origin: `${formatCheckpoint({ ...cp, origin: 'evil.example/log' })}\n${sigLine}`,
      extension: `${formatCheckpoint(cp)}extra\n\n${sigLine}`,
    };
    for (const [what, text] of Object.entries(tampered)) {
      assert.throws(() => verifyNote(provider, text, trusted), isSealError('NOTE_SIGNATURE_INVALID'), what);
    }
    // Flip one bit of the DER signature (its last byte: inside s).
    const blob = Buffer.from(sigLine.trimEnd().split(' ')[2], 'base64');
    blob[blob.length - 1] ^= 1;
    const flipped = `${formatCheckpoint(cp)}\n\u2014 ${ORIGIN} ${blob.toString('base64')}\n`;
    assert.throws(() => verifyNote(provider, flipped, trusted), isSealError('NOTE_SIGNATURE_INVALID'));
  });

  test('a note from an unknown key is NOTE_UNKNOWN_SIGNER', async () => {
    const note = await signNote(provider, key, ORIGIN, formatCheckpoint(checkpoint(10n)));
    // Another key under the same name; the same key under another name.
    assert.throws(
      () => verifyNote(provider, note, [{ name: ORIGIN, key: otherKey.publicKey }]),
      isSealError('NOTE_UNKNOWN_SIGNER'),
    );
    assert.throws(
      () => verifyNote(provider, note, [{ name: 'other.example/log', key: key.publicKey }]),
      isSealError('NOTE_UNKNOWN_SIGNER'),
    );
    assert.throws(() => verifyNote(provider, note, []), isSealError('NOTE_UNKNOWN_SIGNER'));
  });

  test('signatures from unknown keys are ignored; any failing trusted one rejects the note', async () => {
    const body = formatCheckpoint(checkpoint(10n));
    const mine = (await signNote(provider, key, ORIGIN, body)).slice(body.length + 1);
    const theirs = (await signNote(provider, otherKey, 'witness.example/w1', body)).slice(body.length + 1);
    const both = `${body}\n${theirs}${mine}`;
    const trusted = [{ name: ORIGIN, key: key.publicKey }];
    assert.deepEqual(verifyNote(provider, both, trusted).signer.spkiDer(), key.publicKey.spkiDer());

    // A line with the trusted name and key id but a bad signature, beside a good one.
    const blob = Buffer.from(mine.trimEnd().split(' ')[2], 'base64');
    blob[blob.length - 1] ^= 1;
    const bad = `\u2014 ${ORIGIN} ${blob.toString('base64')}\n`;
    assert.throws(
      () => verifyNote(provider, `${body}\n${mine}${bad}`, trusted),
      isSealError('NOTE_SIGNATURE_INVALID'),
    );
  });

  test('malformed notes are NOTE_MALFORMED', async () => {
    const body = formatCheckpoint(checkpoint(10n));
    const note = await signNote(provider, key, ORIGIN, body);
    const sigB64 = note.trimEnd().split(' ').at(-1)!;
    const trusted = [{ name: ORIGIN, key: key.publicKey }];
    const cases: Record<string, string> = {
      'no blank line': note.replace('\n\n', '\n'),
      'ASCII dash': note.replace('\u2014 ', '- '),
      'en dash': note.replace('\u2014 ', '\u2013 '),
      'no space after the dash': note.replace('\u2014 ', '\u2014'),
      'bad base64': noteWith(`\u2014 ${ORIGIN} ${sigB64.slice(0, -4)}!!!!`),
      // (Not the real signature: its length may be a multiple of 3, which needs no padding.)
      'base64 without padding': noteWith(
        `\u2014 ${ORIGIN} ${b64(new Uint8Array(7).fill(1)).replace(/=+$/, '')}`,
      ),
      'empty signature': noteWith(`\u2014 ${ORIGIN} `),
      'signature of 4 bytes': noteWith(`\u2014 ${ORIGIN} ${b64(new Uint8Array(4))}`),
      'no key name': noteWith(`\u2014 ${sigB64}`),
      'key name with +': noteWith(`\u2014 a+b ${sigB64}`),
      'key name with NBSP': noteWith(`\u2014 a\u00a0b ${sigB64}`),
      'tab in body': note.replace(`${ORIGIN}\n10`, `${ORIGIN}\t\n10`),
      'carriage return': note.replace('\n\n', '\r\n\n'),
      NUL: note.replace('10\n', '1\u00000\n'),
      'lone surrogate': note.replace('10\n', '10\ud800\n'),
      'no final newline': note.trimEnd(),
      'nothing after the blank line': `${body}\n`,
      [`${MAX_NOTE_SIGNATURES + 1} signatures`]: noteWith(
        ...Array.from({ length: MAX_NOTE_SIGNATURES + 1 }, () => `\u2014 ${ORIGIN} ${sigB64}`),
      ),
    };
    for (const [name, text] of Object.entries(cases)) {
      assert.throws(() => parseNote(text), isSealError('NOTE_MALFORMED'), name);
      assert.throws(() => verifyNote(provider, text, trusted), isSealError('NOTE_MALFORMED'), name);
    }
    // Bytes that are not UTF-8.
    const bytes = Buffer.concat([
      Buffer.from(body),
      Buffer.from([0xff]),
      Buffer.from(note.slice(body.length)),
    ]);
    assert.throws(() => parseNote(bytes), isSealError('NOTE_MALFORMED'));
  });

  test(`accepts up to ${MAX_NOTE_SIGNATURES} signature lines, and blank lines inside the text`, async () => {
    const note = await signNote(provider, key, ORIGIN, formatCheckpoint(checkpoint(10n)));
    const line = note.slice(note.lastIndexOf('\n\n') + 2, -1);
    const many = noteWith(...Array.from({ length: MAX_NOTE_SIGNATURES }, () => line));
    assert.equal(parseNote(many).signatures.length, MAX_NOTE_SIGNATURES);
    assert.ok(verifyNote(provider, many, [{ name: ORIGIN, key: key.publicKey }]));

    const text = 'first\n\nsecond\n';
    const signed = await signNote(provider, key, 'example.com/x', text);
    assert.equal(verifyNote(provider, signed, [{ name: 'example.com/x', key: key.publicKey }]).body, text);
  });

  test('signNote refuses bad names, unsignable text and keys other than P-384', async () => {
    const body = formatCheckpoint(checkpoint(1n));
    for (const name of ['', 'a b', 'a+b', 'a\nb']) {
      await assert.rejects(
        signNote(provider, key, name, body),
        isSealError('INVALID_ARGUMENT'),
        JSON.stringify(name),
      );
    }
    for (const text of ['no newline', 'tab\there\n', 'lone \ud800\n']) {
      await assert.rejects(signNote(provider, key, ORIGIN, text), isSealError('INVALID_ARGUMENT'), text);
    }
    const p256 = await provider.generateKey({ type: 'ec', curve: 'P-256' });
    await assert.rejects(signNote(provider, p256, ORIGIN, body), isSealError('INVALID_ARGUMENT'));
    assert.throws(
      () => verifyNote(provider, 'x\n\n\u2014 a AAAAAAA=\n', [{ name: 'a', key: p256.publicKey }]),
      isSealError('INVALID_ARGUMENT'),
    );
  });
});
