// AnyCable's JavaScript client (@anycable/core, unmodified) for presence and whisper
// tests (110-presence, 111-whisper).
//
// The client implements presence (channel.presence.join/leave/info) in its extended
// protocol class only, which it picks with `protocol: 'actioncable-v1-ext-json'`. The
// plugin accepts presence and whisper commands on any connection, so the tests run
// that class twice: over the plain actioncable-v1-json sub-protocol (the client's own
// `subprotocol` option) and, where the server negotiates it, over
// actioncable-v1-ext-json itself.
import { after, afterEach } from 'node:test';
import WebSocket from 'ws';
import { createCable } from '@anycable/core';

import { startBroker, printBrokerLog } from './broker.mjs';
import { AsyncQueue, withTimeout } from './queue.mjs';
import { onCleanup, runCleanups } from './cleanup.mjs';

export const EXT = 'actioncable-v1-ext-json';
export const V1 = 'actioncable-v1-json';

// A broker with this channel map, started now (await it at the top of a test file, so
// the file can ask it which wire variants to run), stopped after the file.
export async function brokerWithChannels(channels) {
  const broker = await startBroker({
    files: { 'channels.json': JSON.stringify(channels) },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });
  after(() => broker.stop());
  afterEach(async (t) => {
    if (t.passed === false) printBrokerLog(broker, `after failed test "${t.name}"`);
    await runCleanups();
  });
  return broker;
}

// Does the server select actioncable-v1-ext-json when a client offers only that?
export function serverSpeaksExt(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, [EXT]);
    const done = (v) => { clearTimeout(timer); try { ws.terminate(); } catch { /* ignore */ } resolve(v); };
    const timer = setTimeout(() => done(false), 3000);
    ws.on('open', () => done(ws.protocol === EXT));
    ws.on('error', () => done(false));
  });
}

// The wire variants to run: [name, createCable options].
export async function wireVariants(url) {
  const variants = [[`ext protocol class over ${V1}`, { protocol: EXT, subprotocol: V1 }]];
  if (await serverSpeaksExt(url)) variants.push([EXT, { protocol: EXT }]);
  return variants;
}

// A cable for `token`; reconnects after 100 ms unless opts.monitor is false. Closed after
// the test. events: 'connect'/'disconnect'/'close' of the cable.
export function anycable(url, token, opts = {}) {
  const cable = createCable(url, {
    websocketImplementation: WebSocket,
    auth: { token },
    reconnectStrategy: () => 100,
    logLevel: process.env.CABLE_TEST_DEBUG ? 'debug' : 'error',
    ...opts,
  });
  const events = new AsyncQueue('cable events');
  for (const name of ['connect', 'disconnect', 'close']) {
    cable.on(name, (arg) => events.push({ type: name, arg, raw: `${name} ${arg?.reason ?? ''}` }));
  }
  onCleanup(() => cable.disconnect());
  return { cable, events };
}

// Subscribe and wait for the confirmation; queues of the channel's presence events and
// messages (a message event's meta too: whispers have none).
export async function subscribed(cable, channel, params) {
  const ch = cable.subscribeTo(channel, params);
  const presence = new AsyncQueue(`presence events of ${ch.identifier}`);
  const messages = new AsyncQueue(`messages of ${ch.identifier}`);
  ch.on('presence', (msg) => { if (msg.type !== 'info') presence.push(msg); }); // info answers info()
  ch.on('message', (msg, meta) => messages.push({ msg, meta }));
  await withTimeout(ch.ensureSubscribed(), 5000, `ensureSubscribed() of ${ch.identifier}`);
  return { ch, presence, messages };
}

// The value of one Prometheus sample on the broker's /metrics ('name' or 'name{labels}').
export async function metric(broker, sample) {
  const res = await fetch(new URL('/metrics', broker.wsUrl.replace('ws:', 'http:')));
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  if (line === undefined) throw new Error(`no ${sample} in /metrics:\n${text}`);
  return Number(line.slice(sample.length + 1));
}
