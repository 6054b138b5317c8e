// AnyCable's extended protocol (actioncable-v1-ext-json) on the wire, frame by frame:
// negotiation, offsets, history on subscribe and by command, session restore and its
// refusals, pongs. 101-ext-anycable-client drives the real client through cut networks.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  useBroker, rawConnect, mqttConnect, actuatorId, isWelcome, isMessageFor, isDisconnect, sleep,
} from './lib/index.mjs';

const EXT = 'actioncable-v1-ext-json';
const ctx = useBroker({ pluginOpts: { pong_timeout: 2, ping_interval: 1, session_ttl: 3 } });
const ID = actuatorId(7);
const ID8 = actuatorId(8);

const ext = (token, query = '') =>
  rawConnect(`${ctx.broker.urlFor(token)}${query}`, { protocols: [EXT] });
const isHistory = (type) => (f) => f.json?.type === type;

async function device() {
  return mqttConnect(ctx.broker.mqttUrl);
}

test('negotiation: ext is echoed to a client offering only it; v1 clients are unchanged', async () => {
  const e = await ext(ctx.broker.mint('alice'));
  assert.equal(e.protocol, EXT);
  const w = await e.welcome();
  assert.match(w.json.sid, /^[A-Za-z0-9_-]{32}$/, '192 random bits, base64url');
  const v1 = await rawConnect(ctx.broker.urlFor(ctx.broker.mint('alice')));
  assert.equal(v1.protocol, 'actioncable-v1-json');
  const w1 = await v1.welcome();
  assert.doesNotMatch(w1.json.sid, /^[A-Za-z0-9_-]{32}$/, 'a v1 sid is only a log id');
  // A pong is understood on ext (nothing logged as unknown) and keeps it open.
  e.send({ command: 'pong' });

  await e.subscribeAndWait(ID);
  await v1.subscribeAndWait(ID);
  const dev = await device();
  await dev.publish('actuators/7/state', '{"n":1}');
  const fe = await e.waitFor(isMessageFor(ID));
  const f1 = await v1.waitFor(isMessageFor(ID));
  assert.deepEqual(Object.keys(f1.json).sort(), ['identifier', 'message'], 'v1 frame as before');
  assert.deepEqual(f1.json.message, { n: 1 });
  assert.deepEqual(fe.json.message, { n: 1 });
  assert.equal(fe.json.stream_id, 'actuators/7/state');
  assert.equal(typeof fe.json.epoch, 'string');
  assert.ok(Number.isInteger(fe.json.offset) && fe.json.offset > 0);
  await dev.publish('actuators/7/state', '{"n":2}');
  const fe2 = await e.waitFor(isMessageFor(ID));
  assert.equal(fe2.json.offset, fe.json.offset + 1, 'offsets go up by one per topic');
  assert.equal(fe2.json.epoch, fe.json.epoch);
});

test('history on subscribe: by offset, by time, all or nothing', async () => {
  const token = ctx.broker.mint('alice');
  const a = await ext(token);
  await a.welcome();
  await a.subscribeAndWait(ID8);
  const dev = await device();
  const got = [];
  for (let i = 1; i <= 5; i++) {
    await dev.publish('actuators/8/state', JSON.stringify({ h: i }));
    got.push((await a.waitFor(isMessageFor(ID8))).json);
  }
  const { epoch } = got[0];

  // Resume after the second: the other three, in order, then confirm_history.
  const b = await ext(token);
  await b.welcome();
  b.send({
    command: 'subscribe', identifier: ID8,
    history: { since: 0, streams: { 'actuators/8/state': { epoch, offset: got[1].offset } } },
  });
  await b.waitFor((f) => f.json?.type === 'confirm_subscription');
  const replay = [];
  for (let i = 0; i < 3; i++) replay.push((await b.waitFor(isMessageFor(ID8))).json);
  assert.deepEqual(replay.map((f) => f.message.h), [3, 4, 5]);
  assert.deepEqual(replay.map((f) => f.offset), got.slice(2).map((f) => f.offset));
  await b.waitFor(isHistory('confirm_history'));

  // By time: everything kept from `since` on (the cmd stream has none; not an error).
  const c = await ext(token);
  await c.welcome();
  c.send({ command: 'subscribe', identifier: ID8, history: { since: Math.floor(Date.now() / 1000) - 60 } });
  const byTime = [];
  for (let i = 0; i < 5; i++) byTime.push((await c.waitFor(isMessageFor(ID8))).json.message.h);
  assert.deepEqual(byTime, [1, 2, 3, 4, 5]);
  await c.waitFor(isHistory('confirm_history'));

  // A wrong epoch on one stream: reject_history and not a single entry.
  const d = await ext(token);
  await d.welcome();
  d.send({
    command: 'subscribe', identifier: ID8,
    history: { since: 1, streams: { 'actuators/8/state': { epoch: 'other', offset: 1 } } },
  });
  await d.waitFor(isHistory('reject_history'));
  assert.equal(d.received().filter(isMessageFor(ID8)).length, 0);
  // An offset past the latest is refused too.
  const e = await ext(token);
  await e.welcome();
  e.send({
    command: 'subscribe', identifier: ID8,
    history: { streams: { 'actuators/8/state': { epoch, offset: got[4].offset + 5 } } },
  });
  await e.waitFor(isHistory('reject_history'));
  // The subscriptions stay live.
  await dev.publish('actuators/8/state', '{"h":6}');
  assert.deepEqual((await d.waitFor(isMessageFor(ID8))).json.message, { h: 6 });
});

test('restore: same user restores once; another user or a reused sid gets a fresh session', async () => {
  const dev = await device();
  const a = await ext(ctx.broker.mint('alice'));
  const sid = (await a.welcome()).json.sid;
  await a.subscribeAndWait(ID);
  await dev.publish('actuators/7/state', '{"r":1}');
  const first = (await a.waitFor(isMessageFor(ID))).json;
  a.ws.terminate(); // a network drop, not a close by the server
  await sleep(200);
  await dev.publish('actuators/7/state', '{"r":2}'); // missed

  // Bob presents alice's sid with his own valid token: no restore, and the sid is spent.
  const bob = await ext(ctx.broker.mint('bob'), `&sid=${sid}`);
  const wb = (await bob.welcome()).json;
  assert.equal(wb.restored, undefined);
  assert.notEqual(wb.sid, sid);
  const alice = await ext(ctx.broker.mint('alice'), `&sid=${sid}`);
  assert.equal((await alice.welcome()).json.restored, undefined, 'a sid is single-use');

  // A fresh drop and restore by alice herself works, once.
  await alice.subscribeAndWait(ID);
  const sid2 = (alice.received().find(isWelcome)).json.sid;
  alice.ws.terminate();
  await sleep(200);
  await dev.publish('actuators/7/state', '{"r":3}');
  const back = await ext(ctx.broker.mint('alice'), `&sid=${sid2}`);
  const w = (await back.welcome()).json;
  assert.equal(w.restored, true);
  assert.deepEqual(w.restored_ids, [ID]);
  assert.notEqual(w.sid, sid2, 'a new sid for the next restore');
  assert.equal(back.received().filter((f) => f.json?.type === 'confirm_subscription').length, 0);
  // Live frames wait for the history command; then the gap, then live, once each.
  await dev.publish('actuators/7/state', '{"r":4}');
  await sleep(200);
  assert.equal(back.received().filter(isMessageFor(ID)).length, 0, 'held until history');
  back.send({
    command: 'history', identifier: ID,
    history: { since: 0, streams: { 'actuators/7/state': { epoch: first.epoch, offset: first.offset } } },
  });
  const seq = [];
  for (let i = 0; i < 3; i++) seq.push((await back.waitFor(isMessageFor(ID))).json.message.r);
  assert.deepEqual(seq, [2, 3, 4]);
  await back.waitFor(isHistory('confirm_history'));
  await dev.publish('actuators/7/state', '{"r":5}');
  assert.equal((await back.waitFor(isMessageFor(ID))).json.message.r, 5);
  await sleep(200);
  assert.equal(back.received().filter(isMessageFor(ID)).length, 4, 'nothing twice');
  // The sid of the restored session was spent.
  const again = await ext(ctx.broker.mint('alice'), `&sid=${sid2}`);
  assert.equal((await again.welcome()).json.restored, undefined);
  // An empty sid is no sid.
  const empty = await ext(ctx.broker.mint('alice'), '&sid=');
  assert.equal((await empty.welcome()).json.restored, undefined);
  // The sid is never logged.
  assert.ok(!ctx.broker.log().includes(sid) && !ctx.broker.log().includes(sid2));
});

test('a server-sent disconnect never restores; a bad token never restores', async () => {
  const a = await ext(ctx.broker.mint('carol'));
  const sid = (await a.welcome()).json.sid;
  await a.subscribeAndWait(ID);
  // Silent: no pong, nothing sent. pong_timeout 2 s with pings every 1 s.
  const d = await a.waitFor(isDisconnect, 8000, 'no_pong');
  assert.equal(d.json.reason, 'no_pong');
  assert.equal(d.json.reconnect, true);
  await a.waitClosed(3000);
  const b = await ext(ctx.broker.mint('carol'), `&sid=${sid}`);
  assert.equal((await b.welcome()).json.restored, undefined);

  const c = await ext(ctx.broker.mint('carol'));
  const sid2 = (await c.welcome()).json.sid;
  c.ws.terminate();
  await sleep(200);
  const bad = await ext(ctx.broker.mint('carol', { secret: 'wrong' }), `&sid=${sid2}`);
  const f = await bad.waitFor((x) => x.json?.type === 'disconnect' || isWelcome(x));
  assert.equal(f.json.reason, 'unauthorized');
  // The pongs keep a connection open.
  const p = await ext(ctx.broker.mint('carol'));
  await p.welcome();
  const timer = setInterval(() => p.send({ command: 'pong' }), 500);
  await sleep(4500);
  clearInterval(timer);
  assert.equal(p.received().filter(isDisconnect).length, 0);
});

test('a reconnect the broker sees before the drop takes the old connection over', async () => {
  const dev = await device();
  const a = await ext(ctx.broker.mint('dave'));
  const sid = (await a.welcome()).json.sid;
  await a.subscribeAndWait(ID);
  // The old connection is still open here (its network died, nobody noticed yet).
  const b = await ext(ctx.broker.mint('dave'), `&sid=${sid}`);
  const w = (await b.welcome()).json;
  assert.equal(w.restored, true);
  assert.deepEqual(w.restored_ids, [ID]);
  await a.waitClosed(3000);
  b.send({ command: 'history', identifier: ID, history: { since: 0 } });
  await b.waitFor(isHistory('confirm_history'));
  await dev.publish('actuators/7/state', '{"t":1}');
  assert.deepEqual((await b.waitFor(isMessageFor(ID))).json.message, { t: 1 });
});

test('a dropped session can be restored only within plugin_opt_session_ttl', async () => {
  const a = await ext(ctx.broker.mint('erin'));
  const sid = (await a.welcome()).json.sid;
  await a.subscribeAndWait(ID);
  a.ws.terminate();
  await sleep(5000); // session_ttl 3, swept every ping (1 s)
  const b = await ext(ctx.broker.mint('erin'), `&sid=${sid}`);
  assert.equal((await b.welcome()).json.restored, undefined);
});
