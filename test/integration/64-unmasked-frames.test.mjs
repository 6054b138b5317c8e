// RFC 6455 section 5.1: a client masks every frame, and a server that receives an
// unmasked one should close the connection (1002). libwebsockets 4.1.6 does not: its
// server parser (lib/roles/ws/ops-ws.c) reads the mask bit and unmasks only when it is
// set, and no public API tells the protocol callback whether a frame was masked, so the
// plugin cannot refuse one. This test records what actually happens, byte by byte over a
// raw TCP socket: an unmasked text frame is handled like a masked one. Why that is
// harmless here is in docs/operations.md (Threat model).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { useBroker, onCleanup, actuatorId } from './lib/index.mjs';

const ctx = useBroker();

// One client text frame, masked or not (payload < 126 bytes... or 16-bit length).
function frame(text, masked) {
  const payload = Buffer.from(text);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, (masked ? 0x80 : 0) | len])
    : Buffer.from([0x81, (masked ? 0x80 : 0) | 126, len >> 8, len & 255]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([head, key, body]);
}

// Server frames are unmasked text frames; parse what arrived so far into messages.
function parseServerFrames(buf) {
  const out = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    let len = buf[off + 1] & 127;
    let p = off + 2;
    if (len === 126) { len = buf.readUInt16BE(p); p += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(p)); p += 8; }
    if (p + len > buf.length) break;
    out.push({ opcode: buf[off] & 15, text: buf.subarray(p, p + len).toString() });
    off = p + len;
  }
  return out;
}

async function rawSocket(b) {
  const s = net.connect({ host: '127.0.0.1', port: b.wsPort });
  onCleanup(() => s.destroy());
  await new Promise((r, j) => { s.once('connect', r); s.once('error', j); });
  let data = Buffer.alloc(0);
  s.on('data', (d) => { data = Buffer.concat([data, d]); });
  s.write(`GET /cable?jid=${b.mint('alice')} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: actioncable-v1-json\r\n\r\n');
  const frames = () => {
    const end = data.indexOf('\r\n\r\n');
    return end < 0 ? [] : parseServerFrames(data.subarray(end + 4));
  };
  const waitFor = async (pred, what) => {
    const deadline = Date.now() + 3000;
    for (;;) {
      const f = frames().find(pred);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no ${what}; got ${JSON.stringify(frames())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor((f) => f.text.includes('"welcome"'), 'welcome');
  assert.match(data.toString('latin1'), /^HTTP\/1\.1 101/);
  return { s, waitFor };
}

test('a masked subscribe is confirmed (the control)', async () => {
  const { s, waitFor } = await rawSocket(ctx.broker);
  s.write(frame(JSON.stringify({ command: 'subscribe', identifier: actuatorId(1) }), true));
  const f = await waitFor((x) => x.text.includes('confirm_subscription'), 'confirm');
  assert.equal(JSON.parse(f.text).identifier, actuatorId(1));
});

test('libwebsockets 4.1.6 accepts an unmasked client frame: the subscribe is confirmed, the connection stays open', async () => {
  const { s, waitFor } = await rawSocket(ctx.broker);
  s.write(frame(JSON.stringify({ command: 'subscribe', identifier: actuatorId(2) }), false));
  const f = await waitFor((x) => x.text.includes('confirm_subscription'), 'confirm');
  assert.equal(JSON.parse(f.text).identifier, actuatorId(2));
  assert.ok(!s.destroyed, 'not closed (no 1002)');
});
