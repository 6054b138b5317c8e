// A short, complete session for the valgrind run: connect (good and bad tokens),
// subscribe (confirm, reject, duplicate), device messages in, speak out, unsubscribe,
// malformed input, an oversized message, and an abrupt TCP close mid-frame; answers
// (a refusal, an acknowledged MQTT 5 request, a device's reply) with subscriptions
// that end before and at the shutdown.
// Usage: node client.mjs WS_URL MQTT_PORT SECRET_FILE
import fs from 'node:fs';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import mqtt from 'mqtt';
import jwt from 'jsonwebtoken';

const [wsUrl, mqttPort, secretFile] = process.argv.slice(2);
const secret = fs.readFileSync(secretFile, 'utf8').replace(/\r?\n$/, '');
const token = (sub) => jwt.sign({ sub }, secret, { algorithm: 'HS256', expiresIn: 60 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const id = (n) => JSON.stringify({ channel: 'ActuatorChannel', id: n });

function open(url) {
  const ws = new WebSocket(url, ['actioncable-v1-json']);
  ws.frames = [];
  ws.on('message', (d) => ws.frames.push(String(d)));
  ws.on('error', () => {});
  return new Promise((resolve) => ws.on('open', () => resolve(ws)));
}
const send = (ws, o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o));
const pub = (topic, msg) => execFileSync('mosquitto_pub', ['-p', mqttPort, '-t', topic, '-m', msg]);

const a = await open(`${wsUrl}?jid=${token('alice')}`);
const b = await open(`${wsUrl}?jid=${token('bob')}`);
await open(`${wsUrl}?jid=garbage`);
for (const ws of [a, b]) {
  send(ws, { command: 'subscribe', identifier: id(42) });
  send(ws, { command: 'subscribe', identifier: id(42) });
  send(ws, { command: 'subscribe', identifier: id('4#2') });
  send(ws, { command: 'subscribe', identifier: JSON.stringify({ channel: 'Nope' }) });
}
await sleep(300);
for (let i = 0; i < 20; i++) pub('actuators/42/state', `{"n":${i}}`);
pub('actuators/42/state', 'plain text');
send(a, { command: 'message', identifier: id(42), data: JSON.stringify({ action: 'speak', message: 'on' }) });
send(a, 'not json');
send(a, { command: 'bogus', identifier: id(42) });
send(a, { command: 'message', identifier: id(42), data: { not: 'a string' } });
send(b, { command: 'unsubscribe', identifier: id(42) });
send(b, 'x'.repeat(70000)); // over the 64 KiB limit: 1009
await sleep(500);
// Answers: a refused perform, a request answered by an MQTT 5 device, a reply for a
// subscription that is gone. c keeps its answer slot until the broker's shutdown.
const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5 });
await dev.subscribeAsync('actuators/+/cmd');
const requests = [];
dev.on('message', (topic, payload, packet) => requests.push(packet.properties || {}));
const c = await open(`${wsUrl}?jid=${token('carol')}`);
send(c, { command: 'subscribe', identifier: id(43) });
send(a, { command: 'subscribe', identifier: id(44) });
await sleep(300);
send(a, { command: 'message', identifier: id(42), data: JSON.stringify({ action: 'dance' }) });
send(a, { command: 'message', identifier: id(44), data: JSON.stringify({ action: 'status', message: 'status', $request: 'v1' }) });
send(c, { command: 'message', identifier: id(43), data: JSON.stringify({ action: 'status', message: 'status' }) });
for (let i = 0; i < 50 && requests.filter((r) => r.responseTopic).length < 2; i++) await sleep(100);
for (const r of requests.filter((q) => q.responseTopic)) {
  await dev.publishAsync(r.responseTopic, '{"on":true}', { properties: { correlationData: r.correlationData } });
}
await sleep(300);
send(a, { command: 'unsubscribe', identifier: id(44) });
await sleep(200);
for (const r of requests.filter((q) => q.responseTopic)) {
  await dev.publishAsync(r.responseTopic, '"late"', { properties: { correlationData: r.correlationData } });
}
await sleep(300);
await dev.endAsync();
if (!a.frames.some((f) => f.includes('"$cable":"reply","request":"v1"')) ||
    !a.frames.some((f) => f.includes('"reason":"unknown_action"'))) {
  console.error('alice did not receive her answers', a.frames.slice(-5));
  process.exit(1);
}
// An abrupt close in the middle of a frame header.
const s = net.connect(new URL(wsUrl).port, '127.0.0.1');
await new Promise((r) => s.on('connect', r));
s.write(`GET ${new URL(wsUrl).pathname}?jid=${token('carol')} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: actioncable-v1-json\r\n\r\n`);
await sleep(200);
s.write(Buffer.from([0x81, 0xfe, 0x00]));
s.destroy();
await sleep(300);
if (!a.frames.some((f) => f.includes('"message":{"n":19}'))) {
  console.error('alice did not receive the device messages', a.frames.slice(-3));
  process.exit(1);
}
// a and b stay open: the broker's shutdown closes them (server_restart).
console.log('client session done');
process.exit(0);
