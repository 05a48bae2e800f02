/**
 * The SFTP parser alone (src/ssh/sftp), bytes in, SFTP_OP payloads out (docs/FORMAT.md §3.2.2):
 * framing across every split point, each request type, replies matched by id, per-handle totals,
 * paths that are not UTF-8, and malformed or oversized streams, which stop the parser with one
 * `parser-stopped` payload and never throw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { openFlagNames } from '../../src/ssh/sftp/fields.js';
import { SftpObserver, type SftpOpPayload } from '../../src/ssh/sftp/observer.js';
import { PacketReader, type SftpPacket } from '../../src/ssh/sftp/packet-reader.js';
import { MAX_PACKET_LENGTH, MAX_PENDING, PacketType as T } from '../../src/ssh/sftp/protocol.js';

const provider = new OpenSslProvider();

// --- Packet builders (draft-ietf-secsh-filexfer-02 §3) ---------------------------------------------

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Uint8Array) => {
  const body = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s);
  return Buffer.concat([u32(body.length), body]);
};
const packet = (type: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length + 1), Buffer.from([type]), body]);
};
const NO_ATTRS = u32(0);
const HANDLE = Buffer.from([0, 0, 0, 7]);

const init = () => packet(T.INIT, u32(3));
const version = (v = 3) => packet(T.VERSION, u32(v), str('posix-rename@openssh.com'), str('1'));
const status = (id: number, code: number, message = '') =>
  packet(T.STATUS, u32(id), u32(code), str(message), str(''));
const handleReply = (id: number, h = HANDLE) => packet(T.HANDLE, u32(id), str(h));
const open = (id: number, path: string | Uint8Array, pflags: number) =>
  packet(T.OPEN, u32(id), str(path), u32(pflags), NO_ATTRS);
const write = (id: number, data: Uint8Array, h = HANDLE) =>
  packet(T.WRITE, u32(id), str(h), u64(0), str(data));
const read = (id: number, h = HANDLE) => packet(T.READ, u32(id), str(h), u64(0), u32(32768));
const data = (id: number, n: number) => packet(T.DATA, u32(id), str(Buffer.alloc(n, 0x61)));
const close = (id: number, h = HANDLE) => packet(T.CLOSE, u32(id), str(h));

/** An observer past INIT / VERSION (their payloads dropped). */
function started(): SftpObserver {
  const o = new SftpObserver();
  o.fromClient(init());
  o.fromTarget(version());
  return o;
}

/** Feeds a conversation, `in` and `out` in order; every payload. */
function converse(o: SftpObserver, steps: readonly (readonly ['in' | 'out', Buffer])[]): SftpOpPayload[] {
  return steps.flatMap(([dir, bytes]) => (dir === 'in' ? o.fromClient(bytes) : o.fromTarget(bytes)));
}

// ---------------------------------------------------------------------------------------------------

describe('PacketReader: framing', () => {
  const stream = Buffer.concat([init(), open(1, '/a', 0x1a), write(2, Buffer.alloc(1000, 7)), close(3)]);
  const whole = (): SftpPacket[] => {
    const out: SftpPacket[] = [];
    new PacketReader().push(stream, (p) => out.push(p));
    return out;
  };

  it('a stream cut at every point gives the same packets as the whole stream', () => {
    const expected = whole();
    assert.deepEqual(
      expected.map((p) => p.type),
      [T.INIT, T.OPEN, T.WRITE, T.CLOSE],
    );
    for (let cut = 0; cut <= stream.length; cut++) {
      const out: SftpPacket[] = [];
      const reader = new PacketReader();
      reader.push(stream.subarray(0, cut), (p) => out.push(p));
      reader.push(stream.subarray(cut), (p) => out.push(p));
      assert.deepEqual(out, expected, `cut at ${cut}`);
    }
  });

  it('one byte at a time, and cut in three at many points', () => {
    const expected = whole();
    const out: SftpPacket[] = [];
    const reader = new PacketReader();
    for (const byte of stream) reader.push(Uint8Array.of(byte), (p) => out.push(p));
    assert.deepEqual(out, expected);
    for (let a = 0; a < stream.length; a += 7) {
      for (let b = a; b <= stream.length; b += 13) {
        const got: SftpPacket[] = [];
        const r = new PacketReader();
        for (const part of [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]) {
          r.push(part, (p) => got.push(p));
        }
        assert.deepEqual(got, expected, `cuts at ${a}, ${b}`);
      }
    }
  });

  it('keeps only the prefix that keepBody asks for, and counts the rest', () => {
    const out: SftpPacket[] = [];
    new PacketReader((type) => (type === T.WRITE ? 10 : undefined)).push(stream, (p) => out.push(p));
    const w = out[2] as SftpPacket;
    assert.equal(w.type, T.WRITE);
    assert.equal(w.body.length, 10);
    assert.equal(w.length, 1 + 4 + 8 + 8 + 4 + 1000);
    assert.equal(out[3]?.type, T.CLOSE, 'the packet after the skipped data is read');
  });

  it('refuses a zero length and a length over the limit, with a typed error', () => {
    for (const length of [0, MAX_PACKET_LENGTH + 1, 0xffffffff]) {
      assert.throws(
        () => new PacketReader().push(Buffer.concat([u32(length), Buffer.from([T.OPEN])]), () => undefined),
        (e: Error & { code?: string }) => e.name === 'SftpStreamError' && e.code === 'PACKET_TOO_LONG',
      );
    }
  });
});

describe('SftpObserver: requests', () => {
  /** The request payload of one packet, after INIT / VERSION. */
  const request = (bytes: Buffer): SftpOpPayload[] => started().fromClient(bytes);
  const utf = (s: string) => Buffer.from(s);

  it('INIT and VERSION', () => {
    const o = new SftpObserver();
    assert.deepEqual(o.fromClient(init()), [{ op: 'init', version: 3 }]);
    assert.deepEqual(o.fromTarget(version()), [
      { op: 'init', result: 'ok', version: 3, extensions: ['posix-rename@openssh.com'] },
    ]);
  });

  it('each request type, by its protocol name, with its paths', () => {
    const cases: [Buffer, SftpOpPayload][] = [
      [
        open(1, '/up/file', 0x1a),
        { op: 'open', id: 1, path: '/up/file', flags: ['write', 'creat', 'trunc'] },
      ],
      [
        packet(T.OPEN, u32(2), str('/f'), u32(1), u32(4), u32(0o644)),
        { op: 'open', id: 2, path: '/f', flags: ['read'], attrs: { permissions: '644' } },
      ],
      [packet(T.LSTAT, u32(3), str('/l')), { op: 'lstat', id: 3, path: '/l' }],
      [packet(T.STAT, u32(4), str('/s')), { op: 'stat', id: 4, path: '/s' }],
      [packet(T.OPENDIR, u32(5), str('/d')), { op: 'opendir', id: 5, path: '/d' }],
      [packet(T.REMOVE, u32(6), str('/r')), { op: 'remove', id: 6, path: '/r' }],
      [packet(T.RMDIR, u32(7), str('/rd')), { op: 'rmdir', id: 7, path: '/rd' }],
      [packet(T.REALPATH, u32(8), str('.')), { op: 'realpath', id: 8, path: '.' }],
      [packet(T.READLINK, u32(9), str('/ln')), { op: 'readlink', id: 9, path: '/ln' }],
      [
        packet(T.MKDIR, u32(10), str('/m'), u32(4), u32(0o755)),
        { op: 'mkdir', id: 10, path: '/m', attrs: { permissions: '755' } },
      ],
      [
        packet(T.SETSTAT, u32(11), str('/x'), u32(0x2 | 0x8), u32(1000), u32(1001), u32(5), u32(6)),
        { op: 'setstat', id: 11, path: '/x', attrs: { uid: 1000, gid: 1001, atime: 5, mtime: 6 } },
      ],
      [
        packet(T.SETSTAT, u32(12), str('/t'), u32(1), u64(2 ** 60)),
        { op: 'setstat', id: 12, path: '/t', attrs: { size: String(2n ** 60n) } },
      ],
      [
        packet(T.RENAME, u32(13), str('/old'), str('/new')),
        { op: 'rename', id: 13, path: '/old', new_path: '/new' },
      ],
      // OpenSSH's order: target first, then the link path.
      [
        packet(T.SYMLINK, u32(14), str('/target'), str('/link')),
        { op: 'symlink', id: 14, path: '/link', target: '/target' },
      ],
      [packet(T.FSTAT, u32(15), str(HANDLE)), { op: 'fstat', id: 15, handle: '00000007' }],
      [
        packet(T.FSETSTAT, u32(16), str(HANDLE), u32(4), u32(0o600)),
        { op: 'fsetstat', id: 16, handle: '00000007', attrs: { permissions: '600' } },
      ],
      [close(17), { op: 'close', id: 17, handle: '00000007' }],
      [
        packet(T.EXTENDED, u32(18), str('posix-rename@openssh.com'), str('/a'), str('/b')),
        { op: 'posix-rename@openssh.com', id: 18, path: '/a', new_path: '/b' },
      ],
      [
        packet(T.EXTENDED, u32(19), str('hardlink@openssh.com'), str('/a'), str('/h')),
        { op: 'hardlink@openssh.com', id: 19, path: '/a', new_path: '/h' },
      ],
      [
        packet(T.EXTENDED, u32(20), str('statvfs@openssh.com'), str('/')),
        { op: 'statvfs@openssh.com', id: 20, path: '/' },
      ],
      [
        packet(T.EXTENDED, u32(21), str('lsetstat@openssh.com'), str('/l'), u32(4), u32(0o700)),
        { op: 'lsetstat@openssh.com', id: 21, path: '/l', attrs: { permissions: '700' } },
      ],
      [
        packet(T.EXTENDED, u32(22), str('fsync@openssh.com'), str(HANDLE)),
        { op: 'fsync@openssh.com', id: 22, handle: '00000007' },
      ],
      [
        packet(T.EXTENDED, u32(23), str('home-directory'), str('alice')),
        { op: 'home-directory', id: 23, user: 'alice' },
      ],
      [
        packet(T.EXTENDED, u32(24), str('vendor-thing@example.com'), str('??')),
        { op: 'vendor-thing@example.com', id: 24 },
      ],
      [packet(99, u32(25), str('??')), { op: 'unknown-99', id: 25 }],
    ];
    for (const [bytes, expected] of cases) assert.deepEqual(request(bytes), [expected], expected.op);
  });

  it('READ, WRITE and READDIR are not recorded one by one', () => {
    const o = started();
    assert.deepEqual(o.fromClient(write(1, utf('x'))), []);
    assert.deepEqual(o.fromClient(read(2)), []);
    assert.deepEqual(o.fromClient(packet(T.READDIR, u32(3), str(HANDLE))), []);
    assert.equal(o.stopped, false);
  });

  it('open flags by name, in bit order; unknown bits in hex', () => {
    assert.deepEqual(openFlagNames(0x3f), ['read', 'write', 'append', 'creat', 'trunc', 'excl']);
    assert.deepEqual(openFlagNames(0x40 | 0x80000000 | 0x04), ['append', '0x00000040', '0x80000000']);
    assert.deepEqual(openFlagNames(0), []);
  });

  it('a path that is not UTF-8: a lossy `path` and the exact bytes in `path_b64`', () => {
    const raw = Buffer.from([0x2f, 0x64, 0xff, 0x61, 0xc3]); // "/d", 0xff, "a", a cut 2-byte sequence
    const [op] = request(packet(T.RENAME, u32(1), str(raw), str('/ok/é')));
    assert.deepEqual(op, {
      op: 'rename',
      id: 1,
      path: '/d\ufffda\ufffd',
      path_b64: raw.toString('base64'),
      new_path: '/ok/é',
    });
    const [ext] = request(packet(T.EXTENDED, u32(2), str(Buffer.from([0x78, 0xfe]))));
    assert.deepEqual(ext, { op: 'x\ufffd', op_b64: Buffer.from([0x78, 0xfe]).toString('base64'), id: 2 });
  });
});

describe('SftpObserver: replies and per-handle totals', () => {
  it('a reply repeats the request and says the outcome; a STATUS error with its message', () => {
    const o = started();
    const out = converse(o, [
      ['in', packet(T.REMOVE, u32(5), str('/gone'))],
      ['out', status(5, 2, 'No such file')],
      ['in', packet(T.MKDIR, u32(6), str('/m'), NO_ATTRS)],
      ['out', status(6, 0, 'Success')],
      ['in', packet(T.REALPATH, u32(7), str('.'))],
      ['out', packet(T.NAME, u32(7), u32(1), str('/home/u'), str('drwx /home/u'), NO_ATTRS)],
      ['in', packet(T.STAT, u32(8), str('/s'))],
      ['out', status(8, 42)],
      ['out', status(1234, 0)], // answers nothing the gate saw: ignored
    ]);
    assert.deepEqual(out, [
      { op: 'remove', id: 5, path: '/gone' },
      { op: 'remove', id: 5, path: '/gone', result: 'no_such_file', message: 'No such file' },
      { op: 'mkdir', id: 6, path: '/m' },
      { op: 'mkdir', id: 6, path: '/m', result: 'ok' },
      { op: 'realpath', id: 7, path: '.' },
      { op: 'realpath', id: 7, path: '.', result: 'ok', resolved: '/home/u' },
      { op: 'stat', id: 8, path: '/s' },
      { op: 'stat', id: 8, path: '/s', result: 'code_42' },
    ]);
  });

  it('an upload: the handle maps to its path, and the CLOSE reply carries the bytes written', () => {
    const o = started();
    const out = converse(o, [
      ['in', open(1, '/up', 0x1a)],
      ['out', handleReply(1)],
      [
        'in',
        Buffer.concat([
          write(2, Buffer.alloc(32768)),
          write(3, Buffer.alloc(32768)),
          write(4, Buffer.alloc(5)),
        ]),
      ],
      ['out', Buffer.concat([status(2, 0), status(3, 4, 'disk full'), status(4, 0)])],
      ['in', packet(T.FSTAT, u32(5), str(HANDLE))],
      ['out', packet(T.ATTRS, u32(5), NO_ATTRS)],
      ['in', close(6)],
      ['out', status(6, 0)],
    ]);
    assert.deepEqual(out, [
      { op: 'open', id: 1, path: '/up', flags: ['write', 'creat', 'trunc'] },
      { op: 'open', id: 1, path: '/up', result: 'ok', handle: '00000007' },
      { op: 'fstat', id: 5, path: '/up', handle: '00000007' },
      { op: 'fstat', id: 5, path: '/up', handle: '00000007', result: 'ok' },
      { op: 'close', id: 6, path: '/up', handle: '00000007' },
      {
        op: 'close',
        id: 6,
        path: '/up',
        handle: '00000007',
        result: 'ok',
        reads: 0,
        read_bytes: 0,
        read_errors: 0,
        writes: 3,
        written_bytes: 32768 * 2 + 5,
        write_errors: 1,
      },
    ]);
  });

  it('a download: bytes of the DATA replies; EOF is not an error', () => {
    const o = started();
    const out = converse(o, [
      ['in', open(1, '/down', 0x01)],
      ['out', handleReply(1)],
      ['in', Buffer.concat([read(2), read(3), read(4), read(5)])],
      ['out', Buffer.concat([data(2, 32768), data(3, 100), status(4, 1), status(5, 3, 'denied')])],
      ['in', close(6)],
      ['out', status(6, 0)],
    ]);
    assert.deepEqual(out.at(-1), {
      op: 'close',
      id: 6,
      path: '/down',
      handle: '00000007',
      result: 'ok',
      reads: 4,
      read_bytes: 32868,
      read_errors: 1,
      writes: 0,
      written_bytes: 0,
      write_errors: 0,
    });
  });

  it('a directory listing: the CLOSE reply counts the entries', () => {
    const o = started();
    const name = (id: number, n: number) =>
      packet(
        T.NAME,
        u32(id),
        u32(n),
        ...Array.from({ length: n }, (_, i) => Buffer.concat([str(`f${i}`), str(`-rw f${i}`), NO_ATTRS])),
      );
    const out = converse(o, [
      ['in', packet(T.OPENDIR, u32(1), str('/dir'))],
      ['out', handleReply(1)],
      ['in', packet(T.READDIR, u32(2), str(HANDLE))],
      ['out', name(2, 3)],
      ['in', packet(T.READDIR, u32(3), str(HANDLE))],
      ['out', name(3, 2)],
      ['in', packet(T.READDIR, u32(4), str(HANDLE))],
      ['out', status(4, 1)],
      ['in', close(5)],
      ['out', status(5, 0)],
    ]);
    assert.deepEqual(out.at(-1), {
      op: 'close',
      id: 5,
      path: '/dir',
      handle: '00000007',
      result: 'ok',
      entries: 5,
    });
  });

  it('a conversation cut at every point of every message gives the same payloads', () => {
    const steps: ['in' | 'out', Buffer][] = [
      ['in', init()],
      ['out', version()],
      ['in', open(1, '/p', 0x1a)],
      ['out', handleReply(1)],
      ['in', Buffer.concat([write(2, Buffer.alloc(300, 1)), close(3)])],
      ['out', Buffer.concat([status(2, 0), status(3, 0)])],
    ];
    const expected = converse(new SftpObserver(), steps);
    assert.equal(expected.at(-1)?.written_bytes, 300);
    for (let s = 0; s < steps.length; s++) {
      const [dir, bytes] = steps[s] as ['in' | 'out', Buffer];
      for (let cut = 0; cut <= bytes.length; cut++) {
        const split = [
          ...steps.slice(0, s),
          [dir, bytes.subarray(0, cut)],
          [dir, bytes.subarray(cut)],
          ...steps.slice(s + 1),
        ] as ['in' | 'out', Buffer][];
        assert.deepEqual(converse(new SftpObserver(), split), expected, `message ${s} cut at ${cut}`);
      }
    }
  });

  it('handles still open when the channel closes get a channel-closed summary', () => {
    const o = started();
    converse(o, [
      ['in', open(1, '/half', 0x1a)],
      ['out', handleReply(1)],
      ['in', write(2, Buffer.alloc(10))],
      ['in', close(3)], // never answered
    ]);
    assert.deepEqual(o.channelClosed(), [
      {
        op: 'close',
        path: '/half',
        handle: '00000007',
        result: 'channel-closed',
        reads: 0,
        read_bytes: 0,
        read_errors: 0,
        writes: 1,
        written_bytes: 10,
        write_errors: 0,
      },
    ]);
    assert.deepEqual(o.channelClosed(), [], 'once');
  });
});

describe('SftpObserver: malformed streams stop the parser, never the session', () => {
  const stopped = (out: SftpOpPayload[], direction: 'in' | 'out', reason: RegExp) => {
    const last = out.at(-1);
    assert.equal(last?.op, 'parser-stopped', JSON.stringify(out));
    assert.equal(last?.direction, direction);
    assert.match(String(last?.reason), reason);
    assert.equal(out.filter((o) => o.op === 'parser-stopped').length, 1);
  };

  it('an oversized packet', () => {
    const o = started();
    stopped(
      o.fromClient(Buffer.concat([u32(MAX_PACKET_LENGTH + 1), Buffer.from([T.WRITE])])),
      'in',
      /length/,
    );
    assert.equal(o.stopped, true);
    // Nothing more is parsed, in either direction, and nothing throws.
    assert.deepEqual(o.fromClient(packet(T.REMOVE, u32(9), str('/x'))), []);
    assert.deepEqual(o.fromTarget(status(9, 0)), []);
    assert.deepEqual(o.channelClosed(), []);
  });

  it('a WRITE of 200 KiB is counted; one of 300 KiB stops the parser', () => {
    const o = started();
    converse(o, [
      ['in', open(1, '/w', 0x1a)],
      ['out', handleReply(1)],
    ]);
    assert.deepEqual(o.fromClient(write(2, Buffer.alloc(200 * 1024))), []);
    stopped(o.fromClient(write(3, Buffer.alloc(300 * 1024))), 'in', /length/);
  });

  it('a truncated field, a lying WRITE length, a bad reply', () => {
    stopped(started().fromClient(packet(T.OPEN, u32(1), str('/a'))), 'in', /pflags runs past the end/);
    const lying = Buffer.concat([
      u32(1 + 4 + 8 + 8 + 4 + 10),
      Buffer.from([T.WRITE]),
      u32(2),
      str(HANDLE),
      u64(0),
      u32(99),
      Buffer.alloc(10),
    ]);
    stopped(started().fromClient(lying), 'in', /WRITE says 99 data bytes/);
    stopped(started().fromTarget(packet(T.HANDLE, u32(1), u32(1000))), 'out', /handle/);
    stopped(started().fromClient(packet(T.CLOSE, u32(1), str(Buffer.alloc(257)))), 'in', /over 256/);
  });

  it('not SFTP, and a version other than 3', () => {
    stopped(new SftpObserver().fromClient(packet(T.REMOVE, u32(1), str('/x'))), 'in', /not INIT/);
    const o = new SftpObserver();
    o.fromClient(init());
    const out = o.fromTarget(version(6));
    assert.deepEqual(out[0], {
      op: 'init',
      result: 'ok',
      version: 6,
      extensions: ['posix-rename@openssh.com'],
    });
    stopped(out, 'out', /version 6/);
  });

  it('too many unanswered requests', () => {
    const o = started();
    const many = Buffer.concat(
      Array.from({ length: MAX_PENDING + 1 }, (_, i) => packet(T.STAT, u32(i), str('/'))),
    );
    const out = o.fromClient(many);
    assert.equal(out.length, MAX_PENDING + 1);
    stopped(out, 'in', /without a reply/);
  });

  it('random bytes never throw and stop the parser at most once', () => {
    for (let i = 0; i < 300; i++) {
      const o = new SftpObserver();
      const chunks = [
        init(),
        ...Array.from({ length: 4 }, () => Buffer.from(provider.randomBytes(1 + (i % 97)))),
      ];
      const out = [
        ...chunks.flatMap((c) => o.fromClient(c)),
        ...o.fromTarget(Buffer.from(provider.randomBytes(64))),
      ];
      assert.ok(out.filter((p) => p.op === 'parser-stopped').length <= 1);
    }
  });
});
