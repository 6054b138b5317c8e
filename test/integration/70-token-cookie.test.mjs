// The token cookie (plugin_opt_token_cookie) is found by its exact name in the Cookie
// header, parsed as RFC 6265 pairs. A cookie whose name merely contains the token
// cookie's name (`xcable_jwt`), or a value that contains `cable_jwt=...`, is never the
// token; two cookies with the token's name are refused (cookie tossing from a sibling
// subdomain must not pick the identity). Who the connection runs as is read from
// where users rely on it: the identity a `speak` publishes to MQTT.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
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

  test('two Cookie header lines, each with a cable_jwt, are refused too', async () => {
    const b = ctx.broker;
    // Written by hand: Node's http joins repeated Cookie headers into one line.
    const first = await new Promise((resolve, reject) => {
      const sock = net.connect(b.wsPort, '127.0.0.1');
      let buf = Buffer.alloc(0);
      const done = (v) => { sock.destroy(); resolve(v); };
      sock.on('error', reject);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const frame = buf.subarray(end + 4);
        // The first server frame: text, unmasked, a length below 126.
        if (frame.length >= 2 && frame.length >= 2 + (frame[1] & 0x7f)) {
          done(frame.subarray(2, 2 + (frame[1] & 0x7f)).toString());
        }
      });
      sock.on('connect', () => sock.write(`GET /cable HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: actioncable-v1-json\r\n' +
        `Origin: ${ORIGIN}\r\nCookie: cable_jwt=${b.mint('mallory')}\r\n` +
        `Cookie: cable_jwt=${b.mint('alice')}\r\n\r\n`));
      setTimeout(() => done(buf.toString()), 3000);
    });
    assert.deepEqual(JSON.parse(first), { type: 'disconnect', reason: 'unauthorized', reconnect: false });
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
