// Log flooding: one connection's refusals are logged at most 5 times a minute, the rest
// counted into one summary line; and a connection that keeps sending invalid commands
// (more than 100 in a minute: malformed, unknown, binary, or a message for an
// identifier it is not subscribed to) is told
// {"type":"disconnect","reason":"invalid_request","reconnect":false} and closed (1008).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, rawConnect, isDisconnect, sleep } from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

const count = (text, re) => (text.match(re) || []).length;

describe('refusal logging is bounded per connection', () => {
  const ctx = useBroker();

  test('thousands of unknown commands: a few log lines, a summary, then invalid_request', async () => {
    const b = ctx.broker;
    const from = b.log().length;
    const c = await rawConnect(b.urlFor(b.mint('flooder')));
    const { json: { sid } } = await c.welcome();
    for (let i = 0; i < 5000; i++) c.send({ command: `bogus${i}`, identifier: 'x' });
    const f = await c.waitFor(isDisconnect, 10000, 'disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'invalid_request', reconnect: false });
    const { code } = await c.waitClosed(5000);
    assert.equal(code, 1008, 'close code: policy violation');
    await waitForLog(b, new RegExp(`connection ${sid}: \\d+ more refusals not logged`), 5000, from);
    const text = b.log().slice(from);
    const mine = text.split('\n').filter((l) => l.includes(sid));
    assert.equal(count(text, new RegExp(`connection ${sid} \\S+: ignored unknown command`, 'g')), 5, 'refusals logged');
    assert.match(text, new RegExp(`connection ${sid} \\(\\S+\\) closed: more than 100 invalid commands in a minute`));
    // Lines that name the connection: 5 refusals, the close, the summary (and nothing per command).
    assert.ok(mine.length <= 10, `log lines for ${sid}: ${mine.length}\n${mine.slice(0, 20).join('\n')}`);
    const [, missed] = text.match(new RegExp(`connection ${sid}: (\\d+) more refusals not logged`));
    assert.ok(Number(missed) >= 96 && Number(missed) <= 4995, `summary count ${missed}`);
  });

  test('below the close threshold the connection stays open and the log still gets only 5 lines', async () => {
    const b = ctx.broker;
    const from = b.log().length;
    const c = await rawConnect(b.urlFor(b.mint('sloppy')));
    const { json: { sid } } = await c.welcome();
    for (let i = 0; i < 40; i++) c.send(i % 2 ? 'not json' : { command: 'nope', identifier: 'x' });
    // A valid command after them is still served.
    c.send({ command: 'subscribe', identifier: JSON.stringify({ channel: 'ActuatorChannel', id: 1 }) });
    await c.waitFor((x) => x.json?.type === 'confirm_subscription', 5000, 'confirm');
    assert.equal(c.closeInfo, null);
    await c.close();
    await waitForLog(b, new RegExp(`connection ${sid}: 35 more refusals not logged`), 5000, from);
    const text = b.log().slice(from);
    assert.equal(count(text, new RegExp(`connection ${sid} \\S+: ignored (unknown|a malformed) command`, 'g')), 5);
  });

  test('binary frames and messages without a subscription count as invalid too', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('binary')));
    await c.welcome();
    for (let i = 0; i < 60; i++) c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    for (let i = 0; i < 60; i++) c.send({ command: 'message', identifier: '{"channel":"ActuatorChannel","id":9}', data: '{"action":"speak"}' });
    const f = await c.waitFor(isDisconnect, 10000, 'disconnect');
    assert.equal(f.json.reason, 'invalid_request');
    await sleep(10);
  });
});
