/**
 * End to end with keys in tokens: a sealed log whose checkpoint key is an ECDSA P-384 key in a token
 * (SoftHSM2, then NSS), verified offline with nothing but the exported public key; an auditor whose RSA
 * key is in the NSS softoken opens the segments; and the log fails closed (onFailure, then LOG_FAILED)
 * when the token goes away or the key is destroyed under it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createProvider,
  OpenSslProvider,
  type PrivateKey,
  type PublicKey,
  type RoutingProvider,
} from '../../src/crypto/index.js';
import { parseCheckpoint } from '../../src/seal/checkpoint.js';
import { SealError } from '../../src/seal/errors.js';
import { decodeEntry } from '../../src/seal/format/entry.js';
import { decodePayload } from '../../src/seal/format/payload.js';
import { EntryKind, RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import { verifyNote } from '../../src/seal/note.js';
import { SegmentOpener } from '../../src/seal/opener.js';
import { LocalStore } from '../../src/seal/store.js';
import { makeNss, makeSoftHsm2, type TestToken } from '../tokens/tokens.js';

const ORIGIN = 'test.sealgate/pkcs11';
const utf8 = (s: string) => new TextEncoder().encode(s);

function storeDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'sealgate-pkcs11-log-')), 'store');
}

describe('sealed log with token keys', () => {
  let softhsm: TestToken;
  let nss: TestToken;
  let gate: Record<'softhsm2' | 'nss', RoutingProvider>;
  let auditor: RoutingProvider;
  let auditorKeyRef: string;
  let recipient: PublicKey;
  const opened: RoutingProvider[] = [];

  async function provider(t: TestToken): Promise<RoutingProvider> {
    const { provider: p, report } = await createProvider({ pkcs11: t.settings });
    assert.ok(report.ok);
    opened.push(p);
    return p;
  }

  /** A new log whose checkpoints `signingKey` signs, the failures it reports, and its store. */
  async function openLogSignedBy(p: RoutingProvider, signingKey: PrivateKey) {
    const failures: Error[] = [];
    const dir = storeDir();
    const log = await SealedLog.open({
      provider: p,
      dir,
      origin: ORIGIN,
      recipients: [recipient],
      signingKey,
      create: true,
      onFailure: (e) => failures.push(e),
    });
    return { log, failures, dir };
  }

  before(async () => {
    softhsm = makeSoftHsm2();
    nss = makeNss();
    gate = { softhsm2: await provider(softhsm), nss: await provider(nss) };
    // The auditor's key pair is made in the NSS token; the gate is given only its public key.
    auditor = gate.nss;
    auditorKeyRef = (await auditor.generateKeyAt(nss.uri('auditor'), { type: 'rsa', bits: 3072 })).ref;
    const pem = (await auditor.loadPublicKey(auditorKeyRef)).spkiPem();
    recipient = new OpenSslProvider().importPublicKey(pem);
  });
  after(() => {
    for (const p of opened) p.close();
  });

  for (const kind of ['softhsm2', 'nss'] as const) {
    it(`${kind}: checkpoints signed in the token verify with only the exported public key; the auditor decrypts in NSS`, async () => {
      const t = kind === 'softhsm2' ? softhsm : nss;
      const p = gate[kind];
      const ref = t.uri(`checkpoint-signer-${kind}`);
      await p.generateKeyAt(ref, { type: 'ec', curve: 'P-384' });
      // The gate loads its key by reference, as from `recording.checkpoint_signer`.
      const signingKey = await p.loadPrivateKey(ref);
      const { log, failures, dir } = await openLogSignedBy(p, signingKey);
      const session = log.openSession();
      session.event(RecordType.EXEC, { channel: 0, command: 'id' });
      for (let i = 0; i < 3; i++)
        session.event(RecordType.DATA_OUT, { channel: 0, data: utf8(`line ${i}\n`) });
      await session.end('closed').durable;
      await log.checkpoint();
      await log.close('test done');
      assert.deepEqual(failures, []);

      // Offline verification: a fresh software provider and the public key as PEM text, nothing else.
      const verifier = new OpenSslProvider();
      const publicKey = verifier.importPublicKey((await p.loadPublicKey(ref)).spkiPem());
      const store = LocalStore.openReadOnly(dir);
      const notes = store.checkpoints();
      assert.ok(notes.length >= 2, `only ${notes.length} checkpoints`);
      let last = 0n;
      for (const note of notes) {
        const { body } = verifyNote(verifier, note, [{ name: ORIGIN, key: publicKey }]);
        const cp = parseCheckpoint(body);
        assert.ok(cp.size > last);
        last = cp.size;
      }
      assert.equal(last, BigInt(store.size));

      // The auditor opens the segment with the RSA key held in the NSS token.
      const auditorKey = await auditor.loadPrivateKey(auditorKeyRef);
      assert.equal(auditorKey.backend, 'pkcs11');
      const lines: string[] = [];
      let opener: SegmentOpener | undefined;
      for (const e of store.entries(0, store.size)) {
        const d = decodeEntry(e);
        if (d.kind === EntryKind.SEGMENT_HEADER) {
          // Provenance records the token that signed the checkpoints over this segment.
          assert.equal(d.provenance.backend, 'openssl');
          assert.equal(d.provenance.tokenModel, kind === 'nss' ? 'NSS 3' : 'SoftHSM v2');
          opener = await SegmentOpener.open(auditor, e, auditorKey);
        } else if (d.kind === EntryKind.SEALED_RECORD && opener) {
          const r = opener.open(e);
          if (r.type === RecordType.DATA_OUT) {
            lines.push(new TextDecoder().decode(decodePayload(RecordType.DATA_OUT, r.plaintext).data));
          }
        }
      }
      assert.deepEqual(lines, ['line 0\n', 'line 1\n', 'line 2\n']);
    });
  }

  it('fails closed when the token goes away: the next checkpoint fails, onFailure fires, appends stop', async () => {
    const p = await provider(softhsm);
    const ref = softhsm.uri('checkpoint-signer-vanishing');
    const signingKey = await p.generateKeyAt(ref, { type: 'ec', curve: 'P-384' });
    const { log, failures } = await openLogSignedBy(p, signingKey);
    const session = log.openSession();
    session.event(RecordType.EXEC, { channel: 0, command: 'uptime' });
    // The token goes away: its backend is finalized under the running log.
    p.close();
    await assert.rejects(log.checkpoint(), (err: unknown) => {
      assert.ok(err instanceof SealError);
      assert.equal(err.code, 'CHECKPOINT_SIGN_FAILED');
      assert.match(err.message, /the PKCS#11 backend for .*libsofthsm2\.so is closed/);
      return true;
    });
    assert.equal(failures.length, 1, 'onFailure is called once');
    assert.throws(
      () => session.event(RecordType.DATA_OUT, { channel: 0, data: utf8('more') }),
      (err: unknown) => err instanceof SealError && err.code === 'LOG_FAILED',
    );
    await log.close();
  });

  it('fails closed when the signing key is destroyed in the token under a running gate', async () => {
    const p = await provider(softhsm);
    const label = 'checkpoint-signer-destroyed';
    const signingKey = await p.generateKeyAt(softhsm.uri(label), { type: 'ec', curve: 'P-384' });
    const { log, failures } = await openLogSignedBy(p, signingKey);
    const pin = readFileSync(softhsm.pinFile, 'utf8').trim();
    execFileSync('pkcs11-tool', [
      '--module',
      softhsm.module,
      '--token-label',
      'sealgate',
      '--login',
      '--pin',
      pin,
      '--delete-object',
      '--type',
      'privkey',
      '--label',
      label,
    ]);
    log.openSession().event(RecordType.EXEC, { channel: 0, command: 'id' });
    await assert.rejects(log.checkpoint(), (err: unknown) => {
      assert.ok(err instanceof SealError && err.code === 'CHECKPOINT_SIGN_FAILED', String(err));
      assert.match(err.message, /no longer exists in token "sealgate"/);
      return true;
    });
    assert.equal(failures.length, 1);
    assert.ok(log.failed);
    await log.close();
  });
});
