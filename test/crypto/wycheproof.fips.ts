import { describe } from 'node:test';
import { registerWycheproofTests } from './wycheproof.js';

describe('Wycheproof vectors through the openssl provider, FIPS-mode Node', () =>
  registerWycheproofTests('fips'));
