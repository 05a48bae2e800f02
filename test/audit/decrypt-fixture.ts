/**
 * A real store for the decrypt tests, written by SealedLog, and the events each recipient must get back.
 *
 * Run 1 seals to recipients [r1, r2]; run 2 to [r1] only, so r2 finds segments not addressed to it.
 * Sessions interleave, segments roll over every 4 records, and the payloads cover binary and UTF-8 data,
 * EXEC commands, and JSON fields whose names the event envelope owns (CHANNEL_OPEN `type`, FORWARD `kind`).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CryptoProvider, PrivateKey } from '../../src/crypto/index.js';
import type { Payload } from '../../src/seal/format/payload.js';
import { isDataRecordType, RecordType, recordTypeName } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';
import type { SessionRecorder } from '../../src/seal/session-recorder.js';
import { LocalStore } from '../../src/seal/store.js';

export const ORIGIN = 'test.sealgate/decrypt';

/** An expected record event without its position fields (index, segment, seq, final, time). */
export type ExpectedRecord = Record<string, unknown> & { session: string; type: string };

export interface Fixture {
  readonly dir: string;
  readonly r1: PrivateKey;
  readonly r2: PrivateKey;
  readonly signer: PrivateKey;
  /** Session ids (hex), in the order they were opened. */
  readonly sessions: string[];
  /** The records each key must decrypt, in log order, and which sessions it can open. */
  readonly expected: { r1: ExpectedRecord[]; r2: ExpectedRecord[] };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const ENVELOPE = ['kind', 'index', 'session', 'segment', 'seq', 'type', 'final', 'time', 'payload'];

/** What a record should decrypt to, written out independently of src/audit/decrypt-event.ts. */
function expectedRecord(session: string, type: RecordType, value: unknown): ExpectedRecord {
  const out: ExpectedRecord = { kind: 'record', session, type: recordTypeName(type) };
  if (isDataRecordType(type)) {
    const { channel, data } = value as { channel: number; data: Uint8Array };
    out.channel = channel;
    // One representation (docs/FORMAT.md §10): `text` for valid UTF-8, else `data` in base64.
    let text: string | undefined;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
    } catch {
      text = undefined;
    }
    if (text !== undefined) out.text = text;
    else out.data = Buffer.from(data).toString('base64');
    return out;
  }
  const clashes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (ENVELOPE.includes(k)) clashes[k] = v;
    else out[k] = v;
  }
  if (Object.keys(clashes).length > 0) out.payload = clashes;
  return out;
}

export async function makeKeys(
  p: CryptoProvider,
): Promise<{ r1: PrivateKey; r2: PrivateKey; signer: PrivateKey }> {
  const [r1, r2, signer] = await Promise.all([
    p.generateKey({ type: 'rsa', bits: 2048 }),
    p.generateKey({ type: 'rsa', bits: 2048 }),
    p.generateKey({ type: 'ec', curve: 'P-384' }),
  ]);
  return { r1, r2, signer };
}

/** Writes the fixture store; `keys` lets a caller reuse keys it already made. */
export async function buildFixture(
  p: CryptoProvider,
  keys?: { r1: PrivateKey; r2: PrivateKey; signer: PrivateKey },
): Promise<Fixture> {
  const { r1, r2, signer } = keys ?? (await makeKeys(p));
  const dir = join(mkdtempSync(join(tmpdir(), 'sealgate-decrypt-')), 'store');
  const sessions: string[] = [];
  const expected = { r1: [] as ExpectedRecord[], r2: [] as ExpectedRecord[] };
  const base = { provider: p, dir, origin: ORIGIN, signingKey: signer, policy: { maxRecords: 4 } };

  let forR2 = true;
  const open = (log: SealedLog): SessionRecorder => {
    const s = log.openSession();
    sessions.push(hex(s.sessionId));
    return s;
  };
  const rec = <T extends RecordType>(s: SessionRecorder, type: T, value: Payload<T>): void => {
    s.event(type, value);
    const e = expectedRecord(hex(s.sessionId), type, value);
    expected.r1.push(e);
    if (forR2) expected.r2.push(e);
  };
  const end = (s: SessionRecorder, reason: string): Promise<void> => {
    const { durable } = s.end(reason);
    const e = expectedRecord(hex(s.sessionId), RecordType.SESSION_END, { reason });
    expected.r1.push(e);
    if (forR2) expected.r2.push(e);
    return durable;
  };

  const run1 = await SealedLog.open({ ...base, recipients: [r1.publicKey, r2.publicKey], create: true });
  const a = open(run1);
  const b = open(run1);
  const c = open(run1);
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  rec(a, RecordType.SESSION_START, {
    user: 'alice',
    target: 'db1',
    client: '192.0.2.7:50122',
    gate_user: 'alice',
    target_host: 'db1.internal',
    target_port: 22,
  });
  rec(b, RecordType.SESSION_START, {
    user: 'bob',
    target: 'web1',
    client: '192.0.2.8:40000',
    gate_user: 'bob',
    target_host: 'web1.internal',
    target_port: 22,
  });
  rec(a, RecordType.CHANNEL_OPEN, { channel: 0, type: 'session' });
  rec(a, RecordType.EXEC, { channel: 0, command: 'id -a && cat /etc/hostname' });
  rec(b, RecordType.PTY_REQ, { channel: 0, term: 'xterm', cols: 80, rows: 24, width: 0, height: 0 });
  rec(a, RecordType.DATA_OUT, { channel: 0, data: utf8('uid=1000(alice) gid=1000(alice)\ndb1\n') });
  rec(b, RecordType.SHELL, { channel: 0 });
  rec(b, RecordType.DATA_IN, { channel: 0, data: allBytes });
  rec(c, RecordType.EXEC, { channel: 3, command: 'printf "héllo ✓"' });
  rec(b, RecordType.DATA_OUT, { channel: 0, data: utf8('héllo ✓ — ünïcødé 🎉\r\n') });
  rec(c, RecordType.DATA_OUT, { channel: 3, data: Uint8Array.of(0xff, 0xfe, 0x00, 0x41, 0xc3) });
  rec(a, RecordType.EXIT_STATUS, { channel: 0, code: 0 });
  rec(b, RecordType.DATA_ERR, { channel: 0, data: utf8('\ufeffBOM kept\n') });
  rec(b, RecordType.FORWARD, { kind: 'direct-tcpip', allowed: false, host: '10.0.0.1', port: 5432 });
  rec(c, RecordType.DATA_IN, { channel: 3, data: new Uint8Array(0) });
  rec(b, RecordType.WINDOW_CHANGE, { channel: 0, cols: 120, rows: 40, width: 0, height: 0 });
  await end(a, 'closed');
  rec(b, RecordType.DATA_IN, { channel: 0, data: utf8('exit\n') });
  rec(c, RecordType.EXIT_STATUS, { channel: 3, code: 1 });
  await end(c, 'closed');
  await end(b, 'client disconnected');
  await run1.close('fixture run 1 done');

  forR2 = false;
  const run2 = await SealedLog.open({ ...base, recipients: [r1.publicKey] });
  const d = open(run2);
  rec(d, RecordType.EXEC, { channel: 0, command: 'uptime' });
  rec(d, RecordType.DATA_OUT, { channel: 0, data: utf8(' 10:00:00 up 1 day\n') });
  await end(d, 'closed');
  await run2.close('fixture run 2 done');

  return { dir, r1, r2, signer, sessions, expected };
}

/** The store's entries with their leaf indexes, read directly (not through src/audit/source.ts). */
export function storeEntries(dir: string): { index: number; bytes: Uint8Array }[] {
  const store = LocalStore.openReadOnly(dir);
  try {
    return [...store.entries(0, store.size)].map((bytes, index) => ({ index, bytes: bytes.slice() }));
  } finally {
    void store.close();
  }
}

/** A decrypted record event without the fields an ExpectedRecord leaves out. */
export function withoutPosition(e: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...e };
  for (const k of ['index', 'segment', 'seq', 'final', 'time']) delete rest[k];
  return rest;
}
