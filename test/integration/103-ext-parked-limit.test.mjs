// A user cannot pile up restorable sessions: at most plugin_opt_max_connections_per_user
// dropped ext sessions of one user wait for a restore. Each keeps its identifiers and
// the history of its streams alive after its connection's budgets were given back.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { useBroker, rawConnect, actuatorId, sleep } from './lib/index.mjs';

const EXT = 'actioncable-v1-ext-json';
const ctx = useBroker({ pluginOpts: { max_connections_per_user: 2, session_ttl: 60 } });

const ext = (token, query = '') =>
  rawConnect(`${ctx.broker.urlFor(token)}${query}`, { protocols: [EXT] });

async function restorable() {
  const text = await (await fetch(`http://127.0.0.1:${ctx.broker.wsPort}/metrics`)).text();
  return Number(text.match(/^cable_sessions_restorable (\d+)$/m)[1]);
}

// Connect as user, subscribe, drop the network; the session's sid.
async function dropped(user, id) {
  const c = await ext(ctx.broker.mint(user));
  const sid = (await c.welcome()).json.sid;
  await c.subscribeAndWait(actuatorId(id));
  c.ws.terminate();
  await sleep(200);
  return sid;
}

test('one user parks at most max_connections_per_user sessions; others are not affected', async () => {
  const sids = [];
  for (let i = 0; i < 3; i++) sids.push(await dropped('frank', 40 + i));
  assert.equal(await restorable(), 2);
  await dropped('grace', 50);
  assert.equal(await restorable(), 3, "another user's session still parks");

  // The one over the cap was forgotten; the first is still restorable.
  const late = await ext(ctx.broker.mint('frank'), `&sid=${sids[2]}`);
  assert.equal((await late.welcome()).json.restored, undefined);
  const first = await ext(ctx.broker.mint('frank'), `&sid=${sids[0]}`);
  assert.equal((await first.welcome()).json.restored, true);
  assert.equal(await restorable(), 2);
});
