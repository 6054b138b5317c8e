// Handshake: sub-protocol negotiation, welcome with a sid, the stock client connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  useBroker, rawConnect, isWelcome, notPing, createCable, actuatorParams, sleep,
} from './lib/index.mjs';

const ctx = useBroker();

test('offers [v1-json, unsupported]: actioncable-v1-json is selected and welcome (with sid) comes first', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  assert.equal(c.protocol, 'actioncable-v1-json');
  const first = await c.frames.next(3000, 'first frame');
  assert.equal(first.binary, false, 'frames are text frames');
  assert.equal(first.json?.type, 'welcome', `first frame is welcome, got ${first.raw}`);
  assert.equal(typeof first.json.sid, 'string');
  assert.ok(first.json.sid.length > 0, 'sid is not empty');
  // Exactly one welcome.
  await sleep(300);
  assert.equal(c.frames.count(isWelcome), 1);
});

test('every connection gets its own sid', async () => {
  const b = ctx.broker;
  const sids = new Set();
  for (let i = 0; i < 3; i++) {
    const c = await rawConnect(b.urlFor(b.mint(`user${i}`)));
    sids.add((await c.welcome()).json.sid);
  }
  assert.equal(sids.size, 3, `sids: ${[...sids].join(', ')}`);
});

// The server takes the first protocol the client lists that it knows, in the client's
// order, as Rails' own server (websocket-driver) does; the stock client lists
// actioncable-v1-json first. (libwebsockets 4.1 selects this way and offers no hook to
// re-select; docs/protocol.md.)
test('protocols are chosen in the order the client lists them, as Rails does', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')), {
    protocols: ['actioncable-unsupported', 'actioncable-v1-json'],
  });
  assert.equal(c.protocol, 'actioncable-unsupported');
  const d = await rawConnect(b.urlFor(b.mint('alice')), {
    protocols: ['actioncable-v1-json', 'actioncable-unsupported'],
  });
  assert.equal(d.protocol, 'actioncable-v1-json');
  await d.welcome();
});

test('offers only actioncable-unsupported: that protocol is selected', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')), { protocols: ['actioncable-unsupported'] });
  assert.equal(c.protocol, 'actioncable-unsupported');
});

test('an unrelated extra protocol is never selected; anycable-token.* is never echoed', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')), {
    protocols: ['anycable-token.abc', 'actioncable-v1-json', 'actioncable-unsupported', 'chat'],
  });
  assert.equal(c.protocol, 'actioncable-v1-json');
  await c.welcome();
});

test('the stock @rails/actioncable consumer connects with actioncable-v1-json and subscribes', async () => {
  const b = ctx.broker;
  const cable = createCable(b.urlFor(b.mint('alice')));
  const sub = cable.subscribe(actuatorParams(42));
  assert.equal(await cable.opened(), 'actioncable-v1-json');
  const arg = await sub.confirmed();
  assert.deepEqual(arg, { reconnected: false });
  assert.equal(cable.connection.monitor.isRunning(), true);
});

test('an upgrade on another path is refused', async () => {
  const b = ctx.broker;
  const url = `ws://127.0.0.1:${b.wsPort}/not-cable?jid=${b.mint('alice')}`;
  await assert.rejects(rawConnect(url), (e) => {
    assert.ok(!/no upgrade/.test(e.message), `the server must answer, got: ${e.message}`);
    return true;
  });
});

test('a plain HTTP GET to the cable path gets an HTTP error status, not an upgrade or a hang', async () => {
  const b = ctx.broker;
  const status = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: b.wsPort, path: '/cable', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => { req.destroy(); reject(new Error('no HTTP answer within 3 s')); });
    req.on('error', reject);
  });
  assert.ok(status >= 400 && status < 500, `status ${status}`);
});

test('welcome is the only frame before the client says anything (apart from pings)', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  await sleep(500);
  assert.deepEqual(c.received().filter(notPing).map((f) => f.json?.type), ['welcome']);
});

// libwebsockets 4.1 cannot parse a protocol list of 128 bytes or more (AnyCable's
// anycable-token.<jwt> makes one); the plugin answers 400 with a reason instead of the
// silent hang-up libwebsockets would give.
test('an over-long Sec-WebSocket-Protocol (a token sub-protocol) gets HTTP 400', async () => {
  const b = ctx.broker;
  const { default: WebSocket } = await import('ws');
  const status = await new Promise((resolve, reject) => {
    const ws = new WebSocket(b.wsUrl, ['actioncable-v1-json', `anycable-token.${b.mint('alice')}`]);
    ws.on('open', () => { ws.close(); reject(new Error('upgraded')); });
    ws.on('unexpected-response', (req, res) => { res.resume(); resolve(res.statusCode); });
    ws.on('error', reject);
  });
  assert.equal(status, 400);
  for (let i = 0; i < 40 && !/Sec-WebSocket-Protocol is over 127 bytes/.test(b.log()); i++) await sleep(50);
  assert.match(b.log(), /Sec-WebSocket-Protocol is over 127 bytes/);
});
