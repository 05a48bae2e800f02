/**
 * A gate that dies: run as a child process by helpers.ts `crashRun`. It opens the log, records, waits
 * until the entries are durable and a checkpoint is signed, and exits without closing the log, so the
 * store keeps writer.lock (with this dead pid) and a segment with no FINAL record.
 *
 *     node crash-writer.js <store dir> <origin> <signer key PEM> <recipient public key PEM>
 */
import { readFileSync } from 'node:fs';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { RecordType } from '../../src/seal/format/types.js';
import { SealedLog } from '../../src/seal/log.js';

const [dir, origin, signerFile, recipientFile] = process.argv.slice(2);
const p = new OpenSslProvider();
const log = await SealedLog.open({
  provider: p,
  dir: dir ?? '',
  origin: origin ?? '',
  recipients: [p.importPublicKey(readFileSync(recipientFile ?? '', 'utf8'))],
  signingKey: await p.loadPrivateKey(`file:${signerFile}`),
  policy: { maxRecords: 5, checkpointEveryEntries: 16 },
});
const done = log.openSession();
done.event(RecordType.EXEC, { channel: 0, command: 'uptime' });
await done.end('closed').durable;
const open = log.openSession();
open.event(RecordType.SHELL, { channel: 0 });
for (let i = 0; i < 7; i++)
  open.event(RecordType.DATA_IN, { channel: 0, data: new Uint8Array([0x6c, 0x73, 0x0a]) });
await open.event(RecordType.DATA_OUT, { channel: 0, data: new Uint8Array(32) }).durable;
await log.checkpoint();
process.exit(0); // no close(): writer.lock stays, the session's segment stays open
