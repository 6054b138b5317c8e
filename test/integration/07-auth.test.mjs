// Authentication: an HS256 JWT in the `jid` query parameter, checked against the
// secret file. Anything else gets {"type":"disconnect","reason":"unauthorized",
// "reconnect":false} and a close with code 1000, and never a welcome.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  useBroker, rawConnect, createCable, actuatorParams, actuatorId, sleep,
  isWelcome, isDisconnect, isReply, notPing,
} from './lib/index.mjs';

const UNAUTHORIZED = { type: 'disconnect', reason: 'unauthorized', reconnect: false };
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// Connects, sends a subscribe at once, and checks the unauthorized sequence.
async function expectUnauthorized(url) {
  const c = await rawConnect(url);
  c.subscribe(actuatorId(42));
  const f = await c.waitFor(isDisconnect, 3000, 'disconnect');
  assert.deepEqual(f.json, UNAUTHORIZED, f.raw);
  const { code } = await c.waitClosed(3000);
  assert.equal(code, 1000, 'close code');
  const types = c.received().filter(notPing).map((x) => x.json?.type ?? x.raw);
  assert.deepEqual(types, ['disconnect'], 'the disconnect is the only frame: no welcome, no confirm');
  assert.equal(c.frames.count(isWelcome), 0);
  assert.equal(c.frames.count(isReply(actuatorId(42))), 0);
}

describe('with a JWT secret (default: authentication required)', () => {
  const ctx = useBroker();

  test('a valid HS256 token (sub, exp) gets a welcome', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    const first = await c.frames.next();
    assert.equal(first.json?.type, 'welcome');
    assert.equal(c.closeInfo, null);
  });

  test('missing token', async () => {
    await expectUnauthorized(ctx.broker.wsUrl);
  });

  test('empty token', async () => {
    await expectUnauthorized(`${ctx.broker.wsUrl}?jid=`);
  });

  test('token in another query parameter is not a token', async () => {
    const b = ctx.broker;
    await expectUnauthorized(`${b.wsUrl}?token=${b.mint('alice')}`);
  });

  test('garbage tokens', async () => {
    const b = ctx.broker;
    for (const t of ['abc', 'a.b.c', '...', `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'alice' })}.`]) {
      await expectUnauthorized(b.urlFor(t));
    }
  });

  test('token signed with a different secret', async () => {
    const b = ctx.broker;
    const other = randomBytes(48).toString('base64url');
    await expectUnauthorized(b.urlFor(b.mint('alice', { secret: other })));
  });

  test('expired token (exp one hour ago)', async () => {
    const b = ctx.broker;
    const t = b.mint('alice', { expiresIn: null, claims: { exp: now() - 3600, iat: now() - 7200 } });
    await expectUnauthorized(b.urlFor(t));
  });

  test('token not valid yet (nbf in one hour)', async () => {
    const b = ctx.broker;
    const t = b.mint('alice', { claims: { nbf: now() + 3600 } });
    await expectUnauthorized(b.urlFor(t));
  });

  test('alg "none" (unsigned) token', async () => {
    const b = ctx.broker;
    const claims = { sub: 'alice', exp: now() + 600 };
    await expectUnauthorized(b.urlFor(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`));
    await expectUnauthorized(b.urlFor(`${b64url({ alg: 'None', typ: 'JWT' })}.${b64url(claims)}.`));
  });

  test('tampered payload (sub changed, signature kept)', async () => {
    const b = ctx.broker;
    const [h, , s] = b.mint('alice').split('.');
    const forged = `${h}.${b64url({ sub: 'admin', exp: now() + 600 })}.${s}`;
    await expectUnauthorized(b.urlFor(forged));
  });

  test('token without a sub (no user)', async () => {
    const b = ctx.broker;
    await expectUnauthorized(b.urlFor(b.mint(null)));
  });

  test('the stock client with a bad token is told not to reconnect, and does not', async () => {
    const b = ctx.broker;
    const cable = createCable(b.urlFor(b.mint('alice', { secret: 'x'.repeat(64) })));
    const sub = cable.subscribe(actuatorParams(42));
    const arg = await sub.disconnected(5000);
    assert.deepEqual(arg, { willAttemptReconnect: false });
    assert.equal(cable.connection.monitor.isRunning(), false, 'monitor stopped');
    const ws = cable.webSocket;
    await sleep(1000);
    assert.equal(cable.webSocket, ws, 'no new socket');
    assert.equal(sub.events.count((e) => e.type === 'connected'), 0);
  });

  test('a valid token still works after many rejected ones', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
  });
});

describe('with plugin_opt_auth anonymous', () => {
  const ctx = useBroker({ pluginOpts: { auth: 'anonymous' } });

  test('a connection without a token is welcomed and can subscribe', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.wsUrl);
    await c.welcome();
    assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
  });
});
