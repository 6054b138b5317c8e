// A token cookie without an Origin allow-list is cross-site WebSocket hijacking: the
// browser attaches the cookie to a socket that any web page opens. So
// plugin_opt_token_cookie without plugin_opt_allowed_origins stops the broker at start,
// unless plugin_opt_token_cookie_any_origin true says the risk is accepted.
import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, runCleanups, useBroker, rawConnect, isWelcome, READY_LINE,
} from './lib/index.mjs';

describe('start-up', () => {
  afterEach(runCleanups);

  test('plugin_opt_token_cookie without plugin_opt_allowed_origins: the broker does not start', async () => {
    let err = null;
    try {
      const b = await startBroker({ pluginOpts: { token_cookie: 'cable_token' } });
      await b.stop();
    } catch (e) {
      err = e;
    }
    assert.ok(err?.exit, `the broker must exit by itself: ${err?.message}`);
    assert.notEqual(err.exit.code, 0);
    assert.ok(!err.log.includes(READY_LINE));
    assert.match(err.log, /plugin_opt_token_cookie needs plugin_opt_allowed_origins: .*cross-site WebSocket hijacking.*plugin_opt_token_cookie_any_origin true/);
  });

  test('with plugin_opt_token_cookie_any_origin true it starts, and takes cookies from any page', async () => {
    const b = await startBroker({ pluginOpts: { token_cookie: 'cable_token', token_cookie_any_origin: 'true' } });
    try {
      const c = await rawConnect(b.wsUrl, {
        headers: { Cookie: `cable_token=${b.mint('alice')}`, Origin: 'https://evil.example' },
      });
      await c.waitFor(isWelcome);
      await c.close();
    } finally {
      await b.stop();
    }
  });
});

describe('plugin_opt_token_cookie with plugin_opt_allowed_origins', () => {
  const ctx = useBroker({
    pluginOpts: { token_cookie: 'cable_token', allowed_origins: 'https://app.example.com' },
  });

  test('the app\'s page is welcomed; another site\'s page carrying the same cookie gets 403', async () => {
    const b = ctx.broker;
    const cookie = `cable_token=${b.mint('alice')}`;
    const ok = await rawConnect(b.wsUrl, { headers: { Cookie: cookie, Origin: 'https://app.example.com' } });
    await ok.waitFor(isWelcome);
    await assert.rejects(
      rawConnect(b.wsUrl, { headers: { Cookie: cookie, Origin: 'https://evil.example' } }),
      (e) => e.statusCode === 403,
    );
  });
});
