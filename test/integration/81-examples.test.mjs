// examples/ run against the real broker, exactly as the README shows them: tokens minted
// in Ruby (Debian's ruby-jwt) and in Node (jsonwebtoken) from a secret file with a
// trailing newline and bytes outside ASCII, and the stock @rails/actioncable and
// @anycable/core clients in Node receiving a device's publish and saying "on".
import { test, after, afterEach, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startBroker, mqttConnect, runCleanups, onCleanup, REPO, AsyncQueue } from './lib/index.mjs';

const example = (name) => path.join(REPO, 'examples', name);
const README = readFileSync(path.join(REPO, 'README.md'), 'utf8');

// 48 random bytes with every high bit set somewhere, then a newline: the plugin's rule
// (one trailing newline is not part of the secret) and raw bytes, in one file.
const SECRET = Buffer.concat([randomBytes(48).map((b, i) => (i % 3 ? b : b | 0x80)), Buffer.from('\n')]);

let broker;
before(async () => { broker = await startBroker({ secret: SECRET }); });
after(async () => { await runCleanups(); await broker?.stop(); });
afterEach(runCleanups);

const env = () => ({ ...process.env, CABLE_JWT_SECRET_FILE: path.join(broker.dir, 'secret') });

// Runs an example until it has printed a line matching pred for each expectation.
function runExample(args) {
  const child = spawn(process.execPath, args, { cwd: REPO, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = new AsyncQueue(`output of ${args.join(' ')}`);
  let err = '';
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  child.stderr.on('data', (d) => { err += d; });
  onCleanup(() => new Promise((r) => { if (child.exitCode !== null) r(); else { child.once('exit', r); child.kill('SIGINT'); } }));
  return { lines, stderr: () => err };
}

async function clientReceivesAndSpeaks(args) {
  const dev = await mqttConnect(broker.mqttUrl);
  await dev.subscribe('actuators/42/cmd');
  const c = runExample(args);
  try {
    assert.deepEqual(JSON.parse(await c.lines.next(8000)), { connected: true });
    const said = await dev.nextOn('actuators/42/cmd', 5000);
    assert.deepEqual(JSON.parse(said.text), { user: 'alice', message: 'on' });
    await dev.publish('actuators/42/state', '{"on":true}');
    await c.lines.nextMatching((l) => l === '{"on":true}', 5000, 'the device publish, printed');
  } catch (e) {
    e.message += `\nexample stderr:\n${c.stderr()}`;
    throw e;
  }
}

test('Ruby (ruby-jwt) token, exactly as the README shows, opens the stock Rails client in Node', async () => {
  const rb = readFileSync(example('token.rb'), 'utf8');
  assert.ok(README.includes(rb.trim()), 'README shows examples/token.rb verbatim');
  const token = execFileSync('ruby', [example('token.rb')], { env: env() }).toString().trim();
  await clientReceivesAndSpeaks([example('actioncable-node.mjs'), broker.urlFor(token)]);
});

test('Node (jsonwebtoken) token, exactly as the README shows, opens the AnyCable client', async () => {
  const js = readFileSync(example('token.mjs'), 'utf8');
  assert.ok(README.includes(js.trim()), 'README shows examples/token.mjs verbatim');
  const token = execFileSync(process.execPath, [example('token.mjs')], { env: env() }).toString().trim();
  await clientReceivesAndSpeaks([example('anycable-node.mjs'), broker.wsUrl, token]);
});

test('the README points Node users at the runnable example, and the minting tool agrees', async () => {
  assert.match(README, /node examples\/actioncable-node\.mjs/);
  const tool = path.join(process.env.CABLE_BUILD_DIR || path.join(REPO, 'build'), 'mosquitto-cable-token');
  const token = execFileSync(tool, ['--secret-file', path.join(broker.dir, 'secret'), '--user', 'alice']).toString().trim();
  await clientReceivesAndSpeaks([example('actioncable-node.mjs'), broker.urlFor(token)]);
});
