import { describe } from 'node:test';
import { registerWycheproofTests } from './wycheproof.js';

describe('Wycheproof vectors through the openssl provider, normal Node', () =>
  registerWycheproofTests('normal'));
