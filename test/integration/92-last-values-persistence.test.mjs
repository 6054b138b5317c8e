// Last values across a broker restart: what Mosquitto restores from its persistence
// file is what a browser gets on subscribe (the plugin keeps nothing of its own).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBroker, connectAndSubscribe, mqttConnect, actuatorParams, sleep, runCleanups, printBrokerLog } from './lib/index.mjs';

const pdir = mkdtempSync(path.join(os.tmpdir(), 'cable-persist-'));
chmodSync(pdir, 0o777); // the broker runs as the mosquitto user when started as root
after(() => rmSync(pdir, { recursive: true, force: true }));

const conf = { state: true, extraConf: ['persistence true', `persistence_location ${pdir}/`] };

test('a retained value restored from the persistence file arrives; a cleared one does not', async () => {
  let b = await startBroker(conf);
  try {
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/3/state', '{"persisted":true}', { retain: true, qos: 1 });
    await dev.publish('actuators/4/state', '{"cleared":false}', { retain: true, qos: 1 });
    await dev.publish('actuators/4/state', '', { retain: true, qos: 1 });
    await runCleanups();
  } finally {
    await b.stop(); // SIGTERM: Mosquitto writes its persistence file
  }
  b = await startBroker(conf);
  try {
    assert.match(b.log(), /last values: connected .* [1-9]\d* retained topics/);
    const { subs: [s3, s4] } = await connectAndSubscribe(b, 'alice', [actuatorParams(3), actuatorParams(4)]);
    assert.deepEqual(await s3.next(), { persisted: true });
    await s4.expectNone(500);
    await s3.expectNone(0);
  } catch (e) {
    printBrokerLog(b, 'after restart');
    throw e;
  } finally {
    await runCleanups();
    await b.stop();
  }
});
