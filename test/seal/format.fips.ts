import { describe } from 'node:test';
import { OpenSslProvider } from '../../src/crypto/index.js';
import { registerSealerTests } from './sealer-suite.js';
import { registerVectorTests } from './vectors.js';

describe('SegmentSealer and SegmentOpener, FIPS-mode Node', () => registerSealerTests('fips'));
describe('FORMAT.md §9 test vectors, FIPS-mode Node', () => registerVectorTests(new OpenSslProvider()));
