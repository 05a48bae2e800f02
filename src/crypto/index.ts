/**
 * The crypto boundary. Everything outside src/crypto imports from here and nowhere else.
 */
export * from './errors.js';
export * from './provider.js';
export * from './policy.js';
export { parseKeyRef, type KeyRef } from './keyref.js';
export { OpenSslProvider } from './openssl/provider.js';
export {
  createProvider,
  RoutingProvider,
  PKCS11_MODULE_ENV,
  type KeyUsage,
  type Pkcs11Settings,
} from './router.js';
export { formatPkcs11Uri, parsePkcs11Uri, type Pkcs11Uri } from './pkcs11/uri.js';
export { runSelfTests, type SelfTestResult } from './selftest.js';
export { sshServerHostKeyPem } from './ssh-host-key.js';
export {
  assertFipsRuntime,
  checkFipsRuntime,
  describeFipsModule,
  fipsDir,
  fipsEnvironment,
  preflightFipsNode,
  FipsSetupError,
  FIPS_DIR_ENV,
  type FipsModuleDescription,
} from './fips.js';
