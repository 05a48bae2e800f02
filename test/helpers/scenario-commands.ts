/**
 * Prints the commands the reconstructor derives from scenario dumps (scenario-dump.ts), one per line:
 *
 *   node dist/test/helpers/scenario-commands.js /work/scenarios/*.jsonl
 *
 * Each line: derivation, confident (`?` when not, with the note), index, and the text as JSON.
 */
import { basename } from 'node:path';
import { reconstructCommands } from '../../src/audit/commands/reconstruct.js';
import { loadDump } from './scenario-dump.js';

for (const file of process.argv.slice(2)) {
  console.log(`== ${basename(file)}`);
  for (const c of reconstructCommands(loadDump(file))) {
    const flag = c.confident ? ' ' : '?';
    const note = c.note !== undefined ? `  (${c.note})` : '';
    console.log(
      `${c.derivation.padEnd(8)} ${flag} ${String(c.index).padStart(5)} ${JSON.stringify(c.text)}${note}`,
    );
  }
}
