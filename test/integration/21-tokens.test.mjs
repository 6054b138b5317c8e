// Asymmetric token keys (plugin_opt_jwt_keys_file) with kid selection, issuer and
// audience, forgeries, where the token comes from (query, cookie, Authorization:
// Bearer), and expiry while connected. The keys are generated here with the openssl CLI
// in a temp dir the broker can read after it drops privileges to `mosquitto`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  BUILD, useBroker, rawConnect, actuatorId, mqttConnect,
  isWelcome, isDisconnect, isReply, isMessageFor, notPing,
} from './lib/index.mjs';
import { readableTempDir, waitForLog, observeAll, now } from './fixtures/util.mjs';

const UNAUTHORIZED = { type: 'disconnect', reason: 'unauthorized', reconnect: false };
const TOKEN_TOOL = path.join(BUILD, 'mosquitto-cable-token');
const AUD = 'cable-test';
const ISS = 'https://app.example';

// ---- keys -----------------------------------------------------------------------------
const dir = readableTempDir();
const file = (n) => path.join(dir, n);
function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file('rsa.pem'));
openssl('pkey', '-in', file('rsa.pem'), '-pubout', '-out', file('rsa.pub.pem'));
openssl('genpkey', '-algorithm', 'ED25519', '-out', file('ed.pem'));
openssl('pkey', '-in', file('ed.pem'), '-pubout', '-out', file('ed.pub.pem'));
writeFileSync(file('keys.json'), JSON.stringify({
  keys: [
    { kid: 'rsa-1', alg: 'RS256', public_key_file: file('rsa.pub.pem') },
    { kid: 'ed-1', alg: 'EdDSA', public_key_file: file('ed.pub.pem') },
  ],
}));
for (const n of ['rsa.pem', 'rsa.pub.pem', 'ed.pem', 'ed.pub.pem', 'keys.json']) chmodSync(file(n), 0o644);
const RSA_PRIVATE = readFileSync(file('rsa.pem'));
const RSA_PUBLIC_PEM = readFileSync(file('rsa.pub.pem'), 'utf8');
const ED_PRIVATE = createPrivateKey(readFileSync(file('ed.pem')));

// ---- minting ----------------------------------------------------------------------------
// With the bundled tool, as an operator would.
function tool({ alg, keyFile, kid, user = 'alice', ttl = 600, aud = AUD, iss = ISS, at }) {
  const args = ['--alg', alg, '--key-file', keyFile, '--user', user, '--ttl', String(ttl)];
  if (kid) args.push('--kid', kid);
  if (aud) args.push('--aud', aud);
  if (iss) args.push('--iss', iss);
  if (at !== undefined) args.push('--now', String(at));
  return execFileSync(TOKEN_TOOL, args).toString().trim();
}
const rsaToken = (o = {}) => tool({ alg: 'RS256', keyFile: file('rsa.pem'), kid: 'rsa-1', ...o });
const edToken = (o = {}) => tool({ alg: 'EdDSA', keyFile: file('ed.pem'), kid: 'ed-1', ...o });

// By hand with node's crypto, for the forgeries.
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const claims = (o = {}) => ({ sub: 'alice', aud: AUD, iss: ISS, exp: now() + 600, ...o });
function handMade(header, payload, signer) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer ? signer(Buffer.from(input)).toString('base64url') : ''}`;
}
const edSigner = (data) => cryptoSign(null, data, ED_PRIVATE);
const hmacWith = (secret) => (data) => createHmac('sha256', secret).update(data).digest();

// ---- checks -----------------------------------------------------------------------------
// A refused connection: the upgrade completes, the only frame is the unauthorized
// disconnect, then a close 1000. Like an attacker, it sends a subscribe and a speak at
// once; nothing may reach MQTT (the caller's '#' witness checks).
async function expectUnauthorized(b, url, opts = {}, reason = undefined) {
  const from = b.log().length;
  const c = await rawConnect(url, opts);
  const id = actuatorId(42);
  c.subscribe(id);
  c.perform(id, 'speak', { message: 'forged' });
  const { code } = await c.waitClosed(3000);
  const frames = c.received().filter(notPing).map((x) => x.json ?? x.raw);
  assert.deepEqual({ frames, code }, { frames: [UNAUTHORIZED], code: 1000 },
    'expected exactly the unauthorized disconnect, then close 1000 (no welcome, no confirm)');
  assert.equal(c.frames.count(isWelcome), 0);
  assert.equal(c.frames.count(isReply(id)), 0);
  if (reason) await waitForLog(b, new RegExp(`unauthorized: ${reason}`), 3000, from);
}

async function expectWelcome(url, opts = {}) {
  const c = await rawConnect(url, opts);
  const first = await c.frames.next();
  assert.equal(first.json?.type, 'welcome', first.raw);
  const id = actuatorId(42);
  assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
  return c;
}

describe('keys file with RS256 (kid rsa-1) and EdDSA (kid ed-1), audience and issuer', () => {
  const ctx = useBroker({
    pluginOpts: {
      jwt_secret_file: null,
      jwt_keys_file: file('keys.json'),
      jwt_audience: AUD,
      jwt_issuer: ISS,
      token_cookie: 'cable_token',
      token_cookie_any_origin: 'true', // no Origin check in this file (see 22-origin)
      jwt_leeway: 0,
    },
  });

  test('an RS256 token from mosquitto-cable-token (kid rsa-1) verifies, and the user can speak', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const c = await expectWelcome(b.urlFor(rsaToken({ user: 'alice' })));
    c.perform(actuatorId(42), 'speak', { message: 'rs' });
    const m = await mq.next();
    assert.equal(m.text, '{"user":"alice","message":"rs"}');
  });

  test('an EdDSA token from mosquitto-cable-token (kid ed-1) verifies', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const c = await expectWelcome(b.urlFor(edToken({ user: 'eddie' })));
    c.perform(actuatorId(42), 'speak', { message: 'ed' });
    assert.equal((await mq.next()).text, '{"user":"eddie","message":"ed"}');
  });

  test('the same tokens minted by node (jsonwebtoken RS256, crypto Ed25519) verify', async () => {
    const b = ctx.broker;
    const rs = jwt.sign({ sub: 'nora' }, RSA_PRIVATE, {
      algorithm: 'RS256', keyid: 'rsa-1', expiresIn: '10m', audience: AUD, issuer: ISS,
    });
    await expectWelcome(b.urlFor(rs));
    const ed = handMade({ alg: 'EdDSA', kid: 'ed-1', typ: 'JWT' }, claims({ sub: 'nora' }), edSigner);
    await expectWelcome(b.urlFor(ed));
  });

  test('aud as an array containing the audience verifies', async () => {
    const b = ctx.broker;
    const ed = handMade({ alg: 'EdDSA', kid: 'ed-1' }, claims({ aud: ['other', AUD] }), edSigner);
    await expectWelcome(b.urlFor(ed));
  });

  describe('forgeries: unauthorized, close 1000, nothing reaches MQTT', () => {
    test('unknown kid', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const t = jwt.sign({ sub: 'alice' }, RSA_PRIVATE, {
        algorithm: 'RS256', keyid: 'rsa-2', expiresIn: '10m', audience: AUD, issuer: ISS,
      });
      await expectUnauthorized(b, b.urlFor(t), {}, 'unknown kid');
      await mq.expectNone(300);
    });

    test('a valid signature under the other key (kid ed-1 with an RS256 token): alg mismatch', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const t = jwt.sign({ sub: 'alice' }, RSA_PRIVATE, {
        algorithm: 'RS256', keyid: 'ed-1', expiresIn: '10m', audience: AUD, issuer: ISS,
      });
      await expectUnauthorized(b, b.urlFor(t), {}, 'alg mismatch');
      // And the RSA token with kid rsa-1 but "alg": "EdDSA" in the header.
      const [, p, s] = rsaToken().split('.');
      await expectUnauthorized(b, b.urlFor(`${b64({ alg: 'EdDSA', kid: 'rsa-1' })}.${p}.${s}`), {}, 'alg mismatch');
      await mq.expectNone(300);
    });

    test('alg none, with and without a kid, with and without a signature', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      for (const header of [{ alg: 'none' }, { alg: 'none', kid: 'rsa-1' }, { alg: 'none', kid: 'ed-1' }]) {
        await expectUnauthorized(b, b.urlFor(handMade(header, claims())), {}, 'alg none not accepted');
      }
      const [, , realSig] = rsaToken().split('.');
      await expectUnauthorized(b, b.urlFor(`${b64({ alg: 'none', kid: 'rsa-1' })}.${b64(claims())}.${realSig}`));
      await mq.expectNone(300);
    });

    test('algorithm confusion: HS256 signed with the RSA public key PEM as the secret', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      for (const secret of [RSA_PUBLIC_PEM, RSA_PUBLIC_PEM.trim()]) {
        for (const header of [{ alg: 'HS256', kid: 'rsa-1' }, { alg: 'HS256' }, { alg: 'HS256', typ: 'JWT' }]) {
          await expectUnauthorized(b, b.urlFor(handMade(header, claims(), hmacWith(secret))), {}, 'alg mismatch');
        }
      }
      await mq.expectNone(300);
    });

    test('expired (exp one hour ago; and exp just passed with leeway 0)', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      await expectUnauthorized(b, b.urlFor(rsaToken({ at: now() - 7200, ttl: 3600 })), {}, 'expired');
      await expectUnauthorized(b, b.urlFor(edToken({ at: now() - 62, ttl: 60 })), {}, 'expired');
      await mq.expectNone(300);
    });

    test('wrong audience, missing audience, wrong issuer, missing issuer', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      await expectUnauthorized(b, b.urlFor(rsaToken({ aud: 'other-app' })), {}, 'wrong aud');
      await expectUnauthorized(b, b.urlFor(rsaToken({ aud: null })), {}, 'missing aud');
      await expectUnauthorized(b, b.urlFor(edToken({ iss: 'https://evil.example' })), {}, 'wrong iss');
      await expectUnauthorized(b, b.urlFor(edToken({ iss: null })), {}, 'missing iss');
      const arr = handMade({ alg: 'EdDSA', kid: 'ed-1' }, claims({ aud: ['other', 'cable-test2'] }), edSigner);
      await expectUnauthorized(b, b.urlFor(arr), {}, 'wrong aud');
      await mq.expectNone(300);
    });

    test('truncated tokens', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const t = rsaToken();
      const [h, p, s] = t.split('.');
      const cuts = [
        t.slice(0, -1), // one character short
        t.slice(0, -10),
        `${h}.${p}.${s.slice(0, s.length / 2)}`,
        `${h}.${p}.`,
        `${h}.${p}`,
        `${h}.`,
        h,
        t.slice(0, t.length / 2),
      ];
      for (const cut of cuts) await expectUnauthorized(b, b.urlFor(cut));
      const e = edToken();
      await expectUnauthorized(b, b.urlFor(e.slice(0, -1)));
      await mq.expectNone(300);
    });

    test('a signature from the right key over a different payload', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const [h, , s] = rsaToken({ user: 'alice' }).split('.');
      await expectUnauthorized(b, b.urlFor(`${h}.${b64(claims({ sub: 'root' }))}.${s}`), {}, 'bad signature');
      await mq.expectNone(300);
    });
  });

  test('a refused client that sends commands right after the upgrade still reads the disconnect (100 tries)', async () => {
    // The same check as above, many times: the disconnect and the close frame must not
    // be lost when the client's own frames are still in flight.
    const b = ctx.broker;
    const bad = [];
    const id = actuatorId(42);
    for (let i = 0; i < 100; i++) {
      const c = await rawConnect(b.urlFor(handMade({ alg: 'none' }, claims())));
      c.subscribe(id);
      c.perform(id, 'speak', { message: 'forged' });
      const { code } = await c.waitClosed(3000);
      const frames = c.received().filter(notPing).map((x) => x.json ?? x.raw);
      const ok = code === 1000 && frames.length === 1 && JSON.stringify(frames[0]) === JSON.stringify(UNAUTHORIZED);
      if (!ok) bad.push({ i, code, frames });
    }
    assert.deepEqual(bad, [], `${bad.length} of 100 refused connections did not get the disconnect and close 1000`);
  });

  describe('where the token comes from', () => {
    test('a cookie (plugin_opt_token_cookie cable_token)', async () => {
      const b = ctx.broker;
      await expectWelcome(b.wsUrl, { headers: { Cookie: `cable_token=${rsaToken()}` } });
      await expectWelcome(b.wsUrl, { headers: { Cookie: `_session=abc; cable_token=${edToken()}; theme=dark` } });
    });

    test('a cookie of another name is not a token', async () => {
      const b = ctx.broker;
      await expectUnauthorized(b, b.wsUrl, { headers: { Cookie: `jid=${rsaToken()}` } }, 'no token');
    });

    test('Authorization: Bearer', async () => {
      const b = ctx.broker;
      await expectWelcome(b.wsUrl, { headers: { Authorization: `Bearer ${edToken()}` } });
      await expectWelcome(b.wsUrl, { headers: { Authorization: `bearer ${rsaToken()}` } });
    });

    test('a forged token in a cookie or a Bearer header is refused the same way', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const forged = handMade({ alg: 'none' }, claims());
      await expectUnauthorized(b, b.wsUrl, { headers: { Cookie: `cable_token=${forged}` } }, 'alg none not accepted');
      await expectUnauthorized(b, b.wsUrl, { headers: { Authorization: `Bearer ${forged}` } }, 'alg none not accepted');
      await expectUnauthorized(b, b.wsUrl, { headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }, 'no token');
      await mq.expectNone(300);
    });

    test('the query parameter comes first: a bad ?jid= is not rescued by a good cookie or header', async () => {
      const b = ctx.broker;
      await expectUnauthorized(b, b.urlFor('not-a-token'), {
        headers: { Cookie: `cable_token=${rsaToken()}`, Authorization: `Bearer ${edToken()}` },
      }, 'malformed token');
    });
  });

  test('token expiry while connected: token_expired, reconnect false, then a close', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(edToken({ ttl: 3 })));
    await c.welcome();
    const id = actuatorId(42);
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    const f = await c.waitFor(isDisconnect, 10_000, 'token_expired disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'token_expired', reconnect: false });
    const { code } = await c.waitClosed(3000);
    assert.equal(code, 1000, 'close code');
    // Gone for good: a device message on 42 reaches nobody on that connection.
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/state', '"late"');
    await c.frames.expectNone(300, isMessageFor(id), 'message after expiry');
  });

  // The plugin keeps one timer for all tokens (a heap by exp): connections that expire in
  // any order, or leave before they expire, must each end at their own time.
  test('many tokens expire each at its own time; early leavers and long tokens unaffected', async () => {
    const b = ctx.broker;
    const open = async (ttl, user) => {
      const c = await rawConnect(b.urlFor(edToken({ ttl, user })));
      await c.welcome();
      return c;
    };
    const t0 = Date.now();
    // exp has a resolution of one second and minting takes a while: 2 s apart each.
    const late = await open(6, 'late');
    const early = await open(2, 'early');
    const leaver = await open(4, 'leaver');
    const mid = await open(4, 'mid');
    const long = await open(600, 'long');
    await leaver.close(); // leaves the heap from the middle
    const ended = {};
    await Promise.all([['early', early], ['mid', mid], ['late', late]].map(async ([n, c]) => {
      const f = await c.waitFor(isDisconnect, 12_000, `${n}: token_expired disconnect`);
      assert.equal(f.json.reason, 'token_expired', n);
      ended[n] = Date.now() - t0;
    }));
    assert.ok(ended.early < ended.mid && ended.mid < ended.late,
      `expired in exp order: ${JSON.stringify(ended)}`);
    assert.ok(ended.late >= 4500, `late (6 s token) not closed early: ${ended.late} ms`);
    const id = actuatorId(42);
    assert.equal((await long.subscribeAndWait(id)).json.type, 'confirm_subscription',
      'the 600 s connection is still served');
  });
});
