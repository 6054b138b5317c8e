// In explicit anonymous mode every connection is user "anonymous", so the per-user
// connection limit must not apply (it would refuse every browser after the 100th);
// the total limit still does.
import { test } from 'node:test';
import { useBroker, rawConnect, isWelcome } from './lib/index.mjs';

const ctx = useBroker({ pluginOpts: { auth: 'anonymous', max_connections_per_user: '2' } });

test('anonymous: more connections than max_connections_per_user are all welcomed', async () => {
  const b = ctx.broker;
  const clients = [];
  for (let i = 0; i < 5; i++) clients.push(await rawConnect(b.wsUrl));
  for (const c of clients) await c.waitFor(isWelcome);
});
