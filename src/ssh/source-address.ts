/**
 * Client source addresses, for the pre-authentication limits (admission.ts): the network block a source
 * is counted in (OpenSSH's PerSourceNetBlockSize) and exempt lists (PerSourcePenaltyExemptList). Pure
 * functions over address text; node:net parses.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Prefix lengths sources are grouped by: `32:128` (the default) counts every address on its own. */
export interface NetBlockSize {
  readonly v4: number;
  readonly v6: number;
}

/** `::ffff:192.0.2.1` (how a dual-stack listener reports IPv4 clients) → `192.0.2.1`. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

function v4Bytes(a: string): number[] {
  return a.split('.').map((p) => Number(p));
}

/** The 16 bytes of an IPv6 address (with `::` expanded and a trailing dotted quad read). */
function v6Bytes(a: string): number[] {
  let text = a.replace(/%.*$/, ''); // zone index
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const [b0, b1, b2, b3] = v4Bytes(quad[1]!);
    text = `${text.slice(0, quad.index)}${((b0! << 8) | b1!).toString(16)}:${((b2! << 8) | b3!).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out: number[] = [];
  for (const g of groups) {
    const n = parseInt(g || '0', 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}

function masked(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return bits === 8 ? b : b & ((0xff << (8 - bits)) & 0xff);
  });
}

/**
 * The block a source address is counted in, as `address/prefix` text (`192.0.2.0/24`). An address
 * node:net cannot parse (not expected from a TCP socket) is its own block.
 */
export function sourceBlock(address: string, size: NetBlockSize): string {
  const a = unmapIPv4(address);
  if (isIPv4(a)) return `${masked(v4Bytes(a), size.v4).join('.')}/${size.v4}`;
  if (isIPv6(a)) {
    const b = masked(v6Bytes(a), size.v6);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return `${groups.join(':')}/${size.v6}`;
  }
  return a;
}

/** `"32:128"` → `{v4: 32, v6: 128}`; the schema has checked the shape. */
export function parseNetBlockSize(text: string): NetBlockSize {
  const [v4, v6] = text.split(':').map(Number);
  return { v4: v4!, v6: v6! };
}

/** A list of addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`). */
export class AddressList {
  readonly #list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, prefix] = e.split('/');
      const type = isIPv6(addr!) ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.#list.addAddress(addr!, type);
      else this.#list.addSubnet(addr!, Number(prefix), type);
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const a = unmapIPv4(address);
    if (isIPv4(a)) return this.#list.check(a, 'ipv4');
    if (isIPv6(a)) return this.#list.check(a, 'ipv6');
    return false;
  }
}

/** Whether `text` is an address or a CIDR block that AddressList takes (for the config's checks). */
export function isAddressOrBlock(text: string): boolean {
  const [addr, prefix, extra] = text.split('/');
  if (extra !== undefined || !addr) return false;
  const max = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : -1;
  if (max < 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= max;
}
