/**
 * The bridge for one `session` channel (RFC 4254 §6): the client's channel on one side, a matching channel
 * on the upstream connection on the other, and every event recorded before it is passed on.
 *
 * - Requests before the session starts (pty-req, env) are recorded, remembered and replayed on the
 *   upstream channel when shell / exec / subsystem opens it. Those three are accepted at once (start()
 *   says why); a failure upstream is told on stderr. window-change and signal are recorded and passed on
 *   once the session runs. x11-req and auth-agent-req are refused (and recorded as FORWARD).
 * - Data: target stdout → DATA_OUT, stderr → DATA_ERR, client → DATA_IN. Each chunk is sealed, then
 *   written on (the same Buffer, no copy); a full sink pauses its source (flow.ts), and so does a full
 *   unlogged window (unlogged.ts: too many bytes forwarded whose records are not yet durable).
 * - End of a session, in OpenSSH's order: when the target's channel has closed and all its output has been
 *   written to the client's channel, the gate sends exit-status (or exit-signal), then EOF and CLOSE
 *   (ssh2 can send exit-status only while the channel is open, so EOF is held back until then).
 * - A client EOF is passed on at once (half-close: `cat | ssh host sort` needs it).
 * - The `sftp` subsystem is also read as SFTP (sftp/observer.ts): each chunk's DATA record is sealed,
 *   then the SFTP_OP records of the packets it completes (file operations with their paths, outcomes,
 *   per-handle totals; docs/FORMAT.md §3.2.2), then the chunk is passed on. The parser never holds
 *   bytes back or ends a session; on a malformed stream it stops with one `parser-stopped` record.
 */
import type { Readable } from 'node:stream';
import type {
  ClientChannel,
  ExecInfo,
  PseudoTtyInfo,
  ServerChannel,
  Session,
  SetEnvInfo,
  SignalInfo,
  SubsystemInfo,
  WindowChangeInfo,
  X11Info,
} from 'ssh2';
import type { Logger } from 'winston';
import { RecordType } from '../seal/format/types.js';
import { GateError } from './errors.js';
import { DurableInput } from './durable-input.js';
import { ended, flushed, forward } from './flow.js';
import type { SessionRecording } from './recording.js';
import { SftpObserver, type SftpOpPayload } from './sftp/observer.js';
import type { UpstreamClient } from './upstream.js';

type Reply = (() => void) | undefined;
type Accept<T> = (() => T | undefined) | undefined;

export interface BridgeContext {
  /** The channel number in records: per connection, 0, 1, 2, … in the order the client opened them. */
  readonly channel: number;
  readonly recording: SessionRecording;
  /** The upstream connection; rejects with a GateError whose message is for the user. */
  readonly upstream: () => Promise<UpstreamClient>;
  /** Records and logs a refused forwarding request. */
  readonly refuseForward: (kind: string, details: Record<string, unknown>) => void;
  readonly logger: Logger;
  readonly logContext: Record<string, unknown>;
  /** Called once when the channel is closed on both sides. */
  readonly onClosed: () => void;
}

type Exit =
  | { readonly code: number }
  | { readonly signal: string; readonly coreDumped: boolean; readonly message: string };

/** "SIGTERM" → "TERM": the wire name (RFC 4254 §6.10). */
const wireSignal = (name: string): string => (name.toUpperCase().startsWith('SIG') ? name.slice(3) : name);

export class SessionBridge {
  readonly #ctx: BridgeContext;
  #pty: PseudoTtyInfo | undefined;
  readonly #env: Record<string, string> = {};
  #started = false;
  #up: ClientChannel | undefined;
  #down: ServerChannel | undefined;
  #exit: Exit | undefined;
  #upEnded = false;
  #upErrEnded = false;
  #upClosed = false;
  #finishing = false;
  #closed = false;
  #closeRecorded = false;
  /** Client input waiting for the disk, when the target's forward_input is when-durable. */
  #durableInput: DurableInput | undefined;
  /** The terminal size sent with the request that opened the upstream channel. */
  #ptyAtOpen: PseudoTtyInfo | undefined;
  /** The `sftp` subsystem's reader of file operations. */
  #sftp: SftpObserver | undefined;

  constructor(ctx: BridgeContext, session: Session) {
    this.#ctx = ctx;
    const ch = ctx.channel;
    const rec = ctx.recording;
    session.on('pty', (accept: Reply, reject: Reply, info: PseudoTtyInfo | undefined) => {
      if (this.#started || !info) return reject?.();
      const { term, cols, rows, width, height, modes } = info;
      if (!rec.record(RecordType.PTY_REQ, { channel: ch, term, cols, rows, width, height, modes })) return;
      this.#pty = info;
      accept?.();
    });
    session.on('window-change', (accept: Reply, reject: Reply, info: WindowChangeInfo) => {
      const { cols, rows, width, height } = info;
      if (!rec.record(RecordType.WINDOW_CHANGE, { channel: ch, cols, rows, width, height })) return;
      if (this.#pty) this.#pty = { ...this.#pty, cols, rows, width, height };
      if (this.#up) this.#up.setWindow(rows, cols, height, width);
      if (this.#up || this.#pty) accept?.();
      else reject?.();
    });
    session.on('env', (accept: Reply, reject: Reply, info: SetEnvInfo) => {
      if (!rec.record(RecordType.ENV, { channel: ch, name: info.key, value: info.val })) return;
      if (this.#started) return reject?.();
      this.#env[info.key] = info.val;
      accept?.();
    });
    session.on('signal', (accept: Reply, reject: Reply, info: SignalInfo) => {
      const signal = wireSignal(info.name);
      if (!rec.record(RecordType.SIGNAL, { channel: ch, signal })) return;
      const up = this.#up;
      if (!up) return reject?.();
      const send = () => {
        try {
          up.signal(signal);
          return true;
        } catch {
          return false; // a name ssh2 does not know
        }
      };
      // when-durable: the signal waits for its record's fsync, in order with the input (durable-input.ts).
      if (this.#durableInput) {
        this.#durableInput.enqueue(rec.whenDurable(), () => this.#closed || send());
        return accept?.();
      }
      if (send()) accept?.();
      else reject?.();
    });
    session.on('x11', (_accept: Reply, reject: Reply, info: X11Info) => {
      // The cookie is a secret: not recorded, not logged.
      ctx.refuseForward('x11', {
        channel: ch,
        single: info.single,
        screen: info.screen,
        protocol: info.protocol,
      });
      reject?.();
    });
    session.on('auth-agent', (_accept: Reply, reject: Reply) => {
      ctx.refuseForward('auth-agent', { channel: ch });
      reject?.();
    });
    session.on('shell', (accept: Accept<ServerChannel>, reject: Reply) => {
      if (!rec.record(RecordType.SHELL, { channel: ch })) return;
      this.start(accept, reject, (up, cb) =>
        up.shell(this.#pty ? ptyOptions(this.#pty) : false, { env: this.#env }, cb),
      );
    });
    session.on('exec', (accept: Accept<ServerChannel>, reject: Reply, info: ExecInfo) => {
      if (!rec.record(RecordType.EXEC, { channel: ch, command: info.command })) return;
      this.start(accept, reject, (up, cb) =>
        up.exec(info.command, { env: this.#env, ...(this.#pty ? { pty: ptyOptions(this.#pty) } : {}) }, cb),
      );
    });
    session.on('subsystem', (accept: Accept<ServerChannel>, reject: Reply, info: SubsystemInfo) => {
      if (!rec.record(RecordType.SUBSYSTEM, { channel: ch, name: info.name })) return;
      if (info.name === 'sftp' && !this.#started) this.#sftp = new SftpObserver();
      this.start(accept, reject, (up, cb) => up.subsys(info.name, cb));
    });
    session.on('close', () => this.close());
  }

  /** Ends the channel on both sides at once (fail-closed cut, gate shutdown), recording its close. */
  abort(): void {
    this.#down?.close();
    this.close(); // CHANNEL_CLOSE now, while the recording still takes it (gate stop)
  }

  /**
   * Accepts the client's request at once, then opens the upstream channel. ssh2 lets a request be
   * accepted only until the client's EOF arrives, and `ssh host cmd </dev/null` sends EOF right after
   * exec, before any upstream could answer. So a failure upstream is told on stderr (exit status 255),
   * not as a refused request.
   */
  private start(
    accept: Accept<ServerChannel>,
    reject: Reply,
    open: (up: UpstreamClient, cb: (err: Error | undefined, channel: ClientChannel) => void) => void,
  ): void {
    if (this.#started) return reject?.();
    this.#started = true;
    const down = accept?.();
    if (!down) return;
    this.#down = down;
    down.on('close', () => this.close());
    down.on('error', () => undefined);
    void this.connect(down, open);
  }

  private async connect(
    down: ServerChannel,
    open: (up: UpstreamClient, cb: (err: Error | undefined, channel: ClientChannel) => void) => void,
  ): Promise<void> {
    let conn: UpstreamClient;
    try {
      conn = await this.#ctx.upstream();
    } catch (err) {
      return tellRefusal(down, err instanceof GateError ? err.message : 'the target is not available');
    }
    if (this.#closed) return;
    // when-durable: the request (and the pty-req and env before it) reaches the target only once
    // its records are fsynced.
    if (this.#ctx.recording.inputForwarding === 'when-durable') {
      if (!(await this.#ctx.recording.whenDurable()) || this.#closed) return;
    }
    this.#ptyAtOpen = this.#pty;
    const opened = (err: Error | undefined, up: ClientChannel | undefined) => {
      if (this.#closed) {
        up?.close();
        return;
      }
      if (err || !up) {
        this.#ctx.logger.warn('target refused the session request', {
          ...this.#ctx.logContext,
          error: err?.message,
        });
        return tellRefusal(down, `the target refused the request (${err?.message ?? 'no channel'})`);
      }
      this.relay(down, up);
    };
    try {
      open(conn, opened);
    } catch (err) {
      opened(err as Error, undefined);
    }
  }

  private relay(down: ServerChannel, up: ClientChannel): void {
    this.#up = up;
    const ch = this.#ctx.channel;
    const rec = this.#ctx.recording;
    const upErr = up.stderr as Readable;

    // A window-change that came while the upstream channel was opening.
    const pty = this.#pty;
    if (pty && pty !== this.#ptyAtOpen) up.setWindow(pty.rows, pty.cols, pty.height, pty.width);

    // Recorded bytes pass through the gate's unlogged window (unlogged.ts): at most
    // recording.max_unlogged_bytes forwarded before their records are durable. EOFs (zero bytes) queue
    // behind the chunks of their stream.
    const out = (source: Readable, bytes: number, fn: () => void) =>
      rec.pass(source, bytes, () => this.#closed || fn());
    up.on('data', (chunk: Buffer) => {
      if (this.#closed || !rec.record(RecordType.DATA_OUT, { channel: ch, data: chunk })) return;
      if (this.#sftp && !this.recordSftp(this.#sftp.fromTarget(chunk))) return;
      out(up, chunk.length, () => forward(up, down, chunk));
    });
    upErr.on('data', (chunk: Buffer) => {
      if (this.#closed || !rec.record(RecordType.DATA_ERR, { channel: ch, data: chunk })) return;
      out(upErr, chunk.length, () => forward(upErr, down.stderr, chunk));
    });
    // forward_input: when-durable holds client input until its records are fsynced (durable-input.ts),
    // so it never counts against the unlogged window; when-sealed input passes through the window.
    const durable = rec.inputForwarding === 'when-durable' ? new DurableInput(down) : undefined;
    this.#durableInput = durable;
    const pass = (bytes: number, fn: () => void) =>
      durable ? durable.enqueue(rec.whenDurable(), () => this.#closed || fn()) : out(down, bytes, fn);
    down.on('data', (chunk: Buffer) => {
      if (this.#closed || !rec.record(RecordType.DATA_IN, { channel: ch, data: chunk })) return;
      if (this.#sftp && !this.recordSftp(this.#sftp.fromClient(chunk))) return;
      pass(chunk.length, () => forward(down, up, chunk));
    });
    down.on('end', () => {
      if (this.#closed || !rec.record(RecordType.CHANNEL_EOF, { channel: ch, direction: 'in' })) return;
      pass(0, () => up.end());
    });
    up.on('end', () => {
      if (this.#closed) return;
      rec.record(RecordType.CHANNEL_EOF, { channel: ch, direction: 'out' });
      out(up, 0, () => {
        this.#upEnded = true;
        void this.finish();
      });
    });
    upErr.on('end', () =>
      out(upErr, 0, () => {
        this.#upErrEnded = true;
        void this.finish();
      }),
    );
    up.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
      if (this.#closed) return;
      if (typeof code === 'number') {
        if (rec.record(RecordType.EXIT_STATUS, { channel: ch, code })) this.#exit = { code };
      } else if (signal) {
        const name = wireSignal(signal);
        const exit = { signal: name, coreDumped: dump === true, message: desc ?? '' };
        const recorded = rec.record(RecordType.EXIT_SIGNAL, {
          channel: ch,
          signal: name,
          core_dumped: exit.coreDumped,
          message: exit.message,
        });
        if (recorded) this.#exit = exit;
      }
    });
    up.on('close', () => {
      this.#upClosed = true;
      void this.finish();
    });
    up.on('error', () => undefined);
  }

  /** Seals SFTP_OP records in order; false when the session is failing closed (forward nothing). */
  private recordSftp(ops: readonly SftpOpPayload[]): boolean {
    for (const op of ops) {
      if (!this.#ctx.recording.record(RecordType.SFTP_OP, { channel: this.#ctx.channel, ...op }))
        return false;
      if (op.op === 'parser-stopped') {
        this.#ctx.logger.warn('sftp parser stopped; the bytes are still recorded', {
          ...this.#ctx.logContext,
          channel: this.#ctx.channel,
          reason: op.reason,
        });
      }
    }
    return true;
  }

  /** Target side done and drained: exit status, then EOF and CLOSE to the client. */
  private async finish(): Promise<void> {
    const down = this.#down;
    if (!down || !this.#upEnded || !this.#upErrEnded || !this.#upClosed || this.#finishing) return;
    this.#finishing = true;
    await ended(down.stderr);
    await flushed(down);
    if (this.#closed) return;
    const exit = this.#exit;
    try {
      if (exit && 'code' in exit) down.exit(exit.code);
      else if (exit) down.exit(exit.signal, exit.coreDumped, exit.message);
    } catch {
      down.exit(255); // a signal name ssh2 cannot send
    }
    down.end();
  }

  private close(): void {
    this.#closed = true;
    this.#up?.close();
    if (this.#closeRecorded) return;
    this.#closeRecorded = true;
    if (this.#sftp) this.recordSftp(this.#sftp.channelClosed());
    this.#ctx.recording.record(RecordType.CHANNEL_CLOSE, { channel: this.#ctx.channel });
    this.#ctx.onClosed();
  }
}

/** Tells the user why there is no session (on stderr, as ssh prints its own errors), exit status 255. */
function tellRefusal(down: ServerChannel, message: string): void {
  down.on('error', () => undefined);
  down.stderr.write(`sealgate: ${message}\r\n`);
  void ended(down.stderr).then(() => {
    if (down.writable) down.exit(255);
    down.end();
  });
}

/**
 * A session that can only be told why there is none, used when nothing can be recorded (the log is down
 * and the target is fail-closed): requests are answered without a record, and shell / exec / subsystem
 * get the message and exit status 255.
 */
export function refuseSession(session: Session, message: string, onClosed: () => void): void {
  const ok = (accept: Reply) => accept?.();
  const no = (_accept: Reply, reject: Reply) => reject?.();
  const start = (accept: Accept<ServerChannel>) => {
    const down = accept?.();
    if (down) tellRefusal(down, message);
  };
  session.on('pty', ok);
  session.on('env', ok);
  session.on('window-change', ok);
  session.on('signal', no);
  session.on('x11', no);
  session.on('auth-agent', no);
  session.on('shell', start);
  session.on('exec', start);
  session.on('subsystem', start);
  session.on('close', onClosed);
}

function ptyOptions(pty: PseudoTtyInfo) {
  return {
    rows: pty.rows,
    cols: pty.cols,
    width: pty.width,
    height: pty.height,
    term: pty.term,
    modes: pty.modes,
  };
}
