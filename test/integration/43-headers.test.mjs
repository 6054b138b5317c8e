// Real session cookies are large: a 10 KB Cookie header (with the token in one of its
// cookies) still upgrades under the default plugin_opt_max_header_size, and a client
// that never finishes its handshake is dropped after plugin_opt_handshake_timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { useBroker, rawConnect, isWelcome } from './lib/index.mjs';

const ctx = useBroker({
  pluginOpts: { token_cookie: 'cable_token', token_cookie_any_origin: 'true', handshake_timeout: '2' },
});

test('a 10 KB Cookie header carrying the token upgrades and is welcomed', async () => {
  const b = ctx.broker;
  const big = Array.from({ length: 10 }, (_, i) => `_app_session_${i}=${'s'.repeat(1000)}`).join('; ');
  const c = await rawConnect(b.wsUrl, { headers: { Cookie: `${big}; cable_token=${b.mint('alice')}` } });
  await c.waitFor(isWelcome);
});

test('a handshake that never finishes is dropped after plugin_opt_handshake_timeout', async () => {
  const b = ctx.broker;
  const port = Number(new URL(b.wsUrl).port);
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.write('GET /cable HTTP/1.1\r\nHost: x\r\n'); // ...and never the rest
  const t0 = Date.now();
  await new Promise((resolve, reject) => {
    sock.on('close', resolve);
    sock.on('error', resolve);
    // handshake_timeout is 2 s here; lws' own default for a half-sent request is 10 s
    // (timeout_secs_ah_idle), which the option must override.
    setTimeout(() => reject(new Error('still open after 7 s')), 7_000);
  });
  assert.ok(Date.now() - t0 >= 1000, 'closed too early to be the timeout');
});
