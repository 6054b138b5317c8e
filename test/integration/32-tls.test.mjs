// wss:// through libwebsockets and OpenSSL (plugin_opt_tls_cert_file / _key_file /
// _ca_file), with a test CA and a server certificate for 127.0.0.1 and localhost made
// here with the openssl CLI. TLS 1.2 is the minimum.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import path from 'node:path';
import WebSocket from 'ws';
import {
  useBroker, RawClient, DEFAULT_PROTOCOLS, mqttConnect, actuatorId, isMessageFor, onCleanup,
} from './lib/index.mjs';
import { readableTempDir } from './fixtures/util.mjs';

// ---- a test CA and a server certificate ---------------------------------------------
const dir = readableTempDir('cable-it-tls-');
const file = (n) => path.join(dir, n);
function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'),
  '-days', '2', '-subj', '/CN=mosquitto-cable test CA',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('server.key'), '-out', file('server.csr'),
  '-subj', '/CN=localhost');
writeFileSync(file('server.ext'), [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  '',
].join('\n'));
openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
  '-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext'));
// A second, unrelated CA: its trust must not be enough.
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('other-ca.key'), '-out', file('other-ca.pem'),
  '-days', '2', '-subj', '/CN=some other CA');
// The broker drops privileges to `mosquitto` before it reads them (test keys only).
for (const n of ['ca.pem', 'server.pem', 'server.key']) chmodSync(file(n), 0o644);
const CA = readFileSync(file('ca.pem'));
const OTHER_CA = readFileSync(file('other-ca.pem'));

// ---- clients --------------------------------------------------------------------------
// A ws client with TLS options; resolves a RawClient once upgraded, rejects otherwise.
function wssConnect(url, tlsOpts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, DEFAULT_PROTOCOLS, tlsOpts);
    const client = new RawClient(ws, url);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no upgrade within 5 s')); }, 5000);
    ws.once('open', () => { clearTimeout(timer); resolve(client); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      const e = new Error(`HTTP ${res.statusCode}`);
      e.statusCode = res.statusCode;
      reject(e);
    });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// A bare TLS handshake; resolves { protocol } or { error }.
function handshake(port, opts) {
  return new Promise((resolve) => {
    let sock;
    try {
      sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: CA, ...opts });
    } catch (error) {
      resolve({ error, local: true });
      return;
    }
    onCleanup(() => sock.destroy());
    sock.once('secureConnect', () => { const protocol = sock.getProtocol(); sock.end(); resolve({ protocol }); });
    sock.once('error', (error) => resolve({ error }));
  });
}

describe('wss:// with a test CA', () => {
  const ctx = useBroker({
    pluginOpts: {
      tls_cert_file: file('server.pem'),
      tls_key_file: file('server.key'),
      tls_ca_file: file('ca.pem'),
    },
  });
  const wss = (host, token) => `wss://${host}:${ctx.broker.wsPort}/cable?jid=${encodeURIComponent(token)}`;

  test('a client trusting the test CA gets a welcome over wss://127.0.0.1', async () => {
    const b = ctx.broker;
    const c = await wssConnect(wss('127.0.0.1', b.mint('alice')), { ca: CA });
    const first = await c.frames.next();
    assert.equal(first.json?.type, 'welcome', first.raw);
    assert.equal(c.protocol, 'actioncable-v1-json');
    // And the whole path works: subscribe, device message, speak.
    const id = actuatorId(42);
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/state', '{"tls":true}');
    assert.deepEqual((await c.waitFor(isMessageFor(id))).json.message, { tls: true });
    await dev.subscribe('actuators/42/cmd');
    c.perform(id, 'speak', { message: 'over tls' });
    assert.equal((await dev.next()).text, '{"user":"alice","message":"over tls"}');
  });

  // Frames go to the socket whole (not in receive-buffer-sized pieces), so a large one
  // is a large SSL_write that the kernel may take in parts; lws finishes it later.
  test('large frames and a burst of them arrive whole and in order over wss', async () => {
    const b = ctx.broker;
    const c = await wssConnect(wss('127.0.0.1', b.mint('alice')), { ca: CA });
    await c.welcome();
    const id = actuatorId(42);
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    const dev = await mqttConnect(b.mqttUrl);
    const big = (i, n) => JSON.stringify({ i, pad: String(i % 10).repeat(n) });
    await dev.publish('actuators/42/state', big(0, 200_000));
    for (let i = 1; i <= 25; i++) dev.publish('actuators/42/state', big(i, 16_000));
    for (let i = 0; i <= 25; i++) {
      const f = await c.waitFor(isMessageFor(id), 10_000, `message ${i}`);
      assert.equal(f.json.message.i, i);
      assert.equal(f.json.message.pad, String(i % 10).repeat(i ? 16_000 : 200_000));
    }
  });

  test('the certificate also verifies for wss://localhost', async () => {
    const b = ctx.broker;
    const c = await wssConnect(wss('localhost', b.mint('alice')), { ca: CA });
    await c.welcome();
  });

  test('a client that does not trust the CA refuses the server (and the broker carries on)', async () => {
    const b = ctx.broker;
    await assert.rejects(wssConnect(wss('127.0.0.1', b.mint('alice')), {}),
      (e) => /self[- ]signed|unable to (get|verify)|certificate/i.test(`${e.code} ${e.message}`));
    await assert.rejects(wssConnect(wss('127.0.0.1', b.mint('alice')), { ca: OTHER_CA }),
      (e) => /self[- ]signed|unable to (get|verify)|certificate/i.test(`${e.code} ${e.message}`));
    const c = await wssConnect(wss('127.0.0.1', b.mint('alice')), { ca: CA });
    await c.welcome();
  });

  test('a bad token over wss gets the same unauthorized disconnect and close 1000', async () => {
    const b = ctx.broker;
    const c = await wssConnect(wss('127.0.0.1', 'not.a.token'), { ca: CA });
    const f = await c.frames.next();
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'unauthorized', reconnect: false });
    assert.equal((await c.waitClosed()).code, 1000);
  });

  test('plain ws:// to the TLS port does not upgrade', async () => {
    const b = ctx.broker;
    await assert.rejects(wssConnect(`ws://127.0.0.1:${b.wsPort}/cable?jid=${b.mint('alice')}`, {}));
  });

  test('GET /health over https answers 200', async () => {
    const b = ctx.broker;
    const status = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: b.wsPort, path: '/health', ca: CA, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
    assert.equal(status, 200);
  });

  test('TLS 1.2 and TLS 1.3 clients are accepted', async () => {
    const b = ctx.broker;
    const r12 = await handshake(b.wsPort, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assert.equal(r12.protocol, 'TLSv1.2', String(r12.error));
    const r13 = await handshake(b.wsPort, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    assert.equal(r13.protocol, 'TLSv1.3', String(r13.error));
  });

  test('a TLS 1.1-only client is refused', async (t) => {
    const b = ctx.broker;
    // OpenSSL 3 disables TLS < 1.2 at its default security level, on the client side
    // too; SECLEVEL=0 lets this client at least offer TLS 1.1.
    const r = await handshake(b.wsPort, {
      minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    if (r.local || r.error?.code === 'ERR_SSL_NO_PROTOCOLS_AVAILABLE') {
      // Node/OpenSSL here refuses to even offer TLS 1.1: nothing reached the server,
      // so there is nothing to assert about the server.
      t.skip(`this node cannot offer TLS 1.1: ${r.error?.code} ${r.error?.message}`);
      return;
    }
    assert.ok(r.error, `the handshake succeeded with ${r.protocol}`);
    // The server answers the TLS 1.1 ClientHello with a protocol_version alert (70).
    assert.equal(r.error.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${r.error.code} ${r.error.message}`);
    // The broker still serves TLS 1.2+ clients afterwards.
    const c = await wssConnect(wss('127.0.0.1', b.mint('alice')), { ca: CA });
    await c.welcome();
  });
});
