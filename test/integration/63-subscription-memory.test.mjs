// Subscription state is bounded: identifiers longer than plugin_opt_max_identifier_size
// are rejected, and what a connection's subscriptions hold (identifiers, streams) is
// bounded per connection (plugin_opt_max_subscription_bytes) and per user
// (plugin_opt_max_subscription_bytes_per_user); the memory goes back to the system
// after a burst. The broker's RSS before, at the peak and after is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useBroker, rawConnect, isReply, actuatorId } from './lib/index.mjs';

const ctx = useBroker();
const MiB = 1024 * 1024;

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A valid ActuatorChannel identifier padded to about `size` bytes (extra keys are
// ignored by the channel map, as Rails ignores them).
const padded = (id, n, size) => JSON.stringify({ channel: 'ActuatorChannel', id, n, pad: 'x'.repeat(size) });

// The gateway gives freed memory back at a ping round (every 3 s): the RSS once it is
// within 4 MiB of `before`, or after 12 s (then the test's own bound decides).
async function settledRss(pid, before) {
  const end = Date.now() + 12_000;
  await sleep(3500);
  while (rssKiB(pid) - before >= 4 * 1024 && Date.now() < end) await sleep(500);
  return rssKiB(pid);
}

// Log lines reach the broker's log a moment after the frames reach the client.
async function waitForLog(b, re, ms = 5000) {
  const end = Date.now() + ms;
  while (!re.test(b.log())) {
    if (Date.now() > end) assert.match(b.log(), re);
    await sleep(50);
  }
}

// Sends every identifier, then waits for a reply to each; resolves with the counts.
async function subscribeAll(c, ids, ms = 20_000) {
  for (const id of ids) c.subscribe(id);
  let confirmed = 0;
  let rejected = 0;
  for (const id of ids) {
    const f = await c.waitFor(isReply(id), ms, `reply for #${confirmed + rejected}`);
    if (f.json.type === 'confirm_subscription') confirmed++;
    else rejected++;
  }
  return { confirmed, rejected };
}

test('an identifier over 4096 bytes (plugin_opt_max_identifier_size) is rejected; one under it is confirmed', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const long = padded(42, 0, 5000);
  const fine = padded(42, 1, 3900);
  assert.equal((await c.subscribeAndWait(long)).json.type, 'reject_subscription');
  assert.equal((await c.subscribeAndWait(fine)).json.type, 'confirm_subscription');
  await waitForLog(b, new RegExp(`subscription rejected: identifier of ${long.length} bytes, over 4096 \\(plugin_opt_max_identifier_size\\)`));
});

test('one connection: subscriptions stop at 256 KiB (plugin_opt_max_subscription_bytes)', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('bob')));
  await c.welcome();
  const ids = Array.from({ length: 100 }, (_, i) => padded(i, i, 3900));
  const { confirmed, rejected } = await subscribeAll(c, ids);
  // Each holds its ~3.9 KB identifier twice plus bookkeeping: about 30 fit in 256 KiB.
  assert.ok(confirmed >= 20 && confirmed <= 33, `${confirmed} confirmed`);
  assert.equal(confirmed + rejected, 100);
  await waitForLog(b, /user bob\) subscription rejected: its subscriptions would hold more than 262144 bytes \(plugin_opt_max_subscription_bytes\)/);
  // The small subscriptions of a real page still fit next to them... on another connection.
  const d = await rawConnect(b.urlFor(b.mint('bob')));
  await d.welcome();
  assert.equal((await d.subscribeAndWait(actuatorId(7))).json.type, 'confirm_subscription');
});

test('one user on 100 connections with ~4 KB identifiers: bounded per user, memory returned after', async () => {
  const b = ctx.broker;
  const before = rssKiB(b.pid);
  const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
  const perUser = 20; // x 5 users = 100 connections
  const conns = [];
  for (const u of users) {
    for (let i = 0; i < perUser; i++) {
      const c = await rawConnect(b.urlFor(b.mint(u)));
      await c.welcome();
      conns.push({ u, c, i });
    }
  }
  const results = await Promise.all(conns.map(({ c, i }) =>
    subscribeAll(c, Array.from({ length: 64 }, (_, k) => padded(k, i * 1000 + k, 3900)))));
  const peak = rssKiB(b.pid);
  const byUser = {};
  conns.forEach(({ u }, k) => { byUser[u] = (byUser[u] || 0) + results[k].confirmed; });
  for (const u of users) {
    // 4 MiB per user at ~8.3 KB per subscription: about 500, far below 20 x 30.
    assert.ok(byUser[u] >= 400 && byUser[u] <= 520, `user ${u}: ${byUser[u]} subscriptions confirmed`);
  }
  await waitForLog(b, /subscription rejected: the user's subscriptions would hold more than 4194304 bytes \(plugin_opt_max_subscription_bytes_per_user\)/);

  for (const { c } of conns) await c.close();
  const after = await settledRss(b.pid, before);
  process.stdout.write(`# 100 connections x 64 subscribes of ~3.9 KB: broker RSS before ${before} KiB, ` +
    `peak ${peak} KiB, after ${after} KiB\n`);
  assert.ok(peak - before < 64 * 1024, `the peak stays bounded (+${peak - before} KiB)`);
  assert.ok(after - before < 4 * 1024, `memory goes back after the burst (+${after - before} KiB)`);
});

test('the attack of issue 10, scaled down: 30 connections x 24 subscribes with 60 KB identifiers', async () => {
  const b = ctx.broker;
  const before = rssKiB(b.pid);
  const conns = [];
  for (let i = 0; i < 30; i++) {
    const c = await rawConnect(b.urlFor(b.mint('mallory')));
    await c.welcome();
    conns.push(c);
  }
  const results = await Promise.all(conns.map((c, i) =>
    subscribeAll(c, Array.from({ length: 24 }, (_, k) => padded(k, i * 100 + k, 60_000)), 60_000)));
  const peak = rssKiB(b.pid);
  for (const c of conns) await c.close();
  const after = await settledRss(b.pid, before);
  process.stdout.write(`# 30 connections x 24 subscribes of ~60 KB: broker RSS before ${before} KiB, ` +
    `peak ${peak} KiB, after ${after} KiB\n`);
  assert.equal(results.reduce((n, r) => n + r.confirmed, 0), 0, 'every one rejected');
  // Holding them would take 30 x 24 x 2 x 60 KB = 86 MB. What the peak holds instead is
  // rejects waiting for the test to read them (at most max_outbound_bytes each).
  assert.ok(peak - before < 48 * 1024, `the peak stays bounded (+${peak - before} KiB)`);
  // Some of the burst's heap stays fragmented (2.5-4.7 MiB seen): most goes back.
  assert.ok(after - before < 8 * 1024, `memory goes back after the burst (+${after - before} KiB)`);
});
