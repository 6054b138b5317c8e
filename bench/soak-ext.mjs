// The extended protocol's soak test (part of `make soak`; docs/soak.md, "Reliable
// streams"): real @anycable/core clients in actioncable-v1-ext-json behind one TCP proxy
// that cuts a random connection every few milliseconds, while a device publishes at a
// steady rate. Half the clients restore their session after a cut, half resubscribe
// with their positions (session recovery off). At the end every client must hold every
// message of its topic from its first one to the last published, exactly once and in
// order.
//
//   node bench/soak-ext.mjs        (CABLE_BUILD_DIR: the build with the plugin)
//
// Environment: SOAK_EXT_SECONDS (120), SOAK_EXT_CLIENTS (200), SOAK_EXT_RATE (100
// messages/s over all topics), SOAK_EXT_TOPICS (10), SOAK_EXT_CUT_MS (100: one cut per
// this many ms), SOAK_EXT_SEED (1). Exit status 0 pass, 1 loss/duplicate/reorder, 2 set-up.
import WebSocket from 'ws';
import { createCable } from '@anycable/core';

import { startBroker } from '../test/integration/lib/broker.mjs';
import { mqttConnect } from '../test/integration/lib/mqtt.mjs';
import { startProxy } from '../test/integration/lib/proxy.mjs';

const env = (k, d) => Number(process.env[k] ?? d);
const SECONDS = env('SOAK_EXT_SECONDS', 120);
const CLIENTS = env('SOAK_EXT_CLIENTS', 200);
const RATE = env('SOAK_EXT_RATE', 100);
const TOPICS = env('SOAK_EXT_TOPICS', 10);
const CUT_MS = env('SOAK_EXT_CUT_MS', 100);
let seed = env('SOAK_EXT_SEED', 1);
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('soak-ext:', ...a);

async function main() {
  const broker = await startBroker();
  const proxy = await startProxy(broker.wsPort);
  const clients = [];
  for (let k = 0; k < CLIENTS; k++) {
    const id = 1000 + (k % TOPICS);
    const restore = k % 2 === 0;
    const cable = createCable(proxy.url('/cable'), {
      protocol: 'actioncable-v1-ext-json',
      websocketImplementation: WebSocket,
      auth: { token: broker.mint(`soak${k}`, { expiresIn: '1h' }) },
      protocolOptions: { pongs: true, disableSessionRecovery: !restore },
      reconnectStrategy: () => 50 + Math.floor(rand() * 200),
      logLevel: 'error',
    });
    const c = { k, id, restore, cable, got: [], infos: { received: 0, notFound: 0 }, restored: 0, reconnects: 0 };
    cable.on('connect', (ev) => { if (ev.reconnect) c.reconnects++; if (ev.restored) c.restored++; });
    const ch = cable.subscribeTo('ActuatorChannel', { id });
    ch.on('message', (m) => c.got.push(m.i));
    ch.on('info', (ev) => {
      if (ev.type === 'history_received') c.infos.received++;
      if (ev.type === 'history_not_found') c.infos.notFound++;
    });
    c.ready = ch.ensureSubscribed();
    clients.push(c);
  }
  await Promise.all(clients.map((c) => c.ready));
  log(`${CLIENTS} clients subscribed (${TOPICS} topics); publishing ${RATE}/s for ${SECONDS} s, ` +
    `a cut every ${CUT_MS} ms`);

  const dev = await mqttConnect(broker.mqttUrl);
  const next = new Array(TOPICS).fill(1);
  let published = 0;
  let cuts = 0;
  const t0 = Date.now();
  const cutter = setInterval(() => { if (proxy.cutOne(rand)) cuts++; }, CUT_MS);
  while (Date.now() - t0 < SECONDS * 1000) {
    const t = published % TOPICS;
    await dev.publish(`actuators/${1000 + t}/state`, JSON.stringify({ i: next[t]++ }));
    published++;
    const due = t0 + (published * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  clearInterval(cutter);
  log(`published ${published}, cut ${cuts} connections; waiting for the clients to catch up`);
  const last = (c) => next[c.id - 1000] - 1;
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && clients.some((c) => c.got.at(-1) !== last(c))) await sleep(200);
  await sleep(1000);

  let bad = 0, lost = 0, dups = 0, reorders = 0, delivered = 0;
  for (const c of clients) {
    delivered += c.got.length;
    for (let j = 1; j < c.got.length; j++) {
      const d = c.got[j] - c.got[j - 1];
      if (d > 1) lost += d - 1;
      else if (d === 0) dups++;
      else if (d < 0) reorders++;
    }
    if (c.got.length && c.got.at(-1) !== last(c)) lost += last(c) - c.got.at(-1);
    const ok = c.got.length > 0 && c.got.every((v, j) => j === 0 || v === c.got[j - 1] + 1) &&
      c.got.at(-1) === last(c);
    if (!ok) {
      bad++;
      if (bad <= 5) log(`client ${c.k} (${c.restore ? 'restore' : 'resubscribe'}): ${c.got.length} messages, ` +
        `first ${c.got[0]}, last ${c.got.at(-1)} of ${last(c)}; not found ${c.infos.notFound}`);
    }
  }
  const sum = (f) => clients.reduce((s, c) => s + f(c), 0);
  const summary = {
    clients: CLIENTS, seconds: SECONDS, published, cuts,
    reconnects: sum((c) => c.reconnects), restored: sum((c) => c.restored),
    history_received: sum((c) => c.infos.received), history_not_found: sum((c) => c.infos.notFound),
    delivered, lost, dups, reorders, clients_failed: bad,
  };
  console.log(`RESULT soak-ext ${Object.entries(summary).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const c of clients) c.cable.disconnect();
  await dev.end?.();
  await proxy.close();
  const stop = await broker.stop();
  if (/ERROR|AddressSanitizer|Segmentation/.test(stop.log)) {
    log('the broker log shows an error');
    return 1;
  }
  return bad === 0 && lost === 0 && dups === 0 && reorders === 0 ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => { log(e.stack || e); process.exit(2); });
