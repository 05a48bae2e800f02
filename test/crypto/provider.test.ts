import { describe } from 'node:test';
import { registerProviderTests } from './provider-suite.js';

describe('openssl provider, normal Node', () => registerProviderTests('normal'));
