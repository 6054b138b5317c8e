// Reload on SIGHUP: the plugin re-reads its files (here the ACL). A subscription the new
// rules refuse ends with reject_subscription while the connection stays open; others
// are untouched. A broken file keeps the previous rules and changes nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  useBroker, rawConnect, mqttConnect, actuatorId, isPing, isReject, isMessageFor,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

const ACL_BEFORE = `# alice commands 42, bob watches it
user alice
topic readwrite actuators/42/#

user bob
topic read actuators/42/#
`;
const ACL_WITHOUT_BOB = `# bob's read permission removed
user alice
topic readwrite actuators/42/#

user bob
`;
const ACL_BROKEN = `user alice
topic readwrite actuators/42/#
frobnicate x
user bob
`;

const opts = { files: { 'acl.conf': ACL_BEFORE }, pluginOpts: { acl_file: '$DIR/acl.conf' } };

// Rewrites the ACL file in the broker's dir (it keeps its owner and mode) and sends
// SIGHUP to the broker; resolves with the log offset taken before the signal.
function reloadWith(b, content) {
  writeFileSync(path.join(b.dir, 'acl.conf'), content);
  const from = b.log().length;
  process.kill(b.pid, 'SIGHUP');
  return from;
}

async function subscribed(b, user) {
  const c = await rawConnect(b.urlFor(b.mint(user)));
  await c.welcome();
  assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription', user);
  return c;
}

async function deviceSays(b, dev, text) {
  await dev.publish('actuators/42/state', JSON.stringify(text));
}

describe('SIGHUP after removing a permission', () => {
  const ctx = useBroker(opts);

  test("bob's subscription ends with reject_subscription, his connection stays open, alice's stays", async () => {
    const b = ctx.broker;
    const id = actuatorId(42);
    const alice = await subscribed(b, 'alice');
    const bob = await subscribed(b, 'bob');
    const dev = await mqttConnect(b.mqttUrl);
    await deviceSays(b, dev, 'before');
    assert.equal((await alice.waitFor(isMessageFor(id))).json.message, 'before');
    assert.equal((await bob.waitFor(isMessageFor(id))).json.message, 'before');

    const from = reloadWith(b, ACL_WITHOUT_BOB);
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from);
    const rej = await bob.waitFor(isReject(id), 5000, 'reject_subscription after the reload');
    assert.deepEqual(rej.json, { identifier: id, type: 'reject_subscription' });
    await waitForLog(b, /\(user bob\): subscription ended by the new rules/, 3000, from);

    // bob's connection is still open: a ping arrives after the reject.
    const afterReject = rej.at;
    await bob.waitFor((f) => isPing(f) && f.at >= afterReject, 8000, 'a ping after the reject');
    assert.equal(bob.closeInfo, null, "bob's connection stays open");

    // Device messages reach alice and no longer bob.
    await deviceSays(b, dev, 'after');
    assert.equal((await alice.waitFor(isMessageFor(id))).json.message, 'after');
    await bob.frames.expectNone(500, isMessageFor(id), 'message for bob after the reload');
    assert.equal(alice.frames.count(isReject(id)), 0, 'alice was not rejected');
    assert.equal(alice.closeInfo, null);

    // The new rules apply to new subscribes too, on the same connection.
    assert.equal((await bob.subscribeAndWait(id)).json.type, 'reject_subscription');
    // And alice may still speak.
    const mq = await mqttConnect(b.mqttUrl);
    await mq.subscribe('#');
    alice.perform(id, 'speak', { message: 'still here' });
    assert.equal((await mq.next()).text, '{"user":"alice","message":"still here"}');
  });
});

describe('SIGHUP with a broken ACL file', () => {
  const ctx = useBroker(opts);

  test("keeps the previous rules ('reload failed, keeping the previous rules') and nothing changes", async () => {
    const b = ctx.broker;
    const id = actuatorId(42);
    const alice = await subscribed(b, 'alice');
    const bob = await subscribed(b, 'bob');

    const from = reloadWith(b, ACL_BROKEN);
    const m = await waitForLog(b, /reload failed, keeping the previous rules: [^\n]*/, 5000, from);
    assert.match(m[0], /line 3/, 'the error names the line');
    assert.doesNotMatch(b.log().slice(from), /mosquitto-cable: reloaded/);

    // Nothing ended, everyone still receives.
    const dev = await mqttConnect(b.mqttUrl);
    await deviceSays(b, dev, 'after a failed reload');
    assert.equal((await alice.waitFor(isMessageFor(id))).json.message, 'after a failed reload');
    assert.equal((await bob.waitFor(isMessageFor(id))).json.message, 'after a failed reload');
    assert.equal(bob.frames.count(isReject(id)), 0);
    assert.equal(alice.frames.count(isReject(id)), 0);
    assert.equal(alice.closeInfo, null);
    assert.equal(bob.closeInfo, null);

    // The old rules still decide new subscribes: bob may watch 42 (the broken file
    // would have given him nothing), and a new connection works as before.
    const bob2 = await subscribed(b, 'bob');
    const mq = await mqttConnect(b.mqttUrl);
    await mq.subscribe('#');
    bob2.perform(id, 'speak', { message: 'still read-only' });
    await waitForLog(b, /\(user bob\) perform refused/, 5000, from);
    await mq.expectNone(400);

    // A fixed file loads again on the next SIGHUP.
    const from2 = reloadWith(b, ACL_WITHOUT_BOB);
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from2);
    await bob.waitFor(isReject(id), 5000, 'reject_subscription after the good reload');
  });
});
