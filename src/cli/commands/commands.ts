/**
 * `sealgate commands SOURCE --key …`: every command of every session (docs/AUDITOR.md §9.2), in log
 * order, with its session, gate user, target, time and derivation (`exec`, `terminal`, `sftp`), as a
 * table or JSON lines (`--json`: one CommandLine per line). Filters as `sessions`, by the command's
 * own time, plus `--grep REGEX` (a JavaScript regular expression on the text; `-i` ignores case).
 *
 *     sealgate commands STORE --key file:auditor.pem --grep 'kubectl delete' --since 7d
 */
import Table from 'cli-table3';
import { jsonLine, printableCell } from '../printable.js';
import type { CryptoProvider } from '../../crypto/index.js';
import type { CommandLine } from '../../audit/index/format.js';
import { commandMatches } from '../../audit/query.js';
import { EXIT } from '../errors.js';
import { filtersOf, PLAIN_TABLE, runQuery, shortTime, type AuditQueryOptions } from './audit-query.js';
import { OutputWriter } from './output.js';
import { describe } from './sessions.js';

export interface CommandsCliOptions extends AuditQueryOptions {
  readonly grep?: string;
  readonly ignoreCase?: boolean;
}

function how(c: CommandLine): string {
  return c.confident ? c.derivation : `${c.derivation}?`;
}

export function commandsTable(lines: readonly CommandLine[]): string {
  const table = new Table({
    head: ['time (UTC)', 'session', 'at', 'gate user', 'target', 'how', 'command'],
    style: PLAIN_TABLE,
    wordWrap: false,
  });
  for (const c of lines) {
    table.push(
      [shortTime(c.time), c.session.slice(0, 12), c.index, c.gate_user, c.target, how(c), c.text].map(
        printableCell,
      ),
    );
  }
  return `${table.toString()}\n`;
}

export async function commandsCommand(
  provider: CryptoProvider,
  sourcePath: string,
  opts: CommandsCliOptions,
): Promise<number> {
  const filters = filtersOf(opts, { pattern: opts.grep, ignoreCase: opts.ignoreCase });
  return runQuery(provider, 'commands', sourcePath, opts, { filters: describe(opts) }, async ({ log }) => {
    const matches: CommandLine[] = [];
    for (const c of log.commands()) if (commandMatches(c, filters)) matches.push(c);
    matches.sort((a, b) => a.index - b.index);
    const out = new OutputWriter();
    if (opts.json) {
      for (const c of matches) {
        if (!out.open) break;
        await out.write(jsonLine(c));
      }
    } else if (matches.length === 0) {
      process.stderr.write('sealgate: no command matches\n');
    } else {
      await out.write(commandsTable(matches));
    }
    await out.close();
    return EXIT.ok;
  });
}
