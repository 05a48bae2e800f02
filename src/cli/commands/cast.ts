/**
 * `sealgate decrypt <source> --session HEX --format asciicast-v2|asciicast-v3|scriptreplay`: one
 * session's terminal channel as a cast (src/audit/cast/, docs/AUDITOR.md "Formats").
 *
 * - asciicast: to `--out FILE` or stdout. `--input` adds the typed input as `i` events.
 * - scriptreplay: two files, `--out PREFIX` (PREFIX.timing and PREFIX.typescript) or `--timing FILE`
 *   and `--out FILE`. Classic format, or with `--input` the advanced format (input in the same
 *   typescript, resizes as `S` lines), as `script --logging-format advanced -B` writes it.
 */
import { resolve } from 'node:path';
import type { CryptoProvider } from '../../crypto/index.js';
import { AsciicastWriter } from '../../audit/cast/asciicast.js';
import type { TerminalChannel } from '../../audit/cast/channel.js';
import { ScriptWriter, type ScriptChunk } from '../../audit/cast/scriptreplay.js';
import type { TermEvent } from '../../audit/cast/terminal-events.js';
import { EXIT, UsageError } from '../errors.js';
import { OutputClosed, OutputSink, refuseExisting } from './output-sink.js';
import {
  castFailure,
  openTerminalSession,
  sessionId,
  type TerminalSessionOptions,
} from './terminal-session.js';

export const CAST_FORMATS = ['asciicast-v2', 'asciicast-v3', 'scriptreplay'] as const;
export type CastFormat = (typeof CAST_FORMATS)[number];

export interface CastCommandOptions extends TerminalSessionOptions {
  readonly format: CastFormat;
  readonly session?: string;
  readonly out?: string;
  readonly timing?: string;
  readonly force?: boolean;
  readonly input?: boolean;
  /** jsonl options: refused with a cast format. */
  readonly keepGoing?: boolean;
  readonly recordsOnly?: boolean;
}

function scriptPaths(opts: CastCommandOptions): { typescript: string; timing: string } {
  if (opts.out === undefined) {
    throw new UsageError(
      '--format scriptreplay writes two files: give --out PREFIX (PREFIX.timing, PREFIX.typescript) or --timing FILE --out FILE',
    );
  }
  if (opts.timing !== undefined) return { typescript: opts.out, timing: opts.timing };
  return { typescript: `${opts.out}.typescript`, timing: `${opts.out}.timing` };
}

export async function castCommand(
  provider: CryptoProvider,
  sourcePath: string,
  opts: CastCommandOptions,
): Promise<number> {
  if (opts.session === undefined) throw new UsageError(`--format ${opts.format} needs --session HEX`);
  const session = sessionId(opts.session, '--session');
  if (opts.keepGoing || opts.recordsOnly) {
    throw new UsageError(`--keep-going and --records-only are for --format jsonl, not ${opts.format}`);
  }
  if (opts.timing !== undefined && opts.format !== 'scriptreplay') {
    throw new UsageError('--timing is for --format scriptreplay only');
  }
  const paths = opts.format === 'scriptreplay' ? scriptPaths(opts) : undefined;
  const output = paths ? paths.typescript : opts.out;
  refuseExisting(paths ? [paths.typescript, paths.timing] : [opts.out], Boolean(opts.force));
  let terminal;
  try {
    terminal = await openTerminalSession(provider, sourcePath, session, opts, {
      action: 'decrypt',
      ...(typeof output === 'string' ? { output } : {}),
      details: {
        format: opts.format,
        input: Boolean(opts.input),
        ...(paths ? { typescript: resolve(paths.typescript), timing: resolve(paths.timing) } : {}),
      },
    });
  } catch (err) {
    return castFailure(err);
  }
  if (typeof terminal === 'number') return terminal;
  try {
    return paths
      ? await writeScript(terminal.channel, terminal.events(), paths, opts)
      : await writeAsciicast(terminal.channel, terminal.events(), opts);
  } catch (err) {
    return castFailure(err);
  } finally {
    terminal.close();
  }
}

async function writeAsciicast(
  channel: TerminalChannel,
  events: AsyncGenerator<TermEvent>,
  opts: CastCommandOptions,
): Promise<number> {
  const writer = new AsciicastWriter(channel, {
    version: opts.format === 'asciicast-v3' ? 3 : 2,
    input: Boolean(opts.input),
  });
  const sink = new OutputSink(opts.out, Boolean(opts.force));
  try {
    await sink.line(writer.header());
    for await (const e of events) for (const line of writer.event(e)) await sink.line(line);
    for (const line of writer.end()) await sink.line(line);
  } catch (err) {
    if (!(err instanceof OutputClosed)) {
      await sink.close();
      throw err;
    }
  }
  await sink.close();
  return EXIT.ok;
}

async function writeScript(
  channel: TerminalChannel,
  events: AsyncGenerator<TermEvent>,
  paths: { typescript: string; timing: string },
  opts: CastCommandOptions,
): Promise<number> {
  const writer = new ScriptWriter(channel, opts.input ? 'advanced' : 'classic');
  const typescript = new OutputSink(paths.typescript, Boolean(opts.force));
  const timing = new OutputSink(paths.timing, Boolean(opts.force));
  const put = async (chunk: ScriptChunk): Promise<void> => {
    for (const part of chunk.typescript) await typescript.write(part);
    for (const line of chunk.timing) await timing.line(line);
  };
  try {
    await put(writer.header());
    for await (const e of events) await put(writer.event(e));
    await put(writer.end());
  } finally {
    await typescript.close();
    await timing.close();
  }
  return EXIT.ok;
}
