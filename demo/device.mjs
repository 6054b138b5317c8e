#!/usr/bin/env node
// A simulated actuator (a lamp, say) speaking real MQTT, for the demo page and the tests.
//
//   node demo/device.mjs [--url mqtt://127.0.0.1:1883] [--ids 42,43] [--quiet]
//                        [--exit-with-pid PID]
//   (or MQTT_URL=... DEVICE_IDS=42,43 node demo/device.mjs)
//
// For each id it subscribes to actuators/<id>/cmd, where the plugin publishes what a
// browser speaks: {"user":"alice","message":"on"}. Commands (case-insensitive):
//   on, off, toggle  change the state; status  only reports it.
// The answer goes to actuators/<id>/state:
//   {"on":true,"by":"alice","command":"on","at":1732730000000}   (retained)
// and anything else gets, not retained:
//   {"error":"unknown command","command":"dance","by":"alice","at":...}
// A command that came as an MQTT 5 request (the channel map's "status" action sets a
// response topic and correlation data) is answered to the one who asked: the same
// state, published to the response topic with the correlation data, not retained, and
// not on actuators/<id>/state (so "status" answers only the asker).
// On every (re)connect it publishes each actuator's current state, retained:
//   {"on":false,"by":null,"command":null,"boot":true,"online":true,"at":...}  (the first time)
// so a page that subscribes later opens on it (with plugin_opt_state_listener). Each
// actuator has its own MQTT connection with a retained will on its state topic:
//   {"online":false,"at":...}
// which the broker publishes when that connection dies without saying goodbye (the
// process killed, the network gone), so pages show the actuator offline; a clean stop
// (SIGINT/SIGTERM) publishes the same before it disconnects.
// Each time every actuator is subscribed and its state is out it prints a line starting
// with "device ready:" (the tests wait for the first).
// --exit-with-pid PID: exit when process PID is gone (`make run` passes the broker's).
import mqtt from 'mqtt';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.MQTT_URL || 'mqtt://127.0.0.1:1883' },
    ids: { type: 'string', default: process.env.DEVICE_IDS || '42,43' },
    'exit-with-pid': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node demo/device.mjs [--url mqtt://127.0.0.1:1883] [--ids 42,43] ' +
    '[--quiet] [--exit-with-pid PID]\n');
  process.exit(0);
}

const ids = values.ids.split(',').map((s) => s.trim()).filter(Boolean);
for (const id of ids) {
  if (!/^[0-9]+$/.test(id)) {
    process.stderr.write(`device: bad id ${JSON.stringify(id)} (ActuatorChannel ids are integers)\n`);
    process.exit(2);
  }
}
const say = (line) => { if (!values.quiet) process.stdout.write(`device: ${line}\n`); };

const states = new Map(ids.map((id) => [id, { on: false, by: null, command: null, boot: true, at: Date.now() }]));
const cmdTopic = (id) => `actuators/${id}/cmd`;
const stateTopic = (id) => `actuators/${id}/state`;

const offline = () => JSON.stringify({ online: false, at: Date.now() });

// One MQTT connection per actuator: a will names one topic.
const clients = new Map(ids.map((id) => [id, mqtt.connect(values.url, {
  clientId: `actuator-sim-${process.pid}-${id}`,
  protocolVersion: 5, // MQTT 5: requests carry a response topic
  clean: true,
  reconnectPeriod: 1000,
  connectTimeout: 5000,
  will: { topic: stateTopic(id), payload: Buffer.from(offline()), qos: 0, retain: true },
})]));

const ready = new Set();
let announced = false;
let waitingSaid = false;
let online = false;
for (const [id, client] of clients) {
  client.on('connect', async () => {
    try {
      await client.subscribeAsync(cmdTopic(id), { qos: 0 });
      await client.publishAsync(stateTopic(id), JSON.stringify({ ...states.get(id), online: true }),
        { qos: 0, retain: true });
      ready.add(id);
      if (ready.size === ids.length) {
        ready.clear();
        process.stdout.write(`device ready: actuators ${ids.join(', ')} on ${values.url}\n`);
        if (!announced) {
          announced = true;
          say(`listening on ${ids.map(cmdTopic).join(', ')}`);
        }
      }
    } catch (e) {
      process.stderr.write(`device: subscribe/publish failed: ${e.message}\n`);
    }
  });
  // Until the first connection, a refused connect only means the broker is not up yet
  // (`make run` starts this script just before mosquitto): say so once, keep retrying.
  // After a connection drops, say it once per outage, not at every retry.
  client.on('connect', () => { online = true; });
  client.on('close', () => {
    if (online) say(`lost the broker at ${values.url}; retrying every second…`);
    online = false;
  });
  client.on('error', (e) => {
    if (e.code === 'ECONNREFUSED') {
      if (!announced && !waitingSaid) say(`waiting for the broker at ${values.url}…`);
      waitingSaid = true;
      return;
    }
    process.stderr.write(`device: ${e.message}\n`);
  });
  client.on('message', (topic, payload, packet) => handle(client, id, payload, packet));
}

// A payload from the plugin is {"user","message"}; a bare string published by hand
// (mosquitto_pub -t actuators/42/cmd -m on) is taken as the command, from nobody.
function parseCommand(payload) {
  const text = payload.toString('utf8');
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v) && 'message' in v) {
      return { user: v.user ?? null, command: v.message };
    }
    if (typeof v === 'string') return { user: null, command: v };
  } catch { /* not JSON */ }
  return { user: null, command: text };
}

function handle(client, id, payload, packet) {
  const { user, command } = parseCommand(payload);
  const word = typeof command === 'string' ? command.trim().toLowerCase() : null;
  const prev = states.get(id);
  let next;
  switch (word) {
    case 'on': next = true; break;
    case 'off': next = false; break;
    case 'toggle': next = !prev.on; break;
    case 'status': next = prev.on; break;
    default: {
      const answer = { error: 'unknown command', command, by: user, at: Date.now() };
      say(`${id}: ${user ?? '(nobody)'} sent ${JSON.stringify(command)}: unknown command`);
      client.publish(stateTopic(id), JSON.stringify(answer), { qos: 0, retain: false });
      return;
    }
  }
  const state = { on: next, by: user, command: word, at: Date.now() };
  const { responseTopic, correlationData } = packet.properties ?? {};
  if (responseTopic) {
    // A request: the answer goes to the asker alone; the state itself did not change.
    say(`${id}: ${user ?? '(nobody)'} asked ${word}: ${next ? 'ON' : 'OFF'} (answered to the asker)`);
    client.publish(responseTopic, JSON.stringify(state), {
      qos: 0, retain: false, properties: correlationData ? { correlationData } : {},
    });
    return;
  }
  states.set(id, state);
  say(`${id}: ${user ?? '(nobody)'} sent ${word}: ${next ? 'ON' : 'OFF'}`);
  client.publish(stateTopic(id), JSON.stringify({ ...state, online: true }), { qos: 0, retain: true });
}

// A clean stop says "offline" itself: a DISCONNECT discards the will.
async function stop() {
  setTimeout(() => process.exit(0), 1000).unref();
  await Promise.all([...clients].map(async ([id, client]) => {
    try {
      if (client.connected) await client.publishAsync(stateTopic(id), offline(), { qos: 0, retain: true });
      await client.endAsync(false);
    } catch { /* going anyway */ }
  }));
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

if (values['exit-with-pid']) {
  const pid = Number(values['exit-with-pid']);
  setInterval(() => {
    try { process.kill(pid, 0); } catch (e) { if (e.code === 'ESRCH') stop(); }
  }, 1000);
}
