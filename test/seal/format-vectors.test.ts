import { describe } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { registerVectorTests } from './vectors.js';

describe('FORMAT.md §9 test vectors, normal Node', () => registerVectorTests(new OpenSslProvider()));
