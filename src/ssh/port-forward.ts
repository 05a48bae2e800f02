/**
 * An allowed port forward (`ssh -L`, `-W` to a target whose policy says `allow_port_forwarding`): the
 * client's `direct-tcpip` channel joined to a `direct-tcpip` channel the gate opens on the upstream
 * connection (`forwardOut`), so the *target* connects to the destination, as it would for a direct
 * `ssh -L` to it.
 *
 * Only metadata is recorded (direct-tcpip.ts: FORWARD open and close, with the byte counts counted here):
 * the bytes are opaque application traffic, often encrypted end to end, and recording them would put
 * whatever crosses the tunnel (database dumps, say) in the log. Flow control is flow.ts's: a full sink
 * pauses its source, so SSH windows carry back-pressure across the gate.
 */
import type { Duplex } from 'node:stream';
import { ended, forward } from './flow.js';
import type { UpstreamClient } from './upstream.js';

export interface TunnelTotals {
  /** Bytes from the client to the destination. */
  readonly bytesIn: number;
  /** Bytes from the destination to the client. */
  readonly bytesOut: number;
}

/**
 * A `direct-tcpip` channel request's addresses (RFC 4254 §7.2), named as they are recorded in FORWARD
 * records (docs/FORMAT.md).
 */
export interface DirectTcpipDestination {
  readonly host: string;
  readonly port: number;
  readonly origin_host: string;
  readonly origin_port: number;
}

export interface PortForwardRequest {
  /** The routed target's connection; may still be connecting. */
  readonly upstream: Promise<UpstreamClient>;
  /** The client's `direct-tcpip` request, passed on as it came. */
  readonly destination: DirectTcpipDestination;
  /** Accepts the client's channel; undefined when the client has gone meanwhile. */
  readonly accept: () => Duplex | undefined;
  readonly reject: () => void;
  /** Called once: the forward has ended, or never opened (`error` says why). */
  readonly onClosed: (totals: TunnelTotals, error?: string) => void;
}

const NOTHING: TunnelTotals = { bytesIn: 0, bytesOut: 0 };

/**
 * Opens the upstream channel first and accepts the client's only once it is open, so a destination the
 * target cannot reach is refused to the client as it would be by the target's own sshd.
 */
export function startPortForward(req: PortForwardRequest): { abort(): void } {
  let tunnel: Tunnel | undefined;
  let done = false;
  const finish = (totals: TunnelTotals, error?: string) => {
    if (done) return;
    done = true;
    req.onClosed(totals, error);
  };
  const { host, port, origin_host, origin_port } = req.destination;
  req.upstream
    .then(
      (client) =>
        new Promise<Duplex>((resolve, fail) =>
          client.forwardOut(origin_host, origin_port, host, port, (err, up) =>
            err ? fail(err) : resolve(up),
          ),
        ),
    )
    .then(
      (up) => {
        const down = done ? undefined : req.accept();
        if (!down) {
          up.destroy();
          finish(NOTHING, 'the client has gone');
          return;
        }
        tunnel = new Tunnel(down, up, (totals) => finish(totals));
      },
      (err: Error) => {
        if (done) return;
        req.reject();
        finish(NOTHING, `the target could not connect: ${err.message}`);
      },
    );
  return {
    abort: () => {
      if (tunnel) return tunnel.abort();
      req.reject();
      finish(NOTHING, 'the connection has gone');
    },
  };
}

export class Tunnel {
  #bytesIn = 0;
  #bytesOut = 0;
  #closed = false;

  /**
   * `down` is the client's channel, `up` the upstream one. `onClosed` runs once, when either side has
   * closed (the other is closed then too).
   */
  constructor(
    private readonly down: Duplex,
    private readonly up: Duplex,
    private readonly onClosed: (totals: TunnelTotals) => void,
  ) {
    down.on('data', (chunk: Buffer) => {
      if (this.#closed) return;
      this.#bytesIn += chunk.length;
      forward(down, up, chunk);
    });
    up.on('data', (chunk: Buffer) => {
      if (this.#closed) return;
      this.#bytesOut += chunk.length;
      forward(up, down, chunk);
    });
    // EOF is passed on: ending a stream sends EOF once everything written before it has gone out.
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    // When one side closes, what was already written to the other still goes out first.
    down.on('close', () => void ended(up).then(() => this.abort()));
    up.on('close', () => void ended(down).then(() => this.abort()));
    down.on('error', () => this.abort());
    up.on('error', () => this.abort());
  }

  get totals(): TunnelTotals {
    return { bytesIn: this.#bytesIn, bytesOut: this.#bytesOut };
  }

  /** Closes both channels now (the connection is being cut). */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.down.destroy();
    this.up.destroy();
    this.onClosed(this.totals);
  }
}
