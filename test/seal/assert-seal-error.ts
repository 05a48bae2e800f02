/** Assertion helper for the seal tests: a thrown SealError with one of the expected codes. */
import assert from 'node:assert/strict';
import { SealError, type SealErrorCode } from '../../src/seal/errors.js';

/** For assert.throws / assert.rejects: passes for a SealError whose code is one of `codes`. */
export function sealError(codes: SealErrorCode | readonly SealErrorCode[], text?: RegExp) {
  const allowed: readonly SealErrorCode[] = typeof codes === 'string' ? [codes] : codes;
  return (e: unknown): true => {
    assert.ok(e instanceof SealError, `expected SealError, got ${String(e)}`);
    assert.ok(allowed.includes(e.code), `expected ${allowed.join(' or ')}, got ${e.code}: ${e.message}`);
    if (text) assert.match(e.message, text);
    return true;
  };
}

/** The code of the SealError `fn` throws; undefined if it returns. Anything else thrown is a bug. */
export function thrownCode(fn: () => unknown): SealErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof SealError) return e.code;
    throw e;
  }
}
