// The token cookie (plugin_opt_token_cookie) is found by its exact name in the Cookie
// header, parsed as RFC 6265 pairs. A cookie whose name merely contains the token
// cookie's name (`xcable_jwt`), or a value that contains `cable_jwt=...`, is never the
// token; two cookies with the token's name are refused (cookie tossing from a sibling
// subdomain must not pick the identity). Who the connection runs as is read from
// where users rely on it: the identity a `speak` publishes to MQTT.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, rawConnect, actuatorId, isDisconnect, notPing } from './lib/index.mjs';
import { waitForLog, observeAll } from './fixtures/util.mjs';

const ORIGIN = 'https://app.example';

describe('plugin_opt_token_cookie cable_jwt', () => {
  const ctx = useBroker({ pluginOpts: { token_cookie: 'cable_jwt', allowed_origins: ORIGIN } });

  // Connects with this Cookie header; resolves with the user MQTT sees for a speak.
  async function speakerFor(cookie) {
    const b = ctx.broker;
    const mq = await observeAll(b, 'actuators/42/cmd');
    const c = await rawConnect(b.wsUrl, { headers: { Cookie: cookie, Origin: ORIGIN } });
    await c.welcome();
    assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
    c.perform(actuatorId(42), 'speak', { message: 'who' });
    const m = await mq.next(3000);
    return JSON.parse(m.text).user;
  }

  async function expectUnauthorized(cookie, logRe) {
    const b = ctx.broker;
    const from = b.log().length;
    const c = await rawConnect(b.wsUrl, { headers: { Cookie: cookie, Origin: ORIGIN } });
    const f = await c.waitFor(isDisconnect, 3000, 'disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'unauthorized', reconnect: false });
    assert.deepEqual(c.received().filter(notPing).map((x) => x.json?.type), ['disconnect']);
    await waitForLog(b, logRe, 3000, from);
  }

  test('a cookie whose name ends in the token name is not the token (xcable_jwt)', async () => {
    const b = ctx.broker;
    const alice = b.mint('alice');
    const mallory = b.mint('mallory');
    assert.equal(await speakerFor(`xcable_jwt=${mallory}; cable_jwt=${alice}`), 'alice');
    assert.equal(await speakerFor(`cable_jwt=${alice}; xcable_jwt=${mallory}`), 'alice');
  });

  test('the token name inside another cookie value is not the token (a=cable_jwt=...)', async () => {
    const b = ctx.broker;
    const alice = b.mint('alice');
    const mallory = b.mint('mallory');
    assert.equal(await speakerFor(`a=cable_jwt=${mallory}; cable_jwt=${alice}`), 'alice');
    assert.equal(await speakerFor(`cable_jwt=${alice}; a=cable_jwt=${mallory}`), 'alice');
  });

  test('blanks around pairs and a quoted value are accepted', async () => {
    const b = ctx.broker;
    assert.equal(await speakerFor(`_session=abc;  cable_jwt = "${b.mint('carol')}" ;theme=dark`), 'carol');
  });

  test('only look-alikes and no token cookie: unauthorized', async () => {
    const b = ctx.broker;
    const mallory = b.mint('mallory');
    await expectUnauthorized(`xcable_jwt=${mallory}; a=cable_jwt=${mallory}; cable_jwtx=${mallory}`, /unauthorized: no token/);
  });

  test('two cookies named cable_jwt (cookie tossing) are refused, whatever their order', async () => {
    const b = ctx.broker;
    const alice = b.mint('alice');
    const mallory = b.mint('mallory');
    await expectUnauthorized(`cable_jwt=${mallory}; cable_jwt=${alice}`, /token cookie ignored: more than one cookie named cable_jwt/);
    await expectUnauthorized(`cable_jwt=${alice}; cable_jwt=${mallory}`, /token cookie ignored: more than one cookie named cable_jwt/);
    await expectUnauthorized(`cable_jwt=${alice}; cable_jwt=${alice}`, /more than one cookie named cable_jwt/);
  });
});
