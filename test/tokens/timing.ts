/**
 * Token timings, for the record (docs/HSM.md), not a test: ECDSA P-384 signatures per second and
 * RSA-3072 OAEP-SHA-256 decryptions per second in each test token, through the provider (so including
 * the software digest, the session pool and pkcs11js's worker thread), one at a time and with four
 * operations in flight.
 *
 *   npm run build && node dist/test/tokens/timing.js [--seconds N] [--default-pbe]
 *
 * --default-pbe leaves NSS's PBKDF2 iteration count at its default for the keys made here (the BRIEF
 * measured ~50 ms per RSA decrypt with it), instead of the test setting of 1.
 */
import { createProvider, type PrivateKey, type RoutingProvider } from '../../src/crypto/index.js';
import { makeNss, makeSoftHsm2, type TestToken } from './tokens.js';

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1] ?? '') || 2;
const defaultPbe = args.includes('--default-pbe');

async function rate(
  op: () => Promise<unknown>,
  parallel: number,
): Promise<{ perSecond: number; msEach: number }> {
  for (let i = 0; i < 5; i++) await op(); // warm up: sessions, login, first-use costs
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < end) {
        await op();
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { perSecond: done / elapsed, msEach: (elapsed * 1000 * parallel) / done };
}

function line(token: string, what: string, r: { perSecond: number; msEach: number }, parallel: number): void {
  process.stdout.write(
    `${token.padEnd(22)} ${what.padEnd(30)} ${String(parallel).padStart(2)} in flight  ` +
      `${r.perSecond.toFixed(0).padStart(6)} /s  ${r.msEach.toFixed(2).padStart(7)} ms each\n`,
  );
}

async function measure(t: TestToken, name: string): Promise<void> {
  const { provider } = await createProvider({ pkcs11: t.settings });
  const p: RoutingProvider = provider;
  try {
    const signer = await p.generateKeyAt(t.uri('timing-signer'), { type: 'ec', curve: 'P-384' });
    const msg = p.randomBytes(256);
    for (const parallel of [1, 4]) {
      line(
        name,
        'ECDSA P-384 sign (SHA-384)',
        await rate(() => p.sign(signer, msg, { scheme: 'ecdsa', encoding: 'der' }), parallel),
        parallel,
      );
    }
    let recipient: PrivateKey;
    try {
      recipient = await p.storeKeyAt(
        t.uri('timing-recipient'),
        await p.generateKey({ type: 'rsa', bits: 3072 }),
      );
      const wrapped = p.oaepEncrypt(recipient.publicKey, p.randomBytes(32));
      await p.oaepDecrypt(recipient, wrapped);
      for (const parallel of [1, 4]) {
        line(
          name,
          'RSA-3072 OAEP-SHA-256 decrypt',
          await rate(() => p.oaepDecrypt(recipient, wrapped), parallel),
          parallel,
        );
      }
    } catch (err) {
      process.stdout.write(
        `${name.padEnd(22)} RSA-3072 OAEP-SHA-256 decrypt  refused: ${(err as Error).message}\n`,
      );
    }
  } finally {
    p.close();
  }
}

const softhsm = makeSoftHsm2();
const nss = makeNss();
if (defaultPbe) delete process.env.NSS_MAX_MP_PBE_ITERATION_COUNT;
process.stdout.write(
  `node ${process.version}, ${seconds} s per measurement${defaultPbe ? ', NSS default PBKDF2 count' : ''}\n`,
);
await measure(softhsm, 'SoftHSM2 2.6.1');
await measure(nss, `NSS softoken${defaultPbe ? ' (PBE)' : ''}`);
