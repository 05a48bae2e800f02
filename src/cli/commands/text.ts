/**
 * `sealgate text <source> <session> --key …`: what the session's terminal showed, as plain text
 * (src/audit/cast/screen-text.ts: rendered through a headless xterm of the recorded size, every window
 * change applied; lines as they scrolled off, then the final screen). An exec channel without a pty has
 * no screen: its output (stdout and stderr, in the order they came) is given as it is, as UTF-8 text.
 */
import { printableText } from '../printable.js';
import type { CryptoProvider } from '../../crypto/index.js';
import { ScreenText } from '../../audit/cast/screen-text.js';
import { Utf8Stream } from '../../audit/cast/utf8-stream.js';
import { EXIT } from '../errors.js';
import { OutputClosed, OutputSink, refuseExisting } from './output-sink.js';
import {
  castFailure,
  openTerminalSession,
  sessionId,
  type TerminalSessionOptions,
} from './terminal-session.js';

export interface TextCommandOptions extends TerminalSessionOptions {
  readonly out?: string;
  readonly force?: boolean;
}

export async function textCommand(
  provider: CryptoProvider,
  sourcePath: string,
  sessionText: string,
  opts: TextCommandOptions,
): Promise<number> {
  const session = sessionId(sessionText, 'the session', true);
  refuseExisting([opts.out], Boolean(opts.force));
  let terminal;
  try {
    terminal = await openTerminalSession(provider, sourcePath, session, opts, {
      action: 'text',
      ...(opts.out !== undefined ? { output: opts.out } : {}),
      details: { format: 'text' },
    });
  } catch (err) {
    return castFailure(err);
  }
  if (typeof terminal === 'number') return terminal;
  const sink = new OutputSink(opts.out, Boolean(opts.force));
  try {
    const { pty } = terminal.channel;
    if (pty) {
      const screen = new ScreenText(pty.cols, pty.rows);
      for await (const e of terminal.events()) {
        const lines =
          e.code === 'o'
            ? await screen.write(e.data)
            : e.code === 'r'
              ? await screen.resize(e.cols, e.rows)
              : [];
        for (const line of lines) await sink.line(printableText(line));
      }
      for (const line of await screen.end()) await sink.line(printableText(line));
    } else {
      const streams = { out: new Utf8Stream(), err: new Utf8Stream() };
      for await (const e of terminal.events())
        if (e.code === 'o') await sink.write(printableText(streams[e.stream].push(e.data)));
      await sink.write(printableText(streams.out.end() + streams.err.end()));
    }
  } catch (err) {
    if (!(err instanceof OutputClosed)) {
      await sink.close();
      return castFailure(err);
    }
  } finally {
    terminal.close();
  }
  await sink.close();
  return EXIT.ok;
}
