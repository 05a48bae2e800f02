/**
 * The worker half of ParallelRootTracker (tree.ts): folds leaf hashes, sent in batches, into the
 * compact range and writes the roots at the sizes asked for into shared memory. Hashing goes through
 * this thread's own OpenSslProvider: the same process, so the same OpenSSL and the same FIPS mode,
 * which it checks against the caller's before it starts.
 *
 * Shared memory (workerData.shared): Int32 status at 0 (0 running, 1 done, 2 failed), then for each
 * wanted size, in order, one flag byte and 32 root bytes, from byte 8.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OpenSslProvider } from '../../crypto/index.js';
import { RootTracker } from './tree.js';

interface Init {
  readonly sizes: readonly number[];
  readonly fips: boolean;
  readonly shared: SharedArrayBuffer;
}

const { sizes, fips, shared } = workerData as Init;
const status = new Int32Array(shared, 0, 1);
const roots = new Uint8Array(shared, 8);

function finish(code: 1 | 2): void {
  Atomics.store(status, 0, code);
  Atomics.notify(status, 0);
  parentPort?.close();
}

try {
  const provider = new OpenSslProvider();
  if (provider.info().fipsMode !== fips) throw new Error("the worker is not in the caller's FIPS mode");
  const tracker = new RootTracker((d) => provider.digest('sha256', d), sizes);
  parentPort?.on('message', (msg: { leaves?: Uint8Array; end?: boolean }) => {
    try {
      if (msg.leaves) {
        for (let at = 0; at < msg.leaves.length; at += 32) tracker.append(msg.leaves.subarray(at, at + 32));
      }
      if (msg.end) {
        sizes.forEach((size, i) => {
          const root = tracker.rootAt(size);
          if (!root) return;
          roots[i * 33] = 1;
          roots.set(root, i * 33 + 1);
        });
        finish(1);
      }
    } catch {
      finish(2);
    }
  });
} catch {
  finish(2);
}
