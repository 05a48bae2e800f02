/**
 * The pure format of docs/FORMAT.md §3 (round trips and every rejection a decoder owes), then the
 * sealer/opener suite shared with the FIPS pass, then what only the normal pass checks (the 3072-bit
 * recommendation, the 2^20-record limit).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { ByteReader, ByteWriter } from '../../src/seal/format/bytes.js';
import { decodeEntry, encodeEntry } from '../../src/seal/format/entry.js';
import { decodePayload, encodePayload } from '../../src/seal/format/payload.js';
import {
  decodeSealedRecord,
  encodeSealedRecord,
  MAX_RECORDS,
  recordAad,
  recordIv,
  type SealedRecord,
} from '../../src/seal/format/record.js';
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../../src/seal/format/segment-header.js';
import {
  decodeSystemEntry,
  encodeSystemEntry,
  type SystemEntry,
} from '../../src/seal/format/system-entry.js';
import {
  EntryKind,
  FLAG_FINAL,
  isDataRecordType,
  RecordType,
  recordTypeName,
  SystemType,
  systemTypeName,
  type RecordType as RecordTypeT,
  type SystemType as SystemTypeT,
} from '../../src/seal/format/types.js';
import { SegmentSealer } from '../../src/seal/sealer.js';
import { sealError } from './assert-seal-error.js';
import { registerSealerTests } from './sealer-suite.js';

const fill = (n: number, start: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const cat = (...parts: (Uint8Array | number[])[]): Uint8Array =>
  new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));
const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const withByte = (b: Uint8Array, i: number, v: number): Uint8Array => {
  const out = b.slice();
  out[i] = v;
  return out;
};

function header(overrides: Partial<SegmentHeader> = {}): SegmentHeader {
  return {
    kind: EntryKind.SEGMENT_HEADER,
    suite: 1,
    origin: 'gate.example.com/sealgate',
    segmentId: fill(16, 0xa0),
    prevSegmentId: fill(16, 0xc0),
    sessionId: fill(16, 0xb0),
    createdUs: 1764000000000000n,
    provenance: {
      fips: true,
      backend: 'openssl',
      library: 'OpenSSL 3.0.19',
      fipsProvider: 'OpenSSL FIPS Provider',
    },
    recipients: [
      { keyId: fill(32, 1), wrappedDek: fill(384, 7) },
      { keyId: fill(32, 2), wrappedDek: fill(256, 9) },
    ],
    commitment: fill(32, 0xe0),
    ...overrides,
  };
}

function record(overrides: Partial<SealedRecord> = {}): SealedRecord {
  return {
    kind: EntryKind.SEALED_RECORD,
    segmentId: fill(16, 0xa0),
    seq: 41n,
    type: RecordType.DATA_OUT,
    flags: 0,
    final: false,
    timeUs: 1764000000000001n,
    sealed: fill(40, 0x33),
    ...overrides,
  };
}

function system(overrides: Partial<SystemEntry> = {}): SystemEntry {
  return {
    kind: EntryKind.SYSTEM,
    type: SystemType.HEARTBEAT,
    timeUs: 1764000000000002n,
    body: { run_id: 'r1', n: 3 },
    ...overrides,
  };
}

/** A segment header assembled by hand, so the tests can make ones the encoder refuses to. */
function rawHeader(o: {
  suite?: number;
  origin?: Uint8Array;
  provenance?: Uint8Array;
  recipients?: { keyId: Uint8Array; wrappedDek: Uint8Array }[];
  count?: number;
}): Uint8Array {
  const origin = o.origin ?? utf8('test.sealgate/log');
  const provenance = o.provenance ?? utf8('{"fips":false,"backend":"openssl"}');
  const recipients = o.recipients ?? [{ keyId: fill(32, 1), wrappedDek: fill(4, 0xde) }];
  return cat(
    [0x01, o.suite ?? 1],
    u16(origin.length),
    origin,
    fill(48, 0xa0),
    fill(8, 0),
    u16(provenance.length),
    provenance,
    [o.count ?? recipients.length],
    ...recipients.flatMap((r) => [r.keyId, u16(r.wrappedDek.length), r.wrappedDek]),
    fill(32, 0xe0),
  );
}

describe('bytes: big-endian writer and reader', () => {
  it('writes and reads u8, u16, u32, u64 and length-prefixed fields', () => {
    const bytes = new ByteWriter(1 + 2 + 4 + 8 + 2 + 3 + 4 + 1)
      .u8(0xfe, 'a')
      .u16(0xbeef, 'b')
      .u32(0xdeadbeef, 'c')
      .u64(0x0102030405060708n, 'd')
      .prefixed16(new Uint8Array([1, 2, 3]), 'e')
      .prefixed32(new Uint8Array([9]), 'f')
      .end();
    assert.equal(
      Buffer.from(bytes).toString('hex'),
      'febeefdeadbeef0102030405060708' + '0003010203' + '0000000109',
    );
    const r = new ByteReader(bytes, 'test');
    assert.deepEqual(
      [r.u8('a'), r.u16('b'), r.u32('c'), r.u64('d'), [...r.prefixed16('e')], [...r.prefixed32('f')]],
      [0xfe, 0xbeef, 0xdeadbeef, 0x0102030405060708n, [1, 2, 3], [9]],
    );
    r.end();
  });

  it('the writer refuses out-of-range values and a buffer not filled exactly', () => {
    assert.throws(() => new ByteWriter(1).u8(256, 'x'), sealError('INVALID_ARGUMENT', /x 256 is not a u8/));
    assert.throws(() => new ByteWriter(2).u16(-1, 'x'), sealError('INVALID_ARGUMENT'));
    assert.throws(() => new ByteWriter(8).u64(1n << 64n, 'x'), sealError('INVALID_ARGUMENT'));
    assert.throws(() => new ByteWriter(1).u16(1, 'x'), sealError('INVALID_ARGUMENT', /does not fit/));
    assert.throws(() => new ByteWriter(2).u8(1, 'x').end(), sealError('INVALID_ARGUMENT'));
    assert.throws(
      () => new ByteWriter(3).fixed(new Uint8Array(2), 3, 'id'),
      sealError('INVALID_ARGUMENT', /id has 2/),
    );
  });

  it('the reader names the structure and field that runs past the end, and refuses trailing bytes', () => {
    const r = new ByteReader(new Uint8Array([0, 5, 1]), 'segment header');
    assert.throws(
      () => r.prefixed16('recipients[2].wrapped_dek'),
      sealError('MALFORMED_ENTRY', /^segment header: recipients\[2\]\.wrapped_dek runs past the end/),
    );
    const t = new ByteReader(new Uint8Array([1, 2]), 'x');
    t.u8('a');
    assert.throws(() => t.end(), sealError('MALFORMED_ENTRY', /1 trailing bytes/));
  });
});

describe('types', () => {
  it('names record and system types as the spec does', () => {
    assert.equal(recordTypeName(0x07), 'EXEC');
    assert.equal(recordTypeName(0x22), 'DATA_ERR');
    assert.equal(recordTypeName(0x14), 'unknown record type 0x14');
    assert.equal(systemTypeName(0x06), 'CRASH_RECOVERY');
    assert.equal(Object.keys(RecordType).length, 22);
    assert.deepEqual(Object.values(RecordType).filter(isDataRecordType), [0x20, 0x21, 0x22]);
    assert.equal(FLAG_FINAL, 1);
  });
});

describe('entries round trip (FORMAT.md §3)', () => {
  it('segment header', () => {
    const h = header();
    const bytes = encodeSegmentHeader(h);
    assert.deepEqual(decodeSegmentHeader(bytes), h);
    assert.deepEqual(decodeEntry(bytes), h);
    assert.deepEqual(encodeEntry(h), bytes);
    const one = header({
      recipients: [{ keyId: fill(32, 3), wrappedDek: new Uint8Array(0) }],
      origin: 'é/ü',
    });
    assert.deepEqual(decodeSegmentHeader(encodeSegmentHeader(one)), one);
    const sixteen = header({
      recipients: Array.from({ length: 16 }, (_, i) => ({ keyId: fill(32, i), wrappedDek: fill(i, i) })),
    });
    assert.deepEqual(decodeSegmentHeader(encodeSegmentHeader(sixteen)), sixteen);
  });

  it('decoded header fields are copies; decoded record fields are views', () => {
    const bytes = encodeSegmentHeader(header());
    const h = decodeSegmentHeader(bytes);
    bytes.fill(0);
    assert.deepEqual(h.segmentId, fill(16, 0xa0));
    const rb = encodeSealedRecord(record());
    const r = decodeSealedRecord(rb);
    assert.equal(r.sealed.buffer, rb.buffer);
  });

  it('sealed record, FINAL and not, every record type', () => {
    for (const type of Object.values(RecordType)) {
      for (const final of [false, true]) {
        const r = record({ type, final, flags: final ? FLAG_FINAL : 0 });
        const bytes = encodeSealedRecord(r);
        assert.equal(bytes.length, 39 + 40);
        assert.deepEqual(decodeSealedRecord(bytes), r);
        assert.deepEqual(decodeEntry(bytes), r);
        assert.deepEqual(encodeEntry(r), bytes);
      }
    }
    const edge = record({
      seq: BigInt(MAX_RECORDS - 1),
      timeUs: (1n << 64n) - 1n,
      sealed: new Uint8Array(16),
    });
    assert.deepEqual(decodeSealedRecord(encodeSealedRecord(edge)), edge);
  });

  it('system entry, every system type', () => {
    for (const type of Object.values(SystemType)) {
      const e = system({ type, body: { run_id: 'r', nested: { list: [1, 'two', null] }, text: 'ünïcode' } });
      const bytes = encodeSystemEntry(e);
      assert.deepEqual(decodeSystemEntry(bytes), e);
      assert.deepEqual(decodeEntry(bytes), e);
      assert.deepEqual(encodeEntry(e), bytes);
    }
  });

  it('record AAD (32 + 39 bytes) and IV (u32 0 || u64 seq)', () => {
    const bytes = encodeSealedRecord(record());
    const aad = recordAad(fill(32, 0x50), bytes);
    assert.equal(aad.length, 71);
    assert.deepEqual(aad.subarray(0, 32), fill(32, 0x50));
    assert.deepEqual(aad.subarray(32), bytes.subarray(0, 39));
    assert.equal(Buffer.from(recordIv(0x0102n)).toString('hex'), '000000000000000000000102');
    assert.equal(Buffer.from(recordIv((1n << 64n) - 1n)).toString('hex'), '00000000ffffffffffffffff');
    assert.throws(() => recordAad(fill(31, 0), bytes), sealError('INVALID_ARGUMENT'));
    assert.throws(() => recordAad(fill(32, 0), bytes.subarray(0, 38)), sealError('INVALID_ARGUMENT'));
  });
});

describe('decoders reject (FORMAT.md §3)', () => {
  const samples: [string, Uint8Array][] = [
    ['segment header', encodeSegmentHeader(header())],
    ['sealed record', encodeSealedRecord(record())],
    ['system entry', encodeSystemEntry(system())],
  ];

  for (const [name, bytes] of samples) {
    it(`${name}: every truncation (${bytes.length} prefixes)`, () => {
      const decode = { 1: decodeSegmentHeader, 2: decodeSealedRecord, 3: decodeSystemEntry }[bytes[0]];
      assert.ok(decode);
      for (let len = 0; len < bytes.length; len++) {
        const cut = bytes.subarray(0, len);
        assert.throws(() => decodeEntry(cut), sealError('MALFORMED_ENTRY'), `decodeEntry, ${len} bytes`);
        assert.throws(() => decode(cut), sealError('MALFORMED_ENTRY', /runs past the end/), `${len} bytes`);
      }
    });

    it(`${name}: trailing bytes`, () => {
      for (const extra of [[0], [1, 2, 3]]) {
        assert.throws(() => decodeEntry(cat(bytes, extra)), sealError('MALFORMED_ENTRY', /trailing bytes/));
      }
    });
  }

  it('truncation messages name the field', () => {
    const bytes = encodeSegmentHeader(header());
    const at = bytes.length - 32 - 256 - 1; // inside recipients[1].wrapped_dek_len
    assert.throws(
      () => decodeSegmentHeader(bytes.subarray(0, at)),
      sealError('MALFORMED_ENTRY', /^segment header: recipients\[1\]\.wrapped_dek_len runs past the end/),
    );
  });

  it('an empty entry and unknown kinds', () => {
    assert.throws(() => decodeEntry(new Uint8Array(0)), sealError('MALFORMED_ENTRY', /empty/));
    for (const kind of [0x00, 0x04, 0x80, 0xff]) {
      const bytes = withByte(encodeSegmentHeader(header()), 0, kind);
      assert.throws(() => decodeEntry(bytes), sealError('MALFORMED_ENTRY', /unknown kind/));
    }
    // A decoder for one kind refuses another.
    assert.throws(
      () => decodeSealedRecord(encodeSystemEntry(system())),
      sealError('MALFORMED_ENTRY', /not 0x02/),
    );
  });

  it('segment header: a suite other than 1', () => {
    for (const suite of [0, 2, 255]) {
      const bytes = withByte(encodeSegmentHeader(header()), 1, suite);
      assert.throws(() => decodeEntry(bytes), sealError('MALFORMED_ENTRY', new RegExp(`suite ${suite}`)));
    }
    assert.throws(
      () => encodeSegmentHeader({ ...header(), suite: 2 as 1 }),
      sealError('INVALID_ARGUMENT', /suite 2/),
    );
  });

  it('segment header: recipient_count 0 and 17; duplicate key ids', () => {
    assert.doesNotThrow(() => decodeSegmentHeader(rawHeader({})));
    assert.throws(
      () => decodeSegmentHeader(rawHeader({ recipients: [] })),
      sealError('MALFORMED_ENTRY', /recipient_count 0/),
    );
    const seventeen = Array.from({ length: 17 }, (_, i) => ({ keyId: fill(32, i), wrappedDek: fill(4, i) }));
    assert.throws(
      () => decodeSegmentHeader(rawHeader({ recipients: seventeen })),
      sealError('MALFORMED_ENTRY', /recipient_count 17/),
    );
    const twice = [0, 1].map(() => ({ keyId: fill(32, 5), wrappedDek: fill(4, 0) }));
    assert.throws(
      () => decodeSegmentHeader(rawHeader({ recipients: twice })),
      sealError('MALFORMED_ENTRY', /recipients\[1\] repeats the key id of recipients\[0\]/),
    );
    for (const recipients of [[], seventeen, twice]) {
      assert.throws(() => encodeSegmentHeader(header({ recipients })), sealError('INVALID_ARGUMENT'));
    }
  });

  it('segment header: invalid provenance', () => {
    const bad: [string, Uint8Array][] = [
      ['not JSON', utf8('{fips:false}')],
      ['empty', new Uint8Array(0)],
      ['an array', utf8('[{"fips":false,"backend":"openssl"}]')],
      ['null', utf8('null')],
      ['a string', utf8('"fips"')],
      ['no fips', utf8('{"backend":"openssl"}')],
      ['fips as a string', utf8('{"fips":"false","backend":"openssl"}')],
      ['no backend', utf8('{"fips":true}')],
      ['backend as a number', utf8('{"fips":true,"backend":1}')],
      ['invalid UTF-8', cat(utf8('{"fips":true,"backend":"'), [0xff], utf8('"}'))],
      ['a byte order mark', cat([0xef, 0xbb, 0xbf], utf8('{"fips":true,"backend":"openssl"}'))],
    ];
    for (const [what, provenance] of bad) {
      assert.throws(
        () => decodeSegmentHeader(rawHeader({ provenance })),
        sealError('MALFORMED_ENTRY', /provenance/),
        what,
      );
    }
    for (const provenance of [{ backend: 'openssl' }, { fips: 1, backend: 'openssl' }, { fips: true }]) {
      assert.throws(
        () => encodeSegmentHeader(header({ provenance })),
        sealError('INVALID_ARGUMENT', /provenance/),
      );
    }
  });

  it('segment header: origin of 0 or 256 bytes, invalid UTF-8, spaces, "+", control characters', () => {
    const bad: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['256 bytes', utf8('o'.repeat(256))],
      ['invalid UTF-8', cat(utf8('gate/'), [0xc3])],
      ['a space', utf8('gate example')],
      ['a no-break space', utf8('gate\u00a0example')],
      ['a plus', utf8('gate+example')],
      ['a newline', utf8('gate\nexample')],
      ['a NUL', utf8('gate\u0000')],
    ];
    for (const [what, origin] of bad) {
      assert.throws(
        () => decodeSegmentHeader(rawHeader({ origin })),
        sealError('MALFORMED_ENTRY', /origin/),
        what,
      );
    }
    for (const origin of ['', 'o'.repeat(256), 'a b', 'a+b', 'a\nb', '\ud800']) {
      assert.throws(
        () => encodeSegmentHeader(header({ origin })),
        sealError('INVALID_ARGUMENT', /origin/),
        origin,
      );
    }
    assert.equal(decodeSegmentHeader(rawHeader({ origin: utf8('o'.repeat(255)) })).origin.length, 255);
  });

  it('segment header: ids and commitment of the wrong length are refused by the encoder', () => {
    for (const bad of [
      { segmentId: fill(15, 0) },
      { prevSegmentId: fill(17, 0) },
      { sessionId: new Uint8Array(0) },
      { commitment: fill(31, 0) },
      { recipients: [{ keyId: fill(31, 0), wrappedDek: fill(4, 0) }] },
      { recipients: [{ keyId: fill(32, 0), wrappedDek: fill(65536, 0) }] },
      { createdUs: -1n },
    ]) {
      assert.throws(
        () => encodeSegmentHeader(header(bad)),
        sealError('INVALID_ARGUMENT'),
        Object.keys(bad)[0],
      );
    }
  });

  it('sealed record: reserved flag bits, unknown type, sealed_len below 16, seq beyond 2^20', () => {
    const bytes = encodeSealedRecord(record());
    for (let bit = 1; bit < 8; bit++) {
      for (const flags of [1 << bit, (1 << bit) | FLAG_FINAL]) {
        assert.throws(
          () => decodeEntry(withByte(bytes, 26, flags)),
          sealError('MALFORMED_ENTRY', /reserved bits/),
        );
      }
      assert.throws(
        () => encodeSealedRecord(record({ flags: 1 << bit })),
        sealError('INVALID_ARGUMENT', /reserved bits/),
      );
    }
    for (const type of [0x00, 0x14, 0x1f, 0x23, 0xff]) {
      assert.throws(
        () => decodeEntry(withByte(bytes, 25, type)),
        sealError('MALFORMED_ENTRY', /unknown record type/),
      );
      assert.throws(
        () => encodeSealedRecord(record({ type: type as RecordTypeT })),
        sealError('INVALID_ARGUMENT'),
      );
    }
    const short = encodeSealedRecord(record({ sealed: new Uint8Array(16) }));
    for (const len of [0, 15]) {
      const cut = cat(short.subarray(0, 35), [0, 0, 0, len], short.subarray(39, 39 + len));
      assert.throws(() => decodeEntry(cut), sealError('MALFORMED_ENTRY', /sealed_len/));
    }
    assert.throws(
      () => encodeSealedRecord(record({ sealed: new Uint8Array(15) })),
      sealError('INVALID_ARGUMENT'),
    );
    const far = withByte(bytes, 22, 0x10); // seq = 41 + 2^20
    assert.throws(() => decodeEntry(far), sealError('MALFORMED_ENTRY', /beyond the 2\^20/));
    assert.throws(() => encodeSealedRecord(record({ seq: 1n << 20n })), sealError('INVALID_ARGUMENT'));
    assert.throws(
      () => encodeSealedRecord(record({ final: true })),
      sealError('INVALID_ARGUMENT', /disagrees with flags/),
    );
  });

  it('system entry: unknown type, body not a JSON object', () => {
    const bytes = encodeSystemEntry(system());
    for (const type of [0x00, 0x08, 0xff]) {
      assert.throws(
        () => decodeEntry(withByte(bytes, 1, type)),
        sealError('MALFORMED_ENTRY', /unknown system type/),
      );
      assert.throws(
        () => encodeSystemEntry(system({ type: type as SystemTypeT })),
        sealError('INVALID_ARGUMENT'),
      );
    }
    for (const body of ['[]', '1', '', '{"a":', '"x"']) {
      const b = utf8(body);
      const raw = cat(bytes.subarray(0, 10), [0, 0, 0, b.length], b);
      assert.throws(() => decodeEntry(raw), sealError('MALFORMED_ENTRY', /body/), body);
    }
    assert.throws(
      () => encodeSystemEntry(system({ body: [] as unknown as Record<string, unknown> })),
      sealError('INVALID_ARGUMENT'),
    );
    assert.throws(
      () => encodeSystemEntry(system({ body: { n: 1n } })),
      sealError('INVALID_ARGUMENT', /JSON/),
    );
  });
});

describe('payloads (FORMAT.md §3.2.1)', () => {
  it('data records: u32 channel || bytes', () => {
    for (const type of [RecordType.DATA_IN, RecordType.DATA_OUT, RecordType.DATA_ERR]) {
      const bytes = encodePayload(type, { channel: 0x01020304, data: new Uint8Array([0xaa, 0xbb]) });
      assert.equal(Buffer.from(bytes).toString('hex'), '01020304aabb');
      assert.deepEqual(decodePayload(type, bytes), {
        channel: 0x01020304,
        data: new Uint8Array([0xaa, 0xbb]),
      });
      assert.deepEqual(decodePayload(type, new Uint8Array(4)), { channel: 0, data: new Uint8Array(0) });
      assert.throws(() => decodePayload(type, new Uint8Array(3)), sealError('MALFORMED_PAYLOAD'));
      assert.throws(
        () => encodePayload(type, { channel: -1, data: new Uint8Array(0) }),
        sealError('INVALID_ARGUMENT', /channel/),
      );
    }
  });

  it('JSON records: an object, unknown fields kept for the caller to ignore', () => {
    const value = { channel: 0, command: 'id', extra: [1] };
    const bytes = encodePayload(RecordType.EXEC, value);
    assert.equal(new TextDecoder().decode(bytes), '{"channel":0,"command":"id","extra":[1]}');
    assert.deepEqual(decodePayload(RecordType.EXEC, bytes), value);
    for (const text of ['[1]', 'null', '{', '']) {
      assert.throws(
        () => decodePayload(RecordType.SESSION_START, utf8(text)),
        sealError('MALFORMED_PAYLOAD'),
      );
    }
    assert.throws(
      () => decodePayload(RecordType.ALERT, new Uint8Array([0x7b, 0xff, 0x7d])),
      sealError('MALFORMED_PAYLOAD', /UTF-8/),
    );
    assert.throws(
      () => encodePayload(RecordType.EXEC, [] as unknown as Record<string, unknown>),
      sealError('INVALID_ARGUMENT'),
    );
    assert.throws(() => decodePayload(0x42 as RecordTypeT, bytes), sealError('MALFORMED_PAYLOAD'));
  });
});

describe('SegmentSealer and SegmentOpener, normal Node', () => registerSealerTests('normal'));

describe('SegmentSealer limits (normal Node only)', () => {
  const p = new OpenSslProvider();
  const info = p.info();
  const opts = (recipients: Parameters<typeof SegmentSealer.create>[1]['recipients']) => ({
    origin: 'test.sealgate/log',
    sessionId: new Uint8Array(16),
    provenance: { fips: info.fipsMode, backend: info.backend },
    recipients,
    createdUs: 1n,
  });

  it('RSA-3072 recipients earn no warning', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 3072 });
    assert.deepEqual(SegmentSealer.create(p, opts([key.publicKey])).warnings, []);
  });

  it('2^20 records: the last must be FINAL (SEGMENT_FULL otherwise); nothing after it', async () => {
    const key = await p.generateKey({ type: 'rsa', bits: 2048 });
    const s = SegmentSealer.create(p, opts([key.publicKey]));
    const empty = new Uint8Array(0);
    for (let i = 0; i < MAX_RECORDS - 1; i++) s.seal(RecordType.DATA_OUT, empty, { timeUs: 1n });
    assert.equal(s.nextSeq, BigInt(MAX_RECORDS - 1));
    assert.throws(() => s.seal(RecordType.DATA_OUT, empty, { timeUs: 1n }), sealError('SEGMENT_FULL'));
    const last = s.seal(RecordType.SESSION_END, empty, { timeUs: 1n, final: true });
    assert.equal(decodeSealedRecord(last).seq, BigInt(MAX_RECORDS - 1));
    assert.throws(() => s.seal(RecordType.DATA_OUT, empty, { timeUs: 1n }), sealError('SEGMENT_FINALIZED'));
  });
});
