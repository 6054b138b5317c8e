// A short, complete session for the valgrind run: connect (good and bad tokens),
// subscribe (confirm, reject, duplicate), device messages in, speak out, unsubscribe,
// malformed input, an oversized message, and an abrupt TCP close mid-frame; answers
// (a refusal, an acknowledged MQTT 5 request, a device's reply) with subscriptions
// that end before and at the shutdown; presence (join, info, refusals, a drop that
// lingers and expires, a user still present at the shutdown) and whispers; the extended
// protocol (history on subscribe, a dropped session restored and its history, a failed
// restore, one left parked and one held at the shutdown).
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

function open(url, protocol = 'actioncable-v1-json') {
  const ws = new WebSocket(url, [protocol]);
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
// Presence and whisper on DeskChannel (valgrind.sh adds it: TTL 1 s, watchers topic).
const desk = JSON.stringify({ channel: 'DeskChannel', id: 1 });
const d1 = await open(`${wsUrl}?jid=${token('dora')}`);
const d2 = await open(`${wsUrl}?jid=${token('erik')}`);
for (const ws of [d1, d2]) send(ws, { command: 'subscribe', identifier: desk });
await sleep(300);
send(d1, { command: 'join', identifier: desk, presence: { id: 'dora', info: { n: 1 } } });
send(d2, { command: 'join', identifier: desk, presence: { id: 'erik' } });
send(d2, { command: 'join', identifier: desk, presence: { id: 'admin' } }); // refused
send(d2, { command: 'join', identifier: desk, presence: { info: 'x'.repeat(64) } }); // refused
send(d2, { command: 'presence', identifier: desk, data: {} });
for (let i = 0; i < 5; i++) send(d1, { command: 'whisper', identifier: desk, data: { i } });
send(d1, { command: 'whisper', identifier: desk, data: 'x'.repeat(5000) });
send(d1, { command: 'leave', identifier: desk });
send(d1, { command: 'join', identifier: desk, presence: { id: 'dora' } });
await sleep(300);
d1.terminate(); // dora lingers 1 s, then leaves
await sleep(1500);
if (!d2.frames.some((f) => f.includes('"type":"info","total":')) ||
    !d2.frames.some((f) => f.includes('"message":{"i":2}')) ||
    !d2.frames.some((f) => f.includes('"type":"leave","id":"dora"'))) {
  console.error('erik did not see presence and whispers', d2.frames.slice(-8));
  process.exit(1);
}
const d3 = await open(`${wsUrl}?jid=${token('fay')}`);
send(d3, { command: 'subscribe', identifier: desk, presence: { id: 'fay' } });
await sleep(200);
d3.terminate(); // fay lingers past the shutdown
await sleep(200);
// The extended protocol.
const EXT = 'actioncable-v1-ext-json';
const e1 = await open(`${wsUrl}?jid=${token('erin')}`, EXT);
send(e1, { command: 'subscribe', identifier: id(45), history: { since: 1 } });
send(e1, { command: 'subscribe', identifier: JSON.stringify({ channel: 'SensorChannel', site: 'x' }) });
await sleep(300);
for (let i = 0; i < 5; i++) pub('actuators/45/state', `{"e":${i}}`);
pub('sites/x/sensors/t', '21');
await sleep(300);
const sid1 = JSON.parse(e1.frames[0]).sid;
const last = JSON.parse(e1.frames.filter((f) => f.includes('"offset"')).at(-2));
e1.terminate();
await sleep(300);
pub('actuators/45/state', '{"e":5}');
await open(`${wsUrl}?jid=${token('mallory')}&sid=${sid1}`, EXT); // another user: refused
const e2 = await open(`${wsUrl}?jid=${token('erin')}&sid=${sid1}`, EXT); // used: refused
const sid2 = JSON.parse(e2.frames[0] ?? (await sleep(200), e2.frames[0])).sid;
send(e2, { command: 'subscribe', identifier: id(45), history: { streams: { [last.stream_id]: { epoch: last.epoch, offset: last.offset } } } });
send(e2, { command: 'pong' });
await sleep(300);
e2.terminate();
await sleep(300);
const e3 = await open(`${wsUrl}?jid=${token('erin')}&sid=${sid2}`, EXT); // restored
await sleep(200);
pub('actuators/45/state', '{"e":6}'); // held
await sleep(200);
send(e3, { command: 'history', identifier: id(45), history: { streams: { [last.stream_id]: { epoch: last.epoch, offset: last.offset } } } });
await sleep(300);
if (!e3.frames.some((f) => f.includes('"restored":true')) || !e3.frames.some((f) => f.includes('confirm_history'))) {
  console.error('erin was not restored', e3.frames.slice(0, 5));
  process.exit(1);
}
const e4 = await open(`${wsUrl}?jid=${token('erin')}`, EXT);
send(e4, { command: 'subscribe', identifier: id(46) });
await sleep(200);
e4.terminate(); // parked until the shutdown
const e5 = await open(`${wsUrl}?jid=${token('erin')}&sid=${JSON.parse(e3.frames[0]).sid}`, EXT);
await sleep(200);
pub('actuators/45/state', '{"e":7}'); // held at the shutdown (e5 never asks for history)
await sleep(200);
if (!e5.frames.some((f) => f.includes('"restored":true'))) {
  console.error('the live session was not taken over', e5.frames.slice(0, 3));
  process.exit(1);
}
// a, b, d2 and e5 stay open: the broker's shutdown closes them (server_restart).
console.log('client session done');
process.exit(0);
