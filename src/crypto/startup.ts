/**
 * Bringing the provider up: the checks every command runs before it touches a key. In FIPS mode any
 * failure is fatal (the caller refuses to start); in normal mode the self-tests still run, because a
 * broken AES-GCM is a broken gate in any mode.
 */
import { CryptoError } from './errors.js';
import {
  checkFipsRuntime,
  describeFipsModule,
  fipsDir,
  type FipsModuleDescription,
  type FipsRuntimeCheck,
} from './fips.js';
import { OpenSslProvider } from './openssl/provider.js';
import type { CryptoProvider } from './provider.js';
import { runSelfTests, type SelfTestResult } from './selftest.js';

export interface StartupReport {
  readonly fipsRequested: boolean;
  readonly runtime: FipsRuntimeCheck[];
  readonly module?: FipsModuleDescription;
  readonly selfTests: SelfTestResult[];
  readonly ok: boolean;
}

export async function startProvider(
  fipsRequested: boolean,
): Promise<{ provider: CryptoProvider; report: StartupReport }> {
  const runtime = fipsRequested ? checkFipsRuntime() : [];
  const module = fipsRequested ? describeFipsModule(fipsDir()) : undefined;
  const details: Record<string, string> = module
    ? {
        fipsProvider: module.providerName,
        fipsProviderVersion: module.providerVersion,
        fipsModuleSha256: module.moduleSha256,
      }
    : {};
  const provider = new OpenSslProvider({ details });
  if (fipsRequested && !provider.policy.fips) {
    runtime.push({
      name: 'policy in FIPS mode',
      ok: false,
      detail: 'the policy did not switch to FIPS mode',
    });
  }
  const selfTests = await runSelfTests(provider);
  const ok = runtime.every((c) => c.ok) && selfTests.every((t) => t.ok);
  return { provider, report: { fipsRequested, runtime, ...(module ? { module } : {}), selfTests, ok } };
}

/** Throws SELF_TEST_FAILED naming every failed check. */
export function assertStartupOk(report: StartupReport): void {
  if (report.ok) return;
  const failed = [...report.runtime, ...report.selfTests].filter((c) => !c.ok);
  throw new CryptoError(
    'SELF_TEST_FAILED',
    `crypto start-up checks failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
  );
}
