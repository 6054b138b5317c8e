// ECDSA signatures have two spellings: (r, s) and (r, n - s) both verify. OpenSSL-based
// signers (node's jsonwebtoken, Ruby's jwt gem) produce the high-S one about half the
// time, so by default both are accepted; plugin_opt_jwt_ecdsa_low_s true refuses the
// high-S one as non-canonical (docs/tokens.md). Both tokens here carry the same claims
// under one ES256 key, made by node's crypto; the high one is the low one's twin.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { useBroker, rawConnect, isWelcome, notPing } from './lib/index.mjs';
import { readableTempDir, waitForLog, now } from './fixtures/util.mjs';

const UNAUTHORIZED = { type: 'disconnect', reason: 'unauthorized', reconnect: false };
// The order of P-256 (FIPS 186-4, D.1.2.3).
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

const dir = readableTempDir();
const file = (n) => path.join(dir, n);
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
  '-out', file('ec.pem')], { stdio: ['ignore', 'ignore', 'pipe'] });
execFileSync('openssl', ['pkey', '-in', file('ec.pem'), '-pubout', '-out', file('ec.pub.pem')],
  { stdio: ['ignore', 'ignore', 'pipe'] });
writeFileSync(file('keys.json'), JSON.stringify({
  keys: [{ kid: 'ec-1', alg: 'ES256', public_key_file: file('ec.pub.pem') }],
}));
for (const n of ['ec.pem', 'ec.pub.pem', 'keys.json']) chmodSync(file(n), 0o644);
const EC_PRIVATE = createPrivateKey(readFileSync(file('ec.pem')));

const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
const hex = (buf) => BigInt(`0x${buf.toString('hex') || '0'}`);
const bytes32 = (v) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');

// One token signed once, and its twin: { low, high } with the same header and claims.
function twins(sub) {
  const input = `${b64({ alg: 'ES256', kid: 'ec-1', typ: 'JWT' })}.${b64({ sub, exp: now() + 600 })}`;
  const sig = cryptoSign('sha256', Buffer.from(input), { key: EC_PRIVATE, dsaEncoding: 'ieee-p1363' });
  const r = sig.subarray(0, 32);
  const s = hex(sig.subarray(32));
  const other = N - s;
  const [lo, hi] = s <= N / 2n ? [s, other] : [other, s];
  const tok = (v) => `${input}.${Buffer.concat([r, bytes32(v)]).toString('base64url')}`;
  return { low: tok(lo), high: tok(hi) };
}

async function expectWelcome(url) {
  const c = await rawConnect(url);
  const first = await c.frames.next();
  assert.equal(first.json?.type, 'welcome', first.raw);
  c.close();
}

async function expectUnauthorized(b, url) {
  const from = b.log().length;
  const c = await rawConnect(url);
  const { code } = await c.waitClosed(3000);
  const frames = c.received().filter(notPing).map((x) => x.json ?? x.raw);
  assert.deepEqual({ frames, code }, { frames: [UNAUTHORIZED], code: 1000 });
  assert.equal(c.frames.count(isWelcome), 0);
  await waitForLog(b, /unauthorized: bad signature: high-S ECDSA \(not canonical\)/, 3000, from);
}

const opts = { jwt_secret_file: null, jwt_keys_file: file('keys.json') };

describe('ES256 by default: both spellings of a signature are accepted', () => {
  const ctx = useBroker({ pluginOpts: opts });

  test('the low-S token and its high-S twin both get a welcome', async () => {
    const { low, high } = twins('alice');
    assert.notEqual(low, high);
    await expectWelcome(ctx.broker.urlFor(low));
    await expectWelcome(ctx.broker.urlFor(high));
  });
});

describe('ES256 with plugin_opt_jwt_ecdsa_low_s true: high-S is refused', () => {
  const ctx = useBroker({ pluginOpts: { ...opts, jwt_ecdsa_low_s: 'true' } });

  test('the low-S token gets a welcome, its high-S twin is unauthorized with a log line', async () => {
    const { low, high } = twins('alice');
    await expectWelcome(ctx.broker.urlFor(low));
    await expectUnauthorized(ctx.broker, ctx.broker.urlFor(high));
  });
});
