// Log lines cannot be forged or garbled by what a client sends. Every client-supplied
// string that reaches the broker log (the token's sub, a command name, an identifier,
// an action, an Origin) is escaped: a newline shows as \n, ESC as \x1b, a C1 control
// or a bidi override as \u{...}, a byte that is not UTF-8 as \xHH. The broker log, read
// as users read it (one line per event), must contain no line the client wrote and no
// raw control character.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { useBroker, rawConnect, actuatorId, isReply, onCleanup, sleep } from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

const ORIGIN = 'https://app.example';
const HOSTILE = '\nFORGED-%s 1700000000: mosquitto-cable: pwned\r\x1b[2J\x1b]0;title\x07\u0085\u2028\u202e';

// Everything the broker wrote since `from`, and its lines.
function logSince(b, from) {
  return b.log().slice(from);
}

function assertClean(text, what) {
  const lines = text.split('\n');
  for (const line of lines) {
    assert.ok(!/^\s*FORGED/.test(line), `${what}: a forged line in the log: ${JSON.stringify(line)}`);
    assert.ok(!/^\d+: (mosquitto-cable: )?pwned/.test(line), `${what}: a forged line: ${JSON.stringify(line)}`);
  }
  // No raw control character but the newline that ends each line.
  const raw = text.match(/[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u2028\u2029\u202a-\u202e]/u);
  assert.equal(raw, null, `${what}: raw control character ${JSON.stringify(raw?.[0])} in the log`);
}

// The upgrade request written by hand: Node's http refuses control bytes in headers.
function rawUpgrade(port, originBytes) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    onCleanup(() => sock.destroy());
    let answer = '';
    sock.on('data', (d) => { answer += d.toString('latin1'); });
    sock.on('error', reject);
    sock.on('close', () => resolve(answer));
    sock.on('connect', () => {
      sock.write(Buffer.concat([
        Buffer.from(`GET /cable HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: actioncable-v1-json\r\nOrigin: '),
        originBytes,
        Buffer.from('\r\n\r\n'),
      ]));
    });
    setTimeout(() => { sock.destroy(); resolve(answer); }, 3000);
  });
}

describe('hostile strings in log lines', () => {
  const ctx = useBroker({ pluginOpts: { allowed_origins: ORIGIN } });
  const connect = (token) => rawConnect(ctx.broker.urlFor(token), { headers: { Origin: ORIGIN } });

  test("a token whose sub holds a newline, CR and escape sequences", async () => {
    const b = ctx.broker;
    const from = b.log().length;
    const sub = `mallory${HOSTILE.replace('%s', 'SUB')}`;
    const c = await connect(b.mint(sub));
    await c.welcome();
    // Refusals that name the user: an unknown channel, a message without subscription.
    const unknown = JSON.stringify({ channel: 'NoSuchChannel' });
    await c.subscribeAndWait(unknown);
    c.perform(actuatorId(7), 'speak', { message: 'x' });
    await waitForLog(b, /message for an identifier it is not subscribed/, 3000, from);
    const text = logSince(b, from);
    assertClean(text, 'sub');
    assert.match(text, /user mallory\\nFORGED-SUB 1700000000: mosquitto-cable: pwned\\r\\x1b\[2J\\x1b\]0;title\\x07\\u\{0085\}\\u\{2028\}\\u\{202e\}\)/);
  });

  test('a command name, an identifier and an action with newlines', async () => {
    const b = ctx.broker;
    const from = b.log().length;
    const c = await connect(b.mint('alice'));
    await c.welcome();
    c.send({ command: `evil${HOSTILE.replace('%s', 'CMD')}`, identifier: 'x' });
    const id = JSON.stringify({ channel: `Evil${HOSTILE.replace('%s', 'ID')}` });
    await c.subscribeAndWait(id);
    assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
    c.perform(actuatorId(42), `act${HOSTILE.replace('%s', 'ACTION')}`, {});
    await waitForLog(b, /perform refused/, 3000, from);
    const text = logSince(b, from);
    assertClean(text, 'command/identifier/action');
    assert.match(text, /ignored unknown command 'evil\\nFORGED-CMD 1700000000: mosquitto-cable: pwned\\r\\x1b\[2J/);
  });

  test('an Origin with escape sequences and bytes that are not UTF-8', async () => {
    const b = ctx.broker;
    const from = b.log().length;
    const answer = await rawUpgrade(b.wsPort, Buffer.concat([
      Buffer.from('https://evil.example\x1b[2J\x1b[1;1H', 'latin1'),
      Buffer.from([0x9b, 0x33, 0x31, 0x6d, 0xc2, 0x85, 0xff]),
      Buffer.from('FORGED-ORIGIN', 'latin1'),
    ]));
    assert.match(answer, /403/);
    await waitForLog(b, /Origin '.*' is not allowed/, 3000, from);
    const text = logSince(b, from);
    assertClean(text, 'Origin');
    assert.match(text, /Origin 'https:\/\/evil\.example\\x1b\[2J\\x1b\[1;1H\\x9b31m\\u\{0085\}\\xffFORGED-ORIGIN' is not allowed/);
  });
});
