/**
 * Loading a PKCS#11 module (the vendor's `.so`) once per process.
 *
 * `C_Initialize` and `C_Finalize` act on the whole library, not on a caller (PKCS#11 v2.40 §5.4: a second
 * C_Initialize returns CKR_CRYPTOKI_ALREADY_INITIALIZED, and C_Finalize ends every session of the
 * application). So every backend that uses a module shares one loaded instance, counted by reference:
 * the last `release` calls C_Finalize. Two backends that ask for the same module with different NSS
 * library parameters would each get the other's database, so that is refused.
 */
import pkcs11js from 'pkcs11js';
import { CryptoError } from '../errors.js';
import { ckrName } from './errors.js';

export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;
export const P11 = pkcs11js;

export interface ModuleFacts {
  readonly manufacturer: string;
  readonly description: string;
  readonly version: string;
  readonly cryptokiVersion: string;
}

export interface LoadedModule {
  readonly path: string;
  readonly p11: Pkcs11;
  readonly libraryParameters: string | undefined;
  readonly facts: ModuleFacts;
}

interface Entry {
  module: LoadedModule;
  refs: number;
}

const loaded = new Map<string, Entry>();

/** CKF_OS_LOCKING_OK: operations run on libuv's worker threads (C_SignAsync), so the library must lock. */
const CKF_OS_LOCKING_OK = 0x2;

const trim = (s: string): string => s.replace(/[\s\0]+$/, '');

/** Loads and initializes `path`, or returns the instance already loaded. */
export function acquireModule(path: string, libraryParameters?: string): LoadedModule {
  const entry = loaded.get(path);
  if (entry) {
    if (entry.module.libraryParameters !== libraryParameters) {
      throw new CryptoError(
        'BACKEND',
        `PKCS#11 module ${path} is already initialized in this process with other library parameters`,
      );
    }
    entry.refs++;
    return entry.module;
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
  } catch (err) {
    throw new CryptoError(
      'BACKEND',
      // dlerror() starts with the path again; say it once.
      `cannot load PKCS#11 module ${path}: ${firstLine(err).replace(`${path}: `, '')} (check pkcs11.module or SEALGATE_PKCS11_MODULE)`,
      undefined,
      { cause: err },
    );
  }
  try {
    p11.C_Initialize(
      libraryParameters !== undefined
        ? { libraryParameters, flags: CKF_OS_LOCKING_OK }
        : { flags: CKF_OS_LOCKING_OK },
    );
  } catch (err) {
    // Another copy of the library in this process (not through this registry) already initialized it.
    if (ckrName(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      try {
        p11.close();
      } catch {
        // Nothing more to release.
      }
      throw new CryptoError(
        'BACKEND',
        `PKCS#11 module ${path} failed to initialize: ${ckrName(err) ?? firstLine(err)}` +
          (libraryParameters !== undefined ? ` (library parameters: ${libraryParameters})` : ''),
        undefined,
        { cause: err },
      );
    }
  }
  const info = p11.C_GetInfo();
  const module: LoadedModule = {
    path,
    p11,
    libraryParameters,
    facts: {
      manufacturer: trim(info.manufacturerID),
      description: trim(info.libraryDescription),
      version: `${info.libraryVersion.major}.${info.libraryVersion.minor}`,
      cryptokiVersion: `${info.cryptokiVersion.major}.${info.cryptokiVersion.minor}`,
    },
  };
  loaded.set(path, { module, refs: 1 });
  return module;
}

/** Drops one reference; the last one finalizes the library (ending every session and login). */
export function releaseModule(module: LoadedModule): void {
  const entry = loaded.get(module.path);
  if (!entry || entry.module !== module) return;
  if (--entry.refs > 0) return;
  loaded.delete(module.path);
  try {
    module.p11.C_Finalize();
  } catch {
    // Finalizing a library whose token vanished may fail; there is nothing left to release.
  }
  try {
    module.p11.close();
  } catch {
    // As above.
  }
}

export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}
