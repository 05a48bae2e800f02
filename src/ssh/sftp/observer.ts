/**
 * One sftp channel seen from the gate: the client's bytes and the target's bytes in, SFTP_OP payloads
 * out (docs/FORMAT.md §3.2.2). It follows request ids to their replies and handles to the paths they
 * were opened with, and counts READ / WRITE / READDIR per handle (totals.ts) instead of recording each.
 *
 * It never throws and never holds bytes back: the first stream error (or bug) stops it for both
 * directions with one `parser-stopped` payload, and the bridge goes on passing and recording the raw
 * bytes, which are the authority. Pure: no I/O, no clock.
 */
import { SftpStreamError } from './errors.js';
import { hex, openFlagNames, putText } from './fields.js';
import { PacketReader, type SftpPacket } from './packet-reader.js';
import { MAX_HANDLES, MAX_PENDING, SFTP_VERSION, STATUS_OK, statusName } from './protocol.js';
import { decodeReply, keepReplyBody, type SftpReply } from './replies.js';
import { decodeRequest, keepRequestBody, type OpRequest, type SftpRequest } from './requests.js';
import { countReply, newHandle, summary, type HandleState } from './totals.js';

/** An SFTP_OP payload without its `channel` (the bridge adds it). */
export type SftpOpPayload = { op: string } & Record<string, unknown>;

export type Direction = 'in' | 'out';

/** What a reply will be matched against. */
type Pending =
  | { readonly kind: 'read' | 'write' | 'readdir'; readonly handle: HandleState }
  | {
      readonly kind: 'op';
      /** The request payload's naming fields, repeated in the reply record. */
      readonly base: SftpOpPayload;
      /** OPEN / OPENDIR: the handle to follow when the server gives one. */
      readonly opens?: { readonly path: Uint8Array | undefined; readonly dir: boolean };
      /** CLOSE: the handle it closes (hex). */
      readonly closes?: string;
    };

/** Requests whose NAME reply is worth a `resolved` field. */
const RESOLVING = new Set(['realpath', 'readlink', 'expand-path@openssh.com', 'home-directory']);

export class SftpObserver {
  readonly #in = new PacketReader(keepRequestBody);
  readonly #out = new PacketReader(keepReplyBody);
  readonly #pending = new Map<number, Pending>();
  readonly #handles = new Map<string, HandleState>();
  #clientVersion: number | undefined;
  #serverVersion: number | undefined;
  #stopped = false;

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Client-to-target bytes; the payloads of the requests they complete. */
  fromClient(chunk: Uint8Array): SftpOpPayload[] {
    return this.#feed('in', chunk, (packet, out) => this.#request(decodeRequest(packet), out));
  }

  /** Target-to-client bytes; the payloads of the replies they complete. */
  fromTarget(chunk: Uint8Array): SftpOpPayload[] {
    return this.#feed('out', chunk, (packet, out) => this.#reply(decodeReply(packet), out));
  }

  /** The channel closed: a summary for each handle still open (or whose CLOSE had no answer). */
  channelClosed(): SftpOpPayload[] {
    if (this.#stopped) return [];
    this.#stopped = true;
    const out = [...this.#handles].map(([key, h]) => ({
      op: 'close',
      ...naming(h.path, key),
      result: 'channel-closed',
      ...summary(h),
    }));
    this.#handles.clear();
    this.#pending.clear();
    return out;
  }

  #feed(
    direction: Direction,
    chunk: Uint8Array,
    onPacket: (packet: SftpPacket, out: SftpOpPayload[]) => void,
  ): SftpOpPayload[] {
    const out: SftpOpPayload[] = [];
    if (this.#stopped) return out;
    try {
      (direction === 'in' ? this.#in : this.#out).push(chunk, (packet) => {
        if (!this.#stopped) onPacket(packet, out);
      });
    } catch (err) {
      const reason =
        err instanceof SftpStreamError
          ? err.message
          : `internal error: ${(err as Error).message ?? String(err)}`;
      out.push(this.#stop(direction, reason));
    }
    return out;
  }

  #stop(direction: Direction, reason: string): SftpOpPayload {
    this.#stopped = true;
    this.#pending.clear();
    this.#handles.clear();
    return { op: 'parser-stopped', direction, reason };
  }

  #version(): number | undefined {
    return this.#serverVersion ?? this.#clientVersion;
  }

  #request(req: SftpRequest, out: SftpOpPayload[]): void {
    if (req.kind === 'init') {
      this.#clientVersion = req.version;
      out.push({ op: 'init', version: req.version });
      return;
    }
    if (this.#clientVersion === undefined) {
      throw new SftpStreamError('NOT_SFTP', 'the first packet from the client is not INIT');
    }
    const version = this.#version();
    if (version !== SFTP_VERSION) {
      throw new SftpStreamError(
        'UNSUPPORTED_VERSION',
        `SFTP version ${version} is not parsed (only ${SFTP_VERSION})`,
      );
    }
    if (req.kind === 'op') {
      out.push(this.#op(req));
      return;
    }
    const handle = this.#handles.get(hex(req.handle));
    if (!handle) return; // a handle the gate did not see open: nothing to count against
    if (req.kind === 'read') handle.reads++;
    if (req.kind === 'write') {
      handle.writes++;
      handle.writtenBytes += req.length;
    }
    this.#expect(req.id, { kind: req.kind, handle });
  }

  /** The request payload, and what its reply will be matched against. */
  #op(req: OpRequest): SftpOpPayload {
    const base: SftpOpPayload = { op: '' };
    if (typeof req.op === 'string') base.op = req.op;
    else putText(base, 'op', req.op);
    if (req.id !== undefined) base.id = req.id;
    const handleKey = req.handle && hex(req.handle);
    const handle = handleKey === undefined ? undefined : this.#handles.get(handleKey);
    const path = req.path ?? handle?.path;
    if (path) putText(base, 'path', path);
    const newPath = req.newPath ?? (req.newHandle && this.#handles.get(hex(req.newHandle))?.path);
    if (newPath) putText(base, 'new_path', newPath);
    if (req.target) putText(base, 'target', req.target);
    if (req.user) putText(base, 'user', req.user);
    if (handleKey !== undefined) base.handle = handleKey;

    const payload: SftpOpPayload = { ...base };
    if (req.flags !== undefined) payload.flags = openFlagNames(req.flags);
    if (req.attrs && Object.keys(req.attrs).length > 0) payload.attrs = req.attrs;

    if (req.id !== undefined) {
      const opens =
        req.op === 'open' || req.op === 'opendir'
          ? // A copy: the path is a view into the packet (up to 256 KiB), kept for the handle's life.
            { path: req.path?.slice(), dir: req.op === 'opendir' }
          : undefined;
      const closes = req.op === 'close' ? handleKey : undefined;
      this.#expect(req.id, { kind: 'op', base, ...(opens ? { opens } : {}), ...(closes ? { closes } : {}) });
    }
    return payload;
  }

  #expect(id: number, pending: Pending): void {
    if (this.#pending.size >= MAX_PENDING && !this.#pending.has(id)) {
      throw new SftpStreamError('TOO_MUCH_STATE', `more than ${MAX_PENDING} requests without a reply`);
    }
    this.#pending.set(id, pending); // a reused id replaces the older request: its reply cannot be told apart
  }

  #reply(reply: SftpReply, out: SftpOpPayload[]): void {
    if (reply.kind === 'unknown') return;
    if (reply.kind === 'version') {
      this.#serverVersion = reply.version;
      out.push({
        op: 'init',
        result: 'ok',
        version: reply.version,
        extensions: reply.extensions.map((e) => Buffer.from(e).toString('latin1')),
      });
      if (reply.version !== SFTP_VERSION) {
        throw new SftpStreamError(
          'UNSUPPORTED_VERSION',
          `SFTP version ${reply.version} is not parsed (only ${SFTP_VERSION})`,
        );
      }
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (pending.kind !== 'op') return countReply(pending.kind, pending.handle, reply);

    const payload: SftpOpPayload = { ...pending.base };
    if (reply.kind === 'status') {
      payload.result = statusName(reply.code);
      if (reply.code !== STATUS_OK && reply.message.length > 0) putText(payload, 'message', reply.message);
    } else {
      payload.result = 'ok';
    }
    if (reply.kind === 'handle' && pending.opens) {
      const key = hex(reply.handle);
      payload.handle = key;
      out.push(payload);
      if (this.#handles.size >= MAX_HANDLES && !this.#handles.has(key)) {
        throw new SftpStreamError('TOO_MUCH_STATE', `more than ${MAX_HANDLES} open handles`);
      }
      this.#handles.set(key, newHandle(pending.opens.path, pending.opens.dir));
      return;
    }
    if (reply.kind === 'name' && reply.first && RESOLVING.has(payload.op))
      putText(payload, 'resolved', reply.first);
    if (pending.closes !== undefined) {
      const handle = this.#handles.get(pending.closes);
      this.#handles.delete(pending.closes);
      if (handle) Object.assign(payload, summary(handle));
    }
    out.push(payload);
  }
}

/** `path` (with `path_b64`) and `handle` for a handle-only record. */
function naming(path: Uint8Array | undefined, key: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (path) putText(out, 'path', path);
  out.handle = key;
  return out;
}
