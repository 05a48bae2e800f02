// Scratch (not committed): drive a tmux ssh session through the gate and print reconstructed commands.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { startSshd } from '../helpers/sshd.js';
import { startGateFixture } from '../helpers/gate-fixture.js';
import { decryptLog, type OpenedRecord } from '../../src/audit/decrypt.js';
import { storeSource } from '../../src/audit/source.js';
import { reconstructCommands } from '../../src/audit/commands/reconstruct.js';

const sock = `scratch${process.pid}`;
const tmux = (...a: string[]) => spawnSync('tmux', ['-L', sock, ...a], { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(re: RegExp, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const s = tmux('capture-pane', '-p').stdout;
    if (re.test(s)) return s;
    if (Date.now() > end) throw new Error(`timeout waiting ${re}: ${s}`);
    await sleep(50);
  }
}
const sshd = await startSshd();
const fx = await startGateFixture({ sshd });
spawnSync('sh', [
  '-c',
  "echo 'sgtest:Pw-123456' | chpasswd && echo 'sgtest ALL=(ALL) ALL' > /etc/sudoers.d/sgtest-scratch && chmod 440 /etc/sudoers.d/sgtest-scratch",
]);
const args = ['ssh', '-tt', ...fx.sshOptions(), `ops+local@127.0.0.1`].map((a) => `'${a}'`).join(' ');
tmux('new-session', '-d', '-x', '80', '-y', '24', args);
await waitFor(/\$\s*$/m);
const steps = JSON.parse(process.argv[2] ?? '[]') as (string | string[])[];
for (const step of steps) {
  if (typeof step === 'string') {
    tmux('send-keys', '-l', step);
  } else if (step[0] === 'wait') await waitFor(new RegExp(step[1]!, 'm'));
  else if (step[0] === 'sleep') await sleep(Number(step[1]));
  else if (step[0] === 'resize') tmux('resize-window', '-x', step[1]!, '-y', step[2]!);
  else if (step[0] === 'paste') {
    tmux('set-buffer', step[1]!);
    tmux('paste-buffer', '-p');
  } else tmux('send-keys', ...step);
  await sleep(150);
}
await sleep(300);
console.log(tmux('capture-pane', '-p').stdout);
tmux('send-keys', 'C-d');
await sleep(200);
tmux('send-keys', 'C-d');
await sleep(200);
tmux('send-keys', 'C-d');
await sleep(800);
tmux('kill-server');
const recs: OpenedRecord[] = [];
const src = storeSource(fx.config.recording.store);
for await (const e of decryptLog(fx.provider, src.entries(), fx.recipient).opened())
  if (e.kind === 'record') recs.push(e);
writeFileSync(
  '/tmp/recs.json',
  JSON.stringify(
    recs.map((r) => ({
      ...r,
      timeUs: String(r.timeUs),
      payload:
        'data' in r.payload
          ? { channel: r.payload.channel, data: Buffer.from(r.payload.data as Uint8Array).toString('latin1') }
          : r.payload,
    })),
    null,
    0,
  ),
);
for (const c of reconstructCommands(recs)) console.log(JSON.stringify({ ...c, timeUs: undefined }));
await fx.close();
await sshd.stop();
