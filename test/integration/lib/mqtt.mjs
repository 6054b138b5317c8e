// A real MQTT client (the `mqtt` package) standing for a device or a backend.
//
//   const dev = await mqttConnect(broker.mqttUrl);
//   await dev.subscribe('actuators/#');
//   await dev.publish('actuators/42/state', '{"on":true}');
//   const m = await dev.next();  // { topic, payload: Buffer, text, retain, at }
import mqtt from 'mqtt';
import { AsyncQueue } from './queue.mjs';
import { onCleanup } from './cleanup.mjs';

let counter = 0;

export async function mqttConnect(url, opts = {}) {
  const client = mqtt.connect(url, {
    clientId: `it-${process.pid}-${++counter}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
  // Settle on CONNACK, or fail on error / close / timeout (connectAsync can hang when
  // the broker closes the socket before CONNACK).
  await new Promise((resolve, reject) => {
    const fail = (why) => { cleanup(); client.end(true); reject(new Error(`MQTT connect to ${url}: ${why}`)); };
    const onConnect = () => { cleanup(); resolve(); };
    const onError = (e) => fail(e.message);
    const onClose = () => fail('closed before CONNACK');
    const timer = setTimeout(() => fail('no CONNACK within 6 s'), 6000);
    function cleanup() {
      clearTimeout(timer);
      client.off('connect', onConnect); client.off('error', onError); client.off('close', onClose);
    }
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
  const messages = new AsyncQueue(`MQTT messages of ${client.options.clientId}`);
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: Buffer.from(payload), text: payload.toString('utf8'), retain: packet.retain, at: Date.now(), raw: `${topic} ${payload}`, properties: packet.properties });
  });
  const wrapper = {
    client,
    messages,
    subscribe: (filter, qos = 0) => client.subscribeAsync(filter, { qos }),
    publish: (topic, payload, o = {}) => client.publishAsync(topic, payload, { qos: 0, ...o }),
    next: (ms = 3000) => messages.next(ms, 'MQTT message'),
    nextOn: (topic, ms = 3000) => messages.nextMatching((m) => m.topic === topic, ms, `MQTT message on ${topic}`),
    expectNone: (ms = 500, pred = () => true) => messages.expectNone(ms, pred, 'MQTT message'),
    end: () => client.endAsync(true),
  };
  onCleanup(() => wrapper.end());
  return wrapper;
}
