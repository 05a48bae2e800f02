/**
 * Routing by login name, as sshpiper and Warpgate do: `ssh ops+web1@gate` is gate user `ops` going to
 * target `web1`. A plain `ops` goes to the user's one target when there is exactly one.
 *
 * Pure: a login and the config's users and targets in, a route or a typed refusal out. User and target
 * names cannot contain `+` (config schema), so the first `+` is the separator.
 *
 * Refusals carry a message for the person at the prompt. The gate shows it only after the user has
 * authenticated (gate.ts), so it does not tell a stranger which targets exist.
 */
import type { Config, Target, User } from '../config/schema.js';
import { printableLogin, type GateErrorCode } from './errors.js';

export interface Route {
  readonly user: User;
  readonly target: Target;
  /** The user name on the target: the target's `user`, or the gate user's own name. */
  readonly remoteUser: string;
}

export type RoutingCode = Extract<
  GateErrorCode,
  'UNKNOWN_USER' | 'UNKNOWN_TARGET' | 'TARGET_DENIED' | 'TARGET_REQUIRED' | 'JUMP_LOGIN_MISMATCH'
>;

export interface Refusal {
  readonly code: RoutingCode;
  readonly message: string;
}

export type Routing =
  | { readonly ok: true; readonly route: Route }
  /** `user` is set when the login names a configured user: that user can still authenticate. */
  | { readonly ok: false; readonly refusal: Refusal; readonly user?: User };

export interface Login {
  readonly userName: string;
  /** Undefined for a plain `user` login. */
  readonly targetName?: string;
}

export function splitLogin(login: string): Login {
  const plus = login.indexOf('+');
  return plus < 0
    ? { userName: login }
    : { userName: login.slice(0, plus), targetName: login.slice(plus + 1) };
}

/** The targets `user` may reach, in config order. */
export function allowedTargets(config: Pick<Config, 'targets'>, user: User): Target[] {
  return user.targets.includes('*')
    ? [...config.targets]
    : config.targets.filter((t) => user.targets.includes(t.name));
}

export function route(config: Pick<Config, 'users' | 'targets'>, login: string): Routing {
  const { userName, targetName } = splitLogin(login);
  const user = config.users.find((u) => u.name === userName);
  if (!user) return refuse('UNKNOWN_USER', `unknown user ${printableLogin(userName)}`);
  const allowed = allowedTargets(config, user);

  if (targetName === undefined) {
    const [only, ...others] = allowed;
    if (only && others.length === 0) return routeTo(user, only);
    const names = allowed.map((t) => t.name).join(', ');
    return refuse(
      'TARGET_REQUIRED',
      allowed.length === 0
        ? `user ${user.name} may reach no target`
        : `user ${user.name} may reach several targets; log in as ${user.name}+TARGET (one of: ${names})`,
      user,
    );
  }

  const target = config.targets.find((t) => t.name === targetName);
  if (!target) return refuse('UNKNOWN_TARGET', `unknown target ${printableLogin(targetName)}`, user);
  if (!allowed.includes(target))
    return refuse('TARGET_DENIED', `user ${user.name} may not reach ${target.name}`, user);
  return routeTo(user, target);
}

/** The route of `user` to `target` (also a jump's inner connection, jump.ts). */
export function routeTo(user: User, target: Target): Routing {
  return { ok: true, route: { user, target, remoteUser: target.user ?? user.name } };
}

/** A refusal; `user` when the login names a configured user (also a jump's inner connection, jump.ts). */
export function refuse(code: RoutingCode, message: string, user?: User): Routing {
  return user ? { ok: false, refusal: { code, message }, user } : { ok: false, refusal: { code, message } };
}
