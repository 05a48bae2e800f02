#!/usr/bin/env node
// The `sealgate` command. The TypeScript sources compile to dist/ (npm run build).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv));
