// Every frame queued for a connection counts against plugin_opt_max_outbound_bytes when
// it is queued, replies included: a client that sends subscribes and never reads their
// replies is closed as too_slow near the bound, not when the next ping is queued (the
// ping interval here is 60 s, so the test would time out if only pings were checked).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useBroker, rawConnect } from './lib/index.mjs';

const MAX_OUTBOUND = 65536;
const ctx = useBroker({
  pluginOpts: {
    max_outbound_bytes: String(MAX_OUTBOUND), socket_send_buffer: '4096', ping_interval: '60',
  },
});

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

test('a client that never reads its reject_subscription replies is closed as too_slow near the bound', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('mallory')));
  const sid = (await c.welcome()).json.sid;
  c.ws._socket.pause(); // never read again
  const before = rssKiB(b.pid);

  // Distinct ~3 KB identifiers of a channel that does not exist: each is answered with a
  // reject_subscription that echoes it.
  const pad = 'x'.repeat(3000);
  const line = new RegExp(`connection ${sid} \\(127\\.0\\.0\\.1\\) closed: too slow, (\\d+) bytes waiting`);
  let sent = 0;
  while (!line.test(b.log()) && sent < 40 * 1024 * 1024) {
    for (let i = 0; i < 200; i++) {
      const cmd = JSON.stringify({ command: 'subscribe', identifier: JSON.stringify({ channel: 'Nope', n: sent, pad }) });
      c.ws.send(cmd);
      sent += cmd.length;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const after = rssKiB(b.pid);
  const m = line.exec(b.log());
  process.stdout.write(`# sent ${(sent / 1048576).toFixed(1)} MiB of subscribes; ` +
    `${m ? m[1] : '?'} bytes waiting at too_slow; broker RSS ${before} -> ${after} KiB\n`);
  assert.ok(m, `closed as too_slow after ${sent} bytes of subscribes`);
  const waiting = Number(m[1]);
  assert.ok(waiting <= MAX_OUTBOUND + 8192,
    `closed with ${waiting} bytes queued, near plugin_opt_max_outbound_bytes ${MAX_OUTBOUND}`);

  c.ws._socket.resume();
  const close = await c.waitClosed(15_000);
  const last = c.received().at(-1);
  assert.deepEqual(last.json, { type: 'disconnect', reason: 'too_slow', reconnect: true });
  assert.equal(close.code, 1000);
});
