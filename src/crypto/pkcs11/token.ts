/**
 * One token: finding its slot by URI attributes, a small pool of sessions, and the user login.
 *
 * - Sessions are opened on demand up to a limit and reused; each operation holds one session from
 *   `C_*Init` to its final call, so operations never interleave on a session (PKCS#11 v2.40 §5.12).
 * - Login state belongs to the application and the token, not to a session (§5.5): one `C_Login`
 *   serves every session. After a token error the pool repairs itself once and retries the operation:
 *   - CKR_SESSION_HANDLE_INVALID / CKR_SESSION_CLOSED: open another session;
 *   - CKR_USER_NOT_LOGGED_IN: log in again;
 *   - CKR_DEVICE_REMOVED and friends: find the token again (its slot id may have changed), log in again.
 *   A second failure is the caller's to report; the caller (e.g. the checkpoint signer) fails closed.
 * - A PIN the token refuses is never tried again by this process: HSMs lock a user after a few wrong
 *   PINs (CloudHSM, Luna), and a gate retrying in a loop must not be what locks it.
 */
import { readFileSync } from 'node:fs';
import { CryptoError } from '../errors.js';
import { ckrName, LOGIN_LOST, PIN_REFUSED, SESSION_LOST, TOKEN_LOST } from './errors.js';
import { P11, type LoadedModule } from './module.js';
import { describeTokenSelector, type TokenSelector } from './uri.js';

export type Handle = Buffer;

export interface PinSource {
  /** A file holding the PIN; one trailing newline is not part of it. */
  readonly file?: string;
  /** An environment variable holding the PIN. */
  readonly env?: string;
}

/** What the token says about itself (C_GetTokenInfo), trimmed of PKCS#11's blank padding. */
export interface TokenFacts {
  readonly label: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly serial: string;
  readonly firmware: string;
  readonly loginRequired: boolean;
}

const CKF_LOGIN_REQUIRED = 0x4;
const CKF_TOKEN_INITIALIZED = 0x400;
const SESSION_FLAGS = P11.CKF_RW_SESSION | P11.CKF_SERIAL_SESSION;
const trim = (s: string): string => s.replace(/[\s\0]+$/, '');

interface Session {
  readonly handle: Handle;
  /** The token generation the session was opened in; older sessions are closed, not reused. */
  readonly generation: number;
}

export class Token {
  #slot: Handle;
  #facts: TokenFacts;
  #idle: Session[] = [];
  #open = 0;
  #waiters: (() => void)[] = [];
  #loggedIn = false;
  #pinRefusal: CryptoError | undefined;
  #mechanisms: Set<number> | undefined;
  #generation = 0;
  #closed = false;

  private constructor(
    private readonly module: LoadedModule,
    readonly selector: TokenSelector,
    private readonly pin: PinSource,
    private readonly maxSessions: number,
    found: { slot: Handle; facts: TokenFacts },
  ) {
    this.#slot = found.slot;
    this.#facts = found.facts;
  }

  /** Finds the one token that matches `selector`; KEY_REFERENCE if none or several do. */
  static open(module: LoadedModule, selector: TokenSelector, pin: PinSource, maxSessions = 4): Token {
    return new Token(module, selector, pin, maxSessions, findSlot(module, selector));
  }

  get facts(): TokenFacts {
    return this.#facts;
  }

  /** `token "sealgate"`, for messages. */
  get name(): string {
    return describeTokenSelector(this.selector);
  }

  /** Bumped whenever the token was found again: object handles from before must be looked up again. */
  get generation(): number {
    return this.#generation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the token lists the mechanism; true when it cannot say, so the operation itself decides. */
  hasMechanism(mechanism: number): boolean {
    try {
      this.#mechanisms ??= new Set(this.module.p11.C_GetMechanismList(this.#slot));
    } catch {
      return true;
    }
    return this.#mechanisms.has(mechanism);
  }

  /**
   * Runs `op` on a session of its own (logged in unless `login` is false), repairing the session, the
   * login or the token once if the token reports that one of them is gone. Other errors pass through
   * unchanged, as pkcs11js threw them, for the caller to translate.
   */
  async run<T>(op: (session: Handle) => Promise<T> | T, opts: { login?: boolean } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let session: Session | undefined;
      try {
        session = await this.#acquire();
        if (opts.login !== false) this.#login(session.handle);
        const result = await op(session.handle);
        this.#release(session);
        return result;
      } catch (err) {
        const ckr = ckrName(err) ?? '';
        const tokenLost = TOKEN_LOST.has(ckr);
        if (session) {
          if (SESSION_LOST.has(ckr) || tokenLost) this.#discard(session);
          else this.#release(session);
        }
        if (attempt > 0 || this.#closed) throw err;
        if (SESSION_LOST.has(ckr) || LOGIN_LOST.has(ckr)) {
          // Sessions are closed together (C_CloseAllSessions, a token timeout), and the login ends with
          // the last one (§5.5): log in again; CKR_USER_ALREADY_LOGGED_IN is fine if it did not end.
          this.#loggedIn = false;
          continue;
        }
        if (tokenLost) {
          this.#refind();
          continue;
        }
        throw err;
      }
    }
  }

  /** Logs in for one operation on a key with CKA_ALWAYS_AUTHENTICATE (PKCS#11 v2.40 §5.5, C_Login). */
  contextLogin(session: Handle): void {
    this.module.p11.C_Login(session, P11.CKU_CONTEXT_SPECIFIC, this.#readPin());
  }

  /**
   * Closes every session this process has on the token, which also logs it out (C_CloseAllSessions).
   * The next operation opens a session and logs in again. For operators (reconnect after an HSM
   * failover) and for tests of the repair paths.
   */
  reset(): void {
    this.#generation++;
    this.#idle = [];
    this.#open = 0;
    this.#loggedIn = false;
    try {
      this.module.p11.C_CloseAllSessions(this.#slot);
    } catch {
      // The token may already be gone; its sessions with it.
    }
    this.#wake();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#idle.splice(0)) this.#closeSession(s);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #acquire(): Promise<Session> {
    for (;;) {
      if (this.#closed) throw closedError(this.module.path);
      const idle = this.#idle.pop();
      if (idle) return idle;
      if (this.#open < this.maxSessions) {
        this.#open++;
        try {
          return {
            handle: this.module.p11.C_OpenSession(this.#slot, SESSION_FLAGS),
            generation: this.#generation,
          };
        } catch (err) {
          this.#open--;
          throw err;
        }
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #release(session: Session): void {
    if (this.#closed || session.generation !== this.#generation) {
      this.#discard(session);
      return;
    }
    this.#idle.push(session);
    this.#wake();
  }

  #discard(session: Session): void {
    this.#closeSession(session);
    if (session.generation === this.#generation) this.#open--;
    this.#wake();
  }

  #closeSession(session: Session): void {
    try {
      this.module.p11.C_CloseSession(session.handle);
    } catch {
      // Already closed by the token or by C_CloseAllSessions.
    }
  }

  #wake(): void {
    this.#waiters.shift()?.();
  }

  /** The token went away and may be back in another slot: find it again by its URI attributes. */
  #refind(): void {
    this.#generation++;
    for (const s of this.#idle.splice(0)) this.#closeSession(s);
    this.#open = 0;
    this.#loggedIn = false;
    this.#mechanisms = undefined;
    let found: { slot: Handle; facts: TokenFacts };
    try {
      found = findSlot(this.module, this.selector);
    } catch (err) {
      throw new CryptoError(
        'BACKEND',
        `${this.name} is no longer present in ${this.module.path}: ${(err as Error).message}`,
        undefined,
        { cause: err },
      );
    }
    this.#slot = found.slot;
    this.#facts = found.facts;
    this.#wake();
  }

  #login(session: Handle): void {
    if (this.#loggedIn || !this.#facts.loginRequired) return;
    if (this.#pinRefusal) throw this.#pinRefusal;
    const pin = this.#readPin();
    try {
      this.module.p11.C_Login(session, P11.CKU_USER, pin);
    } catch (err) {
      const ckr = ckrName(err) ?? '';
      if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') {
        // Another backend in this process logged in to the token already (login state is per
        // application, PKCS#11 §5.5); this PIN was not checked. docs/HSM.md: one PIN per token.
        this.#loggedIn = true;
        return;
      }
      if (PIN_REFUSED.has(ckr)) {
        const why = ckr === 'CKR_PIN_LOCKED' ? 'the PIN is locked' : 'wrong PIN';
        this.#pinRefusal = new CryptoError(
          'LOGIN_FAILED',
          `${this.name} refused the PIN from ${describePinSource(this.pin)}: ${why} (${ckr}); ` +
            'sealgate will not try it again, so that it cannot lock the token',
          undefined,
          { cause: err },
        );
        throw this.#pinRefusal;
      }
      throw err;
    }
    this.#loggedIn = true;
  }

  #readPin(): string {
    const pin = readPin(this.pin);
    if (pin === undefined) {
      throw new CryptoError(
        'LOGIN_FAILED',
        `${this.name} needs a PIN: set pkcs11.pin_file or pkcs11.pin_env (--pin-file or --pin-env)`,
      );
    }
    return pin;
  }
}

export function closedError(module: string): CryptoError {
  return new CryptoError('BACKEND', `the PKCS#11 backend for ${module} is closed`);
}

export function describePinSource(pin: PinSource): string {
  if (pin.file) return `file ${pin.file}`;
  if (pin.env) return `environment variable ${pin.env}`;
  return 'nowhere';
}

/** Reads the PIN; undefined when no source is configured. Never from a command-line argument. */
export function readPin(pin: PinSource): string | undefined {
  if (pin.file && pin.env) {
    throw new CryptoError('INVALID_INPUT', 'PKCS#11 PIN: give a file or an environment variable, not both');
  }
  let text: string | undefined;
  if (pin.file) {
    try {
      text = readFileSync(pin.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new CryptoError(
        'INVALID_INPUT',
        `PKCS#11 PIN: cannot read ${pin.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  } else if (pin.env) {
    text = process.env[pin.env];
    if (text === undefined) {
      throw new CryptoError('INVALID_INPUT', `PKCS#11 PIN: environment variable ${pin.env} is not set`);
    }
  } else {
    return undefined;
  }
  if (text === '')
    throw new CryptoError('INVALID_INPUT', `PKCS#11 PIN from ${describePinSource(pin)} is empty`);
  return text;
}

function slotNumber(slot: Handle): bigint {
  return slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0));
}

function findSlot(module: LoadedModule, sel: TokenSelector): { slot: Handle; facts: TokenFacts } {
  try {
    return matchSlot(module, sel);
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError(
      'BACKEND',
      `cannot list the tokens of PKCS#11 module ${module.path}: ${ckrName(err) ?? (err as Error).message}`,
      undefined,
      { cause: err },
    );
  }
}

function matchSlot(module: LoadedModule, sel: TokenSelector): { slot: Handle; facts: TokenFacts } {
  const p11 = module.p11;
  const present = p11.C_GetSlotList(true).map((slot) => {
    const info = p11.C_GetTokenInfo(slot);
    const facts: TokenFacts = {
      label: trim(info.label),
      manufacturer: trim(info.manufacturerID),
      model: trim(info.model),
      serial: trim(info.serialNumber),
      firmware: `${info.firmwareVersion.major}.${info.firmwareVersion.minor}`,
      loginRequired: (info.flags & CKF_LOGIN_REQUIRED) !== 0,
    };
    return { slot, facts, initialized: (info.flags & CKF_TOKEN_INITIALIZED) !== 0 };
  });
  const usable = present.filter((t) => t.initialized);
  const matches = usable.filter(
    ({ slot, facts }) =>
      (sel.token === undefined || facts.label === sel.token) &&
      (sel.serial === undefined || facts.serial === sel.serial) &&
      (sel.model === undefined || facts.model === sel.model) &&
      (sel.manufacturer === undefined || facts.manufacturer === sel.manufacturer) &&
      (sel.slotId === undefined || slotNumber(slot) === sel.slotId),
  );
  const [only, ...more] = matches;
  if (!only) {
    const labels =
      usable
        .map((t) => `"${t.facts.label}"`)
        .sort()
        .join(', ') || 'none';
    throw new CryptoError(
      'KEY_REFERENCE',
      `no ${describeTokenSelector(sel)} in PKCS#11 module ${module.path} (tokens present: ${labels})`,
    );
  }
  if (more.length > 0) {
    throw new CryptoError(
      'KEY_REFERENCE',
      `${matches.length} tokens match ${describeTokenSelector(sel)} in ${module.path} ` +
        `(serials ${matches.map((t) => t.facts.serial).join(', ')}); add serial=… to the URI`,
    );
  }
  return { slot: only.slot, facts: only.facts };
}
