// Origin allow-list (plugin_opt_allowed_origins): listed origins upgrade; any other
// Origin, and a missing one, get HTTP 403 before the upgrade (cross-site WebSocket
// hijacking protection), so no token is even looked at.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useBroker, rawConnect, actuatorId, DEFAULT_PROTOCOLS, onCleanup } from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

// The status code of the HTTP answer to an upgrade with these headers, read from the ws
// 'unexpected-response' event; 101 when the upgrade happens.
function upgradeStatus(url, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, DEFAULT_PROTOCOLS, { headers });
    onCleanup(() => ws.terminate());
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no answer within 5 s')); }, 5000);
    ws.once('upgrade', (res) => { clearTimeout(timer); resolve({ status: res.statusCode, ws }); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { ws.terminate(); resolve({ status: res.statusCode, body }); });
    });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

describe("plugin_opt_allowed_origins 'https://app.example.com https://*.example.org'", () => {
  const ctx = useBroker({
    pluginOpts: { allowed_origins: 'https://app.example.com https://*.example.org' },
  });

  for (const origin of [
    'https://app.example.com',
    'HTTPS://APP.EXAMPLE.COM',
    'https://shop.example.org',
    'https://a.b.example.org',
  ]) {
    test(`allowed: ${origin} upgrades and is welcomed`, async () => {
      const b = ctx.broker;
      const c = await rawConnect(b.urlFor(b.mint('alice')), { headers: { Origin: origin } });
      await c.welcome();
      assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
    });
  }

  for (const origin of [
    'https://evil.example.net',
    'http://app.example.com', // scheme differs
    'https://app.example.com:8443', // port differs
    'https://app.example.com.evil.net', // suffix trick
    'https://evilexample.org', // not a subdomain
    'https://example.org', // the wildcard does not cover the bare domain
    'https://example.com',
    'null', // opaque origin (sandboxed iframe, file://)
    'https://app.example.com/', // an Origin has no path
    'https://user@app.example.com',
    '',
  ]) {
    test(`refused with 403 before the upgrade: Origin ${JSON.stringify(origin)}`, async () => {
      const b = ctx.broker;
      const from = b.log().length;
      const r = await upgradeStatus(b.urlFor(b.mint('alice')), { Origin: origin });
      assert.equal(r.status, 403, `HTTP status for Origin ${JSON.stringify(origin)}`);
      await waitForLog(b, /upgrade from \S+ refused: Origin .* is not allowed/, 3000, from);
    });
  }

  test('refused with 403: no Origin header at all', async () => {
    const b = ctx.broker;
    const r = await upgradeStatus(b.urlFor(b.mint('alice')), {});
    assert.equal(r.status, 403);
  });

  test('the 403 comes before authentication: a bad origin with no token is still a 403, a good origin with no token upgrades then gets unauthorized', async () => {
    const b = ctx.broker;
    assert.equal((await upgradeStatus(b.wsUrl, { Origin: 'https://evil.example.net' })).status, 403);
    const c = await rawConnect(b.wsUrl, { headers: { Origin: 'https://app.example.com' } });
    const f = await c.frames.next();
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'unauthorized', reconnect: false });
    assert.equal((await c.waitClosed()).code, 1000);
  });

  test('rawConnect reports the 403 as a refused upgrade, and the broker keeps serving', async () => {
    const b = ctx.broker;
    await assert.rejects(rawConnect(b.urlFor(b.mint('alice')), { headers: { Origin: 'https://evil.example.net' } }),
      (e) => e.statusCode === 403);
    const c = await rawConnect(b.urlFor(b.mint('alice')), { headers: { Origin: 'https://app.example.com' } });
    await c.welcome();
  });
});

describe('without plugin_opt_allowed_origins (no check)', () => {
  const ctx = useBroker();

  test('any Origin, and none, upgrades', async () => {
    const b = ctx.broker;
    for (const headers of [{}, { Origin: 'https://evil.example.net' }, { Origin: 'null' }]) {
      const c = await rawConnect(b.urlFor(b.mint('alice')), { headers });
      await c.welcome();
      await c.close();
    }
  });
});
