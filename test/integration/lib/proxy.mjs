// A TCP proxy that can cut the network: between a client and the broker's WebSocket
// port, for tests of what survives a dropped connection.
//
//   const p = await startProxy(broker.wsPort);   // p.url('/cable?jid=...')
//   p.cutOne();          // cut one connection at random
//   p.down();            // cut every connection, refuse new ones (a network outage)
//   p.up();              // accept again
//   p.retarget(port);    // later connections go to another port (a restarted broker)
import net from 'node:net';

import { onCleanup } from './cleanup.mjs';

export async function startProxy(targetPort) {
  const pairs = new Set();
  let target = targetPort;
  let isUp = true;
  const server = net.createServer((client) => {
    if (!isUp) { client.destroy(); return; }
    const upstream = net.connect(target, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const proxy = {
    port,
    url: (pathAndQuery) => `ws://127.0.0.1:${port}${pathAndQuery}`,
    connections: () => pairs.size,
    cut() {
      for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy(); }
      pairs.clear();
    },
    // Cut one connection chosen by rand() (a function returning [0, 1)); false if none.
    cutOne(rand = Math.random) {
      if (pairs.size === 0) return false;
      const pick = [...pairs][Math.floor(rand() * pairs.size)];
      pick.client.destroy();
      pick.upstream.destroy();
      pairs.delete(pick);
      return true;
    },
    down() { isUp = false; this.cut(); },
    up() { isUp = true; },
    retarget(p) { target = p; },
    close() { this.down(); return new Promise((r) => server.close(() => r())); },
  };
  onCleanup(() => proxy.close());
  return proxy;
}
