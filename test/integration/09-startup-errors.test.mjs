// Start-up errors stop the broker, with a log line naming the option: the port in use,
// a bad or unknown option, a missing or malformed file.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBrokerMustFail, freePort, runCleanups, onCleanup, READY_LINE } from './lib/index.mjs';

afterEach(runCleanups);

// Starts a broker that must fail; returns the error (with .exit and .log).
async function mustFail(opts) {
  const err = await startBrokerMustFail(opts);
  assert.notEqual(err.exit.code, 0, 'non-zero exit code');
  assert.ok(!err.log.includes(READY_LINE), 'never said it was listening');
  return err;
}

function assertNames(err, option) {
  const lines = err.log.split('\n').filter((l) => l.includes(option));
  assert.ok(lines.length >= 1, `a log line names ${option}; log:\n${err.log}`);
}

test('WebSocket port already in use', async () => {
  const port = await freePort();
  const srv = net.createServer();
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => srv.close(r)));
  const err = await mustFail({ pluginOpts: { port } });
  assertNames(err, 'plugin_opt_port');
});

test('unknown option', async () => {
  assertNames(await mustFail({ pluginOpts: { bogus_option: '1' } }), 'plugin_opt_bogus_option');
});

test('port out of range', async () => {
  assertNames(await mustFail({ pluginOpts: { port: '70000' } }), 'plugin_opt_port');
});

test('bad auth mode', async () => {
  assertNames(await mustFail({ pluginOpts: { auth: 'maybe' } }), 'plugin_opt_auth');
});

test('bad event loop', async () => {
  assertNames(await mustFail({ pluginOpts: { event_loop: 'select' } }), 'plugin_opt_event_loop');
});

test('missing channels file', async () => {
  assertNames(await mustFail({ pluginOpts: { channels_file: '$DIR/nope.json' } }), 'plugin_opt_channels_file');
});

test('malformed channels file', async () => {
  const err = await mustFail({
    files: { 'channels.json': '{"channels": {"X": {"streams": ["a/{nope}"]}}' },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });
  assertNames(err, 'plugin_opt_channels_file');
});

test('missing JWT secret file', async () => {
  assertNames(await mustFail({ pluginOpts: { jwt_secret_file: '$DIR/nope' } }), 'plugin_opt_jwt_secret_file');
});

test('JWT secret shorter than 32 bytes', async () => {
  assertNames(await mustFail({ secret: 'too-short-16byte' }), 'plugin_opt_jwt_secret_file');
});
