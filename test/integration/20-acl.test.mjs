// ACL rules (plugin_opt_acl_file) checked at subscribe, at delivery and at perform,
// against the real broker: config/acl.example with the example channel map (alice
// commands actuator 42, bob only watches it, role "operators" commands every actuator),
// and a fixture with a deny inside an allowed wildcard stream. What a browser may not
// do never reaches MQTT: a real MQTT client subscribed to '#' is the witness.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  REPO, useBroker, rawConnect, connectAndSubscribe, createCable, mqttConnect,
  actuatorParams, actuatorId, isMessageFor,
} from './lib/index.mjs';
import { fixture, waitForLog, observeAll } from './fixtures/util.mjs';

describe('config/acl.example with config/channels.example.json', () => {
  const ctx = useBroker({
    pluginOpts: {
      acl_file: path.join(REPO, 'config', 'acl.example'),
      jwt_roles_claim: 'roles',
    },
  });

  test('alice may subscribe to actuator 42 and speak on it', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    s.perform('speak', { message: 'on' });
    const m = await mq.next();
    assert.equal(m.topic, 'actuators/42/cmd');
    assert.equal(m.text, '{"user":"alice","message":"on"}');
    // She hears her own command and device state on 42.
    assert.deepEqual(await s.next(), { user: 'alice', message: 'on' });
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/state', '{"on":true}');
    assert.deepEqual(await s.next(), { on: true });
  });

  test('alice gets reject_subscription for actuator 43, and a perform there publishes nothing', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    const id43 = actuatorId(43);
    assert.equal((await c.subscribeAndWait(id43)).json.type, 'reject_subscription');
    c.perform(id43, 'speak', { message: 'on' });
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/43/state', '{"secret":43}');
    await mq.nextOn('actuators/43/state'); // the device's own publish
    await mq.expectNone(600);
    assert.equal(c.frames.count(isMessageFor(id43)), 0, 'nothing of actuator 43 delivered');
    assert.equal(c.closeInfo, null, 'the connection stays open');
  });

  test('the stock client sees rejected() for alice on 43', async () => {
    const b = ctx.broker;
    const cable = createCable(b.urlFor(b.mint('alice')));
    await cable.subscribe(actuatorParams(43)).rejected();
  });

  test('bob may subscribe to 42 but his speak never reaches MQTT (perform refused)', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const from = b.log().length;
    const { subs: [s] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
    s.perform('speak', { message: 'bob was here' });
    await waitForLog(b, /\(user bob\) perform refused/, 5000, from);
    await mq.expectNone(600);
    // The example map answers refusals: bob is told why (96-answers has the details).
    assert.deepEqual(await s.next(), { $cable: 'refused', action: 'speak', request: 1, reason: 'acl_denied' });
    await s.expectNone(0);
    // He still watches 42: device state and alice's commands reach him.
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/state', '{"level":3}');
    assert.deepEqual(await s.next(), { level: 3 });
    const { subs: [alice] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    alice.perform('speak', { message: 'from alice' });
    assert.deepEqual(await s.next(), { user: 'alice', message: 'from alice' });
  });

  test('bob gets reject_subscription for actuator 43', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('bob')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(actuatorId(43))).json.type, 'reject_subscription');
  });

  test('a user with no rules of his own (dave) is rejected on 42 and 43', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('dave')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'reject_subscription');
    assert.equal((await c.subscribeAndWait(actuatorId(43))).json.type, 'reject_subscription');
  });

  test('role "operators" from the roles claim may command actuator 7 (and 43)', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const cable = createCable(b.urlFor(b.mint('carol', { claims: { roles: ['operators'] } })));
    const s7 = cable.subscribe(actuatorParams(7));
    const s43 = cable.subscribe(actuatorParams(43));
    await s7.confirmed();
    await s43.confirmed();
    s7.perform('speak', { message: 'go 7' });
    let m = await mq.next();
    assert.equal(m.topic, 'actuators/7/cmd');
    assert.equal(m.text, '{"user":"carol","message":"go 7"}');
    s43.perform('speak', { message: 'go 43' });
    m = await mq.next();
    assert.equal(m.topic, 'actuators/43/cmd');
    assert.equal(m.text, '{"user":"carol","message":"go 43"}');
  });

  test('the same user without the role is rejected; an unknown role adds nothing', async () => {
    const b = ctx.broker;
    for (const claims of [{}, { roles: [] }, { roles: ['Operators'] }, { roles: ['visitors'] }]) {
      const c = await rawConnect(b.urlFor(b.mint('carol', { claims })));
      await c.welcome();
      const r = await c.subscribeAndWait(actuatorId(7));
      assert.equal(r.json.type, 'reject_subscription', `claims ${JSON.stringify(claims)}`);
      await c.close();
    }
  });

  test('a roles claim that is not an array of strings is an unauthorized token', async () => {
    const b = ctx.broker;
    for (const roles of ['operators', [1], { operators: true }]) {
      const c = await rawConnect(b.urlFor(b.mint('carol', { claims: { roles } })));
      const f = await c.waitFor((x) => x.json?.type === 'disconnect' || x.json?.type === 'welcome');
      assert.deepEqual(f.json, { type: 'disconnect', reason: 'unauthorized', reconnect: false },
        `roles ${JSON.stringify(roles)}`);
      assert.equal((await c.waitClosed()).code, 1000);
    }
  });
});

// "Deny wins" where it matters: a channel whose stream really covers the denied topics.
// acl.example gives alice readwrite actuators/42/# and everyone `topic deny
// actuators/+/firmware/#`; the stream actuators/{id}/# is therefore PARTIAL for her.
// An allowed sibling publish must arrive (so the test cannot pass by delivering
// nothing), the firmware publish never, and a perform on firmware reaches no MQTT client.
describe('deny wins: a stream covering actuators/+/firmware/# (config/acl.example)', () => {
  const ctx = useBroker({
    files: {
      'channels.json': JSON.stringify({
        channels: {
          ActuatorTreeChannel: {
            params: { id: { type: 'integer', min: 0, max: 1000000 } },
            streams: ['actuators/{id}/#'],
            deliver: 'envelope',
            actions: {
              speak: { topic: 'actuators/{id}/cmd', payload: 'data' },
              flash: { topic: 'actuators/{id}/firmware/update', payload: 'data' },
            },
          },
        },
      }),
    },
    pluginOpts: {
      acl_file: path.join(REPO, 'config', 'acl.example'),
      channels_file: '$DIR/channels.json',
    },
  });
  const tree = (id) => ({ channel: 'ActuatorTreeChannel', id });

  test('alice subscribes to actuators/42/#: state arrives, firmware never does', async () => {
    const b = ctx.broker;
    const witness = await observeAll(b, 'actuators/#');
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [tree(42)]);
    const dev = await mqttConnect(b.mqttUrl);
    const sent = [
      ['actuators/42/firmware/blob', '"secret-1"'],
      ['actuators/42/state', '"s1"'],
      ['actuators/42/firmware', '"secret-2"'],
      ['actuators/42/firmware/a/b/c', '"secret-3"'],
      ['actuators/42/firmwareish', '"s2"'],
      ['actuators/42/state', '"s3"'],
    ];
    for (const [topic, payload] of sent) await dev.publish(topic, payload);
    // The witness proves every publish went through the broker.
    for (const [topic] of sent) await witness.nextOn(topic);
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await s.next());
    assert.deepEqual(got.map((e) => [e.topic, e.payload]), [
      ['actuators/42/state', 's1'],
      ['actuators/42/firmwareish', 's2'],
      ['actuators/42/state', 's3'],
    ]);
    await s.expectNone(500);
  });

  test('a perform on the denied firmware topic publishes nothing; speak on cmd still does', async () => {
    const b = ctx.broker;
    const witness = await observeAll(b, 'actuators/#');
    const from = b.log().length;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [tree(42)]);
    s.perform('flash', { image: 'evil' });
    await waitForLog(b, /\(user alice\) perform refused/, 5000, from);
    s.perform('speak', { message: 'on' });
    const m = await witness.next();
    assert.equal(m.topic, 'actuators/42/cmd', 'the first MQTT message is the speak, not the flash');
    assert.equal(m.text, '{"message":"on"}');
    await witness.expectNone(400);
  });

  test('bob (read actuators/42/#) gets the same filtering; dave (no rules) is rejected', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'bob', [tree(42)]);
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/firmware/blob', '"secret"');
    await dev.publish('actuators/42/state', '"visible"');
    const e = await s.next();
    assert.deepEqual([e.topic, e.payload], ['actuators/42/state', 'visible']);
    await s.expectNone(400);
    const c = await rawConnect(b.urlFor(b.mint('dave')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(JSON.stringify(tree(42)))).json.type, 'reject_subscription');
  });
});

describe('a wildcard stream partly denied, and $ topics (fixtures/acl-partial.acl)', () => {
  const ctx = useBroker({
    pluginOpts: {
      acl_file: fixture('acl-partial.acl'),
      channels_file: fixture('channels-wildcard.json'),
    },
  });
  const sensors = (site) => ({ channel: 'SensorChannel', site });

  test('SensorChannel sites/plant-7/sensors/# delivers the allowed topics, never the denied one', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [sensors('plant-7')]);
    const dev = await mqttConnect(b.mqttUrl);
    const sent = [
      ['sites/plant-7/sensors/temp', '21.5'],
      ['sites/plant-7/sensors/secret', '"k1"'],
      ['sites/plant-7/sensors/humidity', '40'],
      ['sites/plant-7/sensors/secret/key', '"k2"'],
      ['sites/plant-7/sensors/secret/a/b', '"k3"'],
      ['sites/plant-7/sensors/secretive', '1'],
      ['sites/plant-7/sensors/temp', '22'],
    ];
    for (const [topic, payload] of sent) await dev.publish(topic, payload);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await s.next());
    assert.deepEqual(got.map((e) => [e.topic, e.payload]), [
      ['sites/plant-7/sensors/temp', 21.5],
      ['sites/plant-7/sensors/humidity', 40],
      ['sites/plant-7/sensors/secretive', 1],
      ['sites/plant-7/sensors/temp', 22],
    ]);
    await s.expectNone(400);
  });

  test('the same stream for a site outside the allowed filter is rejected', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    const id = JSON.stringify(sensors('plant-8'));
    assert.equal((await c.subscribeAndWait(id)).json.type, 'reject_subscription');
  });

  test('a generic subscription to the denied part alone is rejected; one covering it is PARTIAL', async () => {
    // alice has no rule for TopicChannel topics beyond her sensors; the generic channel
    // is governed by the ACL alone.
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    const secret = JSON.stringify({ channel: 'TopicChannel', topic: 'sites/plant-7/sensors/secret/#' });
    assert.equal((await c.subscribeAndWait(secret)).json.type, 'reject_subscription');
    const all = JSON.stringify({ channel: 'TopicChannel', topic: 'sites/plant-7/sensors/+' });
    assert.equal((await c.subscribeAndWait(all)).json.type, 'confirm_subscription');
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('sites/plant-7/sensors/secret', '"no"');
    await dev.publish('sites/plant-7/sensors/door', '"open"');
    const f = await c.waitFor(isMessageFor(all));
    assert.deepEqual(f.json.message, { topic: 'sites/plant-7/sensors/door', payload: 'open', retain: false });
    await c.frames.expectNone(400, isMessageFor(all), 'another message');
  });

  test("'$SYS/x' is never reachable, even for a user whose ACL names $SYS", async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('root')));
    await c.welcome();
    // Subscribing: every spelling of a $ topic is refused by the channel map.
    for (const ident of [
      { channel: 'TopicChannel', topic: '$SYS/x' },
      { channel: 'TopicChannel', topic: '$SYS/#' },
      { channel: 'TopicChannel', topic: '$SYS' },
      { channel: 'TopicChannel', topic: '$share/g/#' },
      { channel: 'SensorChannel', site: '$SYS' },
      { channel: 'ActuatorChannel', id: '$SYS' },
    ]) {
      const id = JSON.stringify(ident);
      assert.equal((await c.subscribeAndWait(id)).json.type, 'reject_subscription', id);
    }
    // '#' is allowed for root (topic readwrite #), and still never carries $SYS/x.
    const all = JSON.stringify({ channel: 'TopicChannel', topic: '#' });
    const plus = JSON.stringify({ channel: 'TopicChannel', topic: '+/x' });
    assert.equal((await c.subscribeAndWait(all)).json.type, 'confirm_subscription');
    assert.equal((await c.subscribeAndWait(plus)).json.type, 'confirm_subscription');
    const sys = await observeAll(b, '$SYS/x');
    // Mosquitto drops a client's publish to $SYS/..., but passes other $ topics on (the
    // MQTT witness on $test/x shows it): neither may reach the browser's '#' or '+/x'.
    const dollar = await observeAll(b, '$test/x');
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('$SYS/x', '"sys"');
    await dev.publish('$test/x', '"dollar"');
    assert.equal((await dollar.next()).text, '"dollar"');
    await dev.publish('plain/x', '"plain"');
    const f = await c.waitFor(isMessageFor(all));
    assert.equal(f.json.message.topic, 'plain/x');
    const g = await c.waitFor(isMessageFor(plus));
    assert.equal(g.json.message.topic, 'plain/x');
    await c.frames.expectNone(500, (x) => x.raw && x.raw.includes('"$'), 'frame with a $ topic');
    // Publishing: perform("publish") to a $ topic is refused and reaches nobody. (Not
    // waited for in the log: this connection's refusals beyond 5 a minute are only
    // counted. Commands run in order, so once the next publish is out, it was handled.)
    await sys.expectNone(0);
    const mq = await observeAll(b, 'plain/#');
    c.perform(all, 'publish', { topic: '$SYS/x', message: 'forged' });
    // The connection is unharmed: a publish to a normal topic still goes out.
    c.perform(all, 'publish', { topic: 'plain/y', message: 'ok' });
    const m = await mq.next();
    assert.equal(m.topic, 'plain/y');
    assert.equal(m.text, 'ok');
    await sys.expectNone(500);
  });
});

// {claim.NAME}: the topic comes from a claim of the signed token. The gateway keeps a
// connection's claims only when some channel uses such a placeholder; here one does.
describe('a channel keyed by a token claim ({claim.tenant})', () => {
  const ctx = useBroker({
    files: {
      'channels.json': JSON.stringify({
        channels: {
          TenantChannel: {
            params: { id: { type: 'integer' } },
            streams: ['tenants/{claim.tenant}/actuators/{id}/state'],
            actions: { speak: { topic: 'tenants/{claim.tenant}/actuators/{id}/cmd', payload: 'data' } },
          },
        },
      }),
    },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });
  const tenant = (id) => ({ channel: 'TenantChannel', id });

  test('each browser gets its own tenant\'s topics and publishes only there', async () => {
    const b = ctx.broker;
    const acme = createCable(b.urlFor(b.mint('alice', { claims: { tenant: 'acme' } })));
    const globex = createCable(b.urlFor(b.mint('bob', { claims: { tenant: 'globex' } })));
    const a = acme.subscribe(tenant(7));
    const g = globex.subscribe(tenant(7));
    await Promise.all([a.confirmed(), g.confirmed()]);
    const dev = await mqttConnect(b.mqttUrl);
    await dev.subscribe('tenants/+/actuators/7/cmd');
    await dev.publish('tenants/globex/actuators/7/state', '"g"');
    await dev.publish('tenants/acme/actuators/7/state', '"a"');
    assert.equal(await a.next(), 'a');
    assert.equal(await g.next(), 'g');
    await a.expectNone(300);
    a.perform('speak', { on: true });
    const m = await dev.next();
    assert.equal(m.topic, 'tenants/acme/actuators/7/cmd');
    assert.equal(m.text, '{"on":true}');
  });

  test('a token without the claim cannot bind the channel', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('carol')));
    await c.welcome();
    const f = await c.subscribeAndWait(JSON.stringify(tenant(7)));
    assert.equal(f.json.type, 'reject_subscription');
  });
});
