#!/usr/bin/env node
// The test runner behind `npm test` (after lint and build). Two passes over the compiled tests:
//   1. normal mode: every dist/test/**/*.test.js in a plain Node;
//   2. FIPS mode:   every dist/test/**/*.fips.js in a Node started with --force-fips and the OpenSSL
//                   FIPS provider (fips/build.sh output, or SEALGATE_FIPS_DIR).
// The FIPS pass is not optional: if the provider is missing, the run fails and says how to build it.
// Files are listed explicitly because Node 20's default --test glob would also pick up helpers in test/.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const compiled = join(root, 'dist', 'test');
const filter = process.argv[2]; // optional substring to run a subset, e.g. `node test/run.js merkle`

function find(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix))
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .filter((f) => !filter || f.includes(filter))
    .sort();
}

function pass(name, files, extraArgs, env) {
  if (files.length === 0) {
    console.log(`\n== ${name}: no test files${filter ? ` match "${filter}"` : ''}`);
    return filter ? 0 : 1;
  }
  console.log(`\n== ${name}: ${files.length} file(s)`);
  const r = spawnSync(process.execPath, [...extraArgs, '--test', '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env,
  });
  return r.status ?? 1;
}

const fipsDir = process.env.SEALGATE_FIPS_DIR ?? join(root, '.cache', 'fips');
const missing = ['fips.so', 'fipsmodule.cnf', 'openssl.cnf'].filter((f) => !existsSync(join(fipsDir, f)));

let status = pass('normal mode', find(compiled, '.test.js'), [], process.env);
const fipsFiles = find(compiled, '.fips.js');
if (fipsFiles.length && missing.length) {
  console.error(`\n== FIPS mode: cannot run: ${missing.join(', ')} missing in ${fipsDir}; run fips/build.sh`);
  status = status || 1;
} else {
  const env = {
    ...process.env,
    OPENSSL_CONF: join(fipsDir, 'openssl.cnf'),
    OPENSSL_MODULES: fipsDir,
    SEALGATE_FIPS_DIR: fipsDir,
    SEALGATE_FIPS_CHILD: '1',
  };
  status = pass('FIPS mode', fipsFiles, ['--force-fips'], env) || status;
}
process.exit(status);
