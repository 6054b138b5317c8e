// Documented behaviours at the edges, each against the real broker:
//  - a channel map with a generic channel and no ACL file stops the broker at start-up
//    with one line naming both options (docs/configuration.md, plugin_opt_acl_file);
//  - every path other than plugin_opt_path, /health and /metrics is HTTP 404, for plain
//    requests and for WebSocket upgrades alike (plugin_opt_path);
//  - plugin_opt_max_connections_per_ip: the connection over the cap is told
//    too_many_connections (reconnect:true) and closed with 1013, the others stay, and a
//    freed slot can be used again;
//  - the secret file: one trailing newline (\n or \r\n) is not part of the secret, a
//    second newline is (docs/tokens.md, "the secret-file rule").
import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import jwt from 'jsonwebtoken';
import {
  startBroker, useBroker, rawConnect, runCleanups, onCleanup, READY_LINE, isPing, isDisconnect,
  authVerdict,
} from './lib/index.mjs';

const GENERIC = JSON.stringify({
  channels: { TopicChannel: { generic: true, actions: { publish: { qos: 0, retain: false } } } },
});

describe('a generic channel without plugin_opt_acl_file', () => {
  afterEach(runCleanups);

  test('stops the broker at start-up with a line naming both options', async () => {
    let err = null;
    try {
      const b = await startBroker({
        files: { 'channels.json': GENERIC },
        pluginOpts: { channels_file: '$DIR/channels.json' },
      });
      await b.stop();
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'the broker must not start');
    assert.ok(err.exit, `the broker must exit by itself, not hang: ${err.message}`);
    assert.notEqual(err.exit.code, 0);
    assert.ok(!err.log.includes(READY_LINE), 'never said it was listening');
    const line = err.log.split('\n').find((l) => l.includes('generic channel'));
    assert.ok(line, `a line says why; log:\n${err.log}`);
    assert.match(line, /plugin_opt_channels_file/);
    assert.match(line, /plugin_opt_acl_file/);
  });

  test('the same map with an ACL file starts', async () => {
    const b = await startBroker({
      files: { 'channels.json': GENERIC, 'acl': 'topic read public/#\n' },
      pluginOpts: { channels_file: '$DIR/channels.json', acl_file: '$DIR/acl' },
    });
    onCleanup(() => b.stop());
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    const id = JSON.stringify({ channel: 'TopicChannel', topic: 'public/#' });
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
  });
});

// One raw HTTP/1.1 request; resolves with the status code and body.
function httpRequest(port, head) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error(`no answer to ${head.split('\r\n')[0]}`)); });
    sock.on('data', (d) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number((/content-length:\s*(\d+)/i.exec(data) || [])[1] ?? NaN);
      if (Number.isNaN(len) || data.length >= end + 4 + len) sock.end();
    });
    sock.on('end', () => resolve({ status: Number(data.split(' ')[1]), text: data }));
    sock.on('close', () => resolve({ status: Number(data.split(' ')[1]), text: data }));
    sock.on('error', reject);
    sock.write(head);
  });
}

const upgradeHead = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n` +
  'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Protocol: actioncable-v1-json\r\n\r\n';
const getHead = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

describe('other HTTP paths', () => {
  const ctx = useBroker();
  const OTHER = ['/', '/index.html', '/cablex', '/cable/x', '/Cable', '/health/x', '/metricsx',
    '/../cable', '/%2e%2e/etc/passwd'];

  test('a plain GET on any other path is 404 Page not found', async () => {
    const b = ctx.broker;
    for (const p of OTHER) {
      const r = await httpRequest(b.wsPort, getHead(p));
      assert.equal(r.status, 404, `GET ${p}: ${r.text}`);
      assert.match(r.text, /Page not found/, `GET ${p}`);
    }
    // The documented exceptions answer 200.
    assert.equal((await httpRequest(b.wsPort, getHead('/health'))).status, 200);
    assert.equal((await httpRequest(b.wsPort, getHead('/metrics'))).status, 200);
  });

  test('a WebSocket upgrade on any other path is 404, never 101', async () => {
    const b = ctx.broker;
    const base = `ws://127.0.0.1:${b.wsPort}`;
    const token = b.mint('alice');
    for (const p of ['/', '/cablex', '/cable/x', '/Cable', '/health', '/metrics']) {
      const r = await httpRequest(b.wsPort, upgradeHead(`${p}?jid=${token}`));
      assert.equal(r.status, 404, `upgrade on ${p}: ${r.text.slice(0, 200)}`);
      await assert.rejects(rawConnect(`${base}${p}?jid=${token}`), (e) => e.statusCode === 404, p);
    }
    // The configured path still upgrades.
    const c = await rawConnect(b.urlFor(token));
    await c.welcome();
  });
});

describe('plugin_opt_max_connections_per_ip 3', () => {
  const ctx = useBroker({ pluginOpts: { max_connections_per_ip: 3 } });

  test('the fourth connection from 127.0.0.1 is refused with too_many_connections, 1013', async () => {
    const b = ctx.broker;
    const open = [];
    for (let i = 0; i < 3; i++) {
      const c = await rawConnect(b.urlFor(b.mint(`user${i}`)));
      await c.welcome();
      open.push(c);
    }
    const from = b.log().length;
    const fourth = await rawConnect(b.urlFor(b.mint('user3')));
    const f = await fourth.waitFor((x) => isDisconnect(x) || x.json?.type === 'welcome', 5000, 'disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'too_many_connections', reconnect: true });
    assert.equal((await fourth.waitClosed(5000)).code, 1013);
    assert.match(b.log().slice(from), /plugin_opt_max_connections_per_ip/);
    // Different users, one address: the three stay open and keep receiving pings.
    const t = Date.now();
    for (const c of open) {
      await c.waitFor((x) => isPing(x) && x.at >= t, 8000, 'a ping after the refusal');
      assert.equal(c.closeInfo, null);
    }
    // A freed slot is usable again, and refusals did not leak slots.
    await open.pop().close();
    let again = null;
    for (let i = 0; i < 50 && !again; i++) {
      const c = await rawConnect(b.urlFor(b.mint('user4')));
      const g = await c.waitFor((x) => isDisconnect(x) || x.json?.type === 'welcome', 5000, 'reply');
      if (g.json.type === 'welcome') again = c;
      else { await c.close(); await new Promise((r) => setTimeout(r, 100)); }
    }
    assert.ok(again, 'a connection is accepted once one of the three has closed');
    const fifth = await rawConnect(b.urlFor(b.mint('user5')));
    const h = await fifth.waitFor((x) => isDisconnect(x) || x.json?.type === 'welcome', 5000, 'reply');
    assert.equal(h.json.reason, 'too_many_connections', 'the cap still holds');
  });
});

describe('the secret file\'s trailing newline', () => {
  afterEach(runCleanups);
  const SECRET = 'k'.repeat(40);

  const verdict = (b, secret) =>
    authVerdict(b.urlFor(jwt.sign({ sub: 'alice' }, secret, { algorithm: 'HS256', expiresIn: 60 })));

  for (const [name, file, good, bad] of [
    ['one \\n is ignored', `${SECRET}\n`, SECRET, `${SECRET}\n`],
    ['one \\r\\n is ignored', `${SECRET}\r\n`, SECRET, `${SECRET}\r`],
    ['of two \\n only the last is ignored', `${SECRET}\n\n`, `${SECRET}\n`, SECRET],
    ['a lone \\r is part of the secret', `${SECRET}\r`, `${SECRET}\r`, SECRET],
  ]) {
    test(name, async () => {
      const b = await startBroker({ secret: file });
      onCleanup(() => b.stop());
      assert.equal(await verdict(b, good), 'welcome', `token signed with ${JSON.stringify(good)}`);
      assert.equal(await verdict(b, bad), 'unauthorized', `token signed with ${JSON.stringify(bad)}`);
    });
  }
});
