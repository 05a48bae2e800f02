import { describe } from 'node:test';
import { registerProviderTests } from './provider-suite.js';

describe('openssl provider, FIPS-mode Node', () => registerProviderTests('fips'));
