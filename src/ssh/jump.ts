/**
 * ProxyJump (`ssh -J gate web1`) decisions. OpenSSH's jump is a `direct-tcpip` channel to `web1:22` on the
 * gate; the gate terminates the inner SSH connection on that channel itself (gate.ts, `injectSocket`), so the
 * inner session is recorded like any other. Everything here is pure: a destination and the config in, a
 * decision out.
 *
 * - A destination is a jump when its host is a configured target's *name* (the gate's name space, what users
 *   type in `ops+web1`) and its port is 22 or that target's configured port. Never the target's host:port:
 *   two targets may share an address (with different remote users), and `127.0.0.1` on the gate is not
 *   `127.0.0.1` on a target, so an address cannot name a target.
 * - A jump to a target the gate user may not reach is refused exactly as an unknown destination is, so the
 *   client learns nothing about which targets exist.
 * - The inner connection belongs to the outer connection's gate user and goes to the jump's target, fixed
 *   by the destination; its login must be that user (`ops`) or `ops+web1`.
 */
import type { Config, Target, User } from '../config/schema.js';
import { printable } from './errors.js';
import { allowedTargets, refuse, routeTo, splitLogin, type Routing } from './routing.js';

/** The SSH port a client sends when none is configured for the host (RFC 4253 §4.1 uses 22). */
export const SSH_PORT = 22;

export type DirectTcpipDecision =
  /** The destination names a target the user may reach: terminate the inner SSH session on the gate. */
  | { readonly kind: 'jump'; readonly target: Target }
  /** The destination names a target the user may not reach (or the connection is itself a jump's inner). */
  | {
      readonly kind: 'jump-refused';
      readonly target: Target;
      readonly reason: 'target-denied' | 'nested-jump';
    }
  /** Not a target: a port forward, for the routed target's policy to decide. */
  | { readonly kind: 'forward' };

/** The configured target that `host:port` names, if any. OpenSSH sends host names lower-cased. */
export function jumpTarget(targets: readonly Target[], host: string, port: number): Target | undefined {
  const name = host.toLowerCase();
  return targets.find((t) => t.name === name && (port === SSH_PORT || port === t.port));
}

/**
 * What to do with a `direct-tcpip` channel to `host:port` from an authenticated connection of `user`.
 * `inner` is true on a jump's inner connection: a jump from there is refused (one level is enough, and
 * nested connections would cost the gate more than the client).
 */
export function decideDirectTcpip(
  config: Pick<Config, 'targets'>,
  user: User | undefined,
  host: string,
  port: number,
  inner: boolean,
): DirectTcpipDecision {
  const target = jumpTarget(config.targets, host, port);
  if (!target) return { kind: 'forward' };
  if (inner) return { kind: 'jump-refused', target, reason: 'nested-jump' };
  if (!user || !allowedTargets(config, user).includes(target))
    return { kind: 'jump-refused', target, reason: 'target-denied' };
  return { kind: 'jump', target };
}

/** The route of a jump's inner connection: fixed to `target`, for the outer connection's `user`. */
export function innerRoute(user: User, target: Target, login: string): Routing {
  const { userName, targetName } = splitLogin(login);
  if (userName !== user.name) {
    return refuse(
      'JUMP_LOGIN_MISMATCH',
      `through the gate, log in to ${target.name} as ${user.name} (your gate user), not ${printable(userName)}`,
      user,
    );
  }
  if (targetName !== undefined && targetName !== target.name) {
    return refuse(
      'JUMP_LOGIN_MISMATCH',
      `this jump goes to ${target.name}; log in as ${user.name} or ${user.name}+${target.name}`,
      user,
    );
  }
  return routeTo(user, target);
}
