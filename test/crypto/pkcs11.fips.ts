import { describe } from 'node:test';
import { registerPkcs11Contract } from './pkcs11-contract.js';

describe('pkcs11 provider (SoftHSM2, NSS softoken), FIPS-mode Node', () => registerPkcs11Contract('fips'));
