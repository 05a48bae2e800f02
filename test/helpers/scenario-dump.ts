/**
 * Scenario dumps: a session's opened records (OpenedRecord) as JSON lines, so that the command
 * reconstructor can be worked on against real recorded sessions without re-running sshd and tmux.
 *
 * One line per record, in leaf order: the OpenedRecord's fields, with `timeUs` as a decimal string and,
 * for DATA_IN / DATA_OUT / DATA_ERR, `payload.data` as base64. `loadDump` gives the records back as they
 * were. Written by the interactive harness when `SEALGATE_DUMP_RECORDS=DIR` is set (DIR/NAME.jsonl).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDataPayload, type OpenedRecord } from '../../src/audit/decrypt.js';
import type { DataPayload } from '../../src/seal/format/payload.js';

/** One record as a JSON line. */
export function dumpLine(r: OpenedRecord): string {
  const payload = isDataPayload(r)
    ? {
        channel: (r.payload as DataPayload).channel,
        data: Buffer.from((r.payload as DataPayload).data).toString('base64'),
      }
    : r.payload;
  return JSON.stringify({ ...r, timeUs: r.timeUs.toString(), payload });
}

/** Writes `records` to DIR/NAME.jsonl (NAME made file-safe); returns the path. */
export function writeDump(dir: string, name: string, records: readonly OpenedRecord[]): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.jsonl`);
  writeFileSync(path, records.map((r) => `${dumpLine(r)}\n`).join(''));
  return path;
}

/** Reads a dump back into OpenedRecords. */
export function loadDump(path: string): OpenedRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const o = JSON.parse(line) as Record<string, unknown> & { timeUs: string; type: string };
      const record = { ...o, timeUs: BigInt(o.timeUs) } as unknown as OpenedRecord;
      if (isDataPayload(record)) {
        const p = o.payload as { channel: number; data: string };
        return {
          ...record,
          payload: { channel: p.channel, data: new Uint8Array(Buffer.from(p.data, 'base64')) },
        };
      }
      return record;
    });
}
