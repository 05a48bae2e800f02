/**
 * PLACEHOLDER until the lead's reconstructor lands on main (git merge main replaces this file): the
 * interface only, deriving `exec` commands. Not for review.
 */
import type { OpenedRecord } from '../decrypt.js';
import type { Command } from './types.js';

export class CommandReconstructor {
  push(r: OpenedRecord): Command[] {
    if (r.type !== 'EXEC') return [];
    const p = r.payload as { channel?: unknown; command?: unknown };
    return [
      {
        session: r.session,
        channel: typeof p.channel === 'number' ? p.channel : 0,
        index: r.index,
        timeUs: r.timeUs,
        derivation: 'exec',
        text: typeof p.command === 'string' ? p.command : '',
        confident: true,
      },
    ];
  }

  finish(): Command[] {
    return [];
  }
}

export function reconstructCommands(records: Iterable<OpenedRecord>): Command[] {
  const r = new CommandReconstructor();
  const out: Command[] = [];
  for (const rec of records) out.push(...r.push(rec));
  out.push(...r.finish());
  return out;
}
