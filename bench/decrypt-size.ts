/**
 * Decrypt output size: the JSON lines `sealgate decrypt` writes, against the plaintext they carry.
 *
 *     npx tsc -p tsconfig.json && node dist/bench/decrypt-size.js [--mib N] [--binary-percent P]
 *
 * Builds a store with SealedLog whose sessions carry real terminal output (`ls -la --color=always`
 * over /usr, so UTF-8 text with ANSI escapes, in chunks of up to 4 KiB like an SSH channel's) and a
 * share of binary data (bytes of /usr/bin executables: an scp-like transfer), N MiB of data-record
 * plaintext in all (default 64, 10 % binary). Then decrypts it (decryptLog, the events as decrypt
 * prints them) and reports: the plaintext bytes of the data records, the store's size, the JSON lines
 * now (one of `text` or `data` per data record) and as they were before (both `data` and `text`, the
 * latter only for valid UTF-8), recomputed from the same events.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSslProvider } from '../src/crypto/index.js';
import { decryptLog, toDecryptedEvent, isDataPayload } from '../src/audit/decrypt.js';
import { openLogSource } from '../src/audit/source.js';
import type { DataPayload } from '../src/seal/format/payload.js';
import { RecordType } from '../src/seal/format/types.js';
import { SealedLog } from '../src/seal/log.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} needs a non-negative number`);
  return n;
}

const MiB = 1024 * 1024;
const mib = arg('--mib', 64);
const binaryShare = arg('--binary-percent', 10) / 100;
const CHUNK = 4096;

function terminalText(): Buffer {
  return execFileSync('ls', ['-la', '--color=always', '-R', '/usr/share'], {
    maxBuffer: 512 * MiB,
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
  });
}

function binaryBytes(limit: number): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  for (const name of readdirSync('/usr/bin').sort()) {
    if (n >= limit) break;
    try {
      const b = readFileSync(join('/usr/bin', name));
      parts.push(b);
      n += b.length;
    } catch {
      // not a readable file
    }
  }
  return Buffer.concat(parts).subarray(0, limit);
}

/** Chunks of up to CHUNK bytes, repeating `source` until `total` bytes. */
function* chunks(source: Buffer, total: number): Generator<Uint8Array> {
  let done = 0;
  let at = 0;
  while (done < total) {
    const n = Math.min(CHUNK, total - done, source.length - at);
    yield source.subarray(at, at + n);
    done += n;
    at = (at + n) % source.length;
  }
}

async function main(): Promise<void> {
  const p = new OpenSslProvider();
  const recipient = await p.generateKey({ type: 'rsa', bits: 3072 });
  const signer = await p.generateKey({ type: 'ec', curve: 'P-384' });
  const dir = join(mkdtempSync(join(tmpdir(), 'sealgate-bench-decrypt-size-')), 'store');
  const total = Math.round(mib * MiB);
  const binTotal = Math.round(total * binaryShare);
  const text = terminalText();
  const bin = binaryBytes(Math.min(binTotal, 64 * MiB) || 1);

  const log = await SealedLog.open({
    provider: p,
    dir,
    origin: 'bench.sealgate/decrypt-size',
    recipients: [recipient.publicKey],
    signingKey: signer,
    create: true,
  });
  const shell = log.openSession();
  shell.event(RecordType.SHELL, { channel: 0 });
  let pending = 0;
  const pace = async (): Promise<void> => {
    if (++pending % 2048 === 0) await new Promise((r) => setImmediate(r));
  };
  for (const c of chunks(text, total - binTotal)) {
    shell.event(RecordType.DATA_OUT, { channel: 0, data: c });
    await pace();
  }
  await shell.end('closed').durable;
  if (binTotal > 0) {
    const scp = log.openSession();
    scp.event(RecordType.EXEC, { channel: 0, command: 'scp -t /tmp' });
    for (const c of chunks(bin, binTotal)) {
      scp.event(RecordType.DATA_IN, { channel: 0, data: c });
      await pace();
    }
    await scp.end('closed').durable;
  }
  await log.close('bench done');

  const storeBytes = readdirSync(dir)
    .map((n) => statSync(join(dir, n)))
    .filter((s) => s.isFile())
    .reduce((a, s) => a + s.size, 0);
  const source = openLogSource(dir);
  let plaintext = 0;
  let now = 0;
  let before = 0;
  let records = 0;
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    for await (const entry of decryptLog(p, source.entries(), recipient).opened()) {
      const line = JSON.stringify(toDecryptedEvent(entry)).length + 1;
      now += Buffer.byteLength(JSON.stringify(toDecryptedEvent(entry))) + 1;
      if (entry.kind === 'record' && isDataPayload(entry)) {
        records++;
        const data = (entry.payload as DataPayload).data;
        plaintext += data.length;
        // Before: `data` (base64) always, and `text` besides when the bytes are valid UTF-8.
        const old = { ...toDecryptedEvent(entry), data: Buffer.from(data).toString('base64') } as Record<
          string,
          unknown
        >;
        try {
          old.text = strict.decode(data);
        } catch {
          delete old.text;
        }
        before += Buffer.byteLength(JSON.stringify(old)) + 1;
      } else {
        before += line;
      }
    }
  } finally {
    source.close();
  }
  const r = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
  const x = (n: number): string => `${(n / plaintext).toFixed(2)}× plaintext`;
  console.log(
    `data records: ${records}, plaintext ${r(plaintext)} (${(binaryShare * 100).toFixed(0)} % binary)`,
  );
  console.log(`store:                   ${r(storeBytes)} (${x(storeBytes)})`);
  console.log(`JSON lines before (data + text): ${r(before)} (${x(before)})`);
  console.log(`JSON lines now (text or data):   ${r(now)} (${x(now)})`);
  rmSync(join(dir, '..'), { recursive: true, force: true });
}

await main();
