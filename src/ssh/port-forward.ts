/**
 * An allowed port forward (`ssh -L`, `-W` to a target whose policy says `allow_port_forwarding`): the
 * client's `direct-tcpip` channel joined to a `direct-tcpip` channel the gate opens on the upstream
 * connection (`forwardOut`), so the *target* connects to the destination, as it would for a direct
 * `ssh -L` to it.
 *
 * Only metadata is recorded (connection.ts: FORWARD open and close, with the byte counts counted here):
 * the bytes are opaque application traffic, often encrypted end to end, and recording them would put
 * whatever crosses the tunnel (database dumps, say) in the log. Flow control is flow.ts's: a full sink
 * pauses its source, so SSH windows carry back-pressure across the gate.
 */
import type { Duplex } from 'node:stream';
import { ended, forward } from './flow.js';

export interface TunnelTotals {
  /** Bytes from the client to the destination. */
  readonly bytesIn: number;
  /** Bytes from the destination to the client. */
  readonly bytesOut: number;
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
