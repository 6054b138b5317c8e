// Starts the real Debian mosquitto with the mosquitto-cable plugin on free loopback
// ports, in a private temp dir with its own JWT secret, and stops it again.
//
//   const b = await startBroker({ pluginOpts: { auth: 'anonymous' } });
//   b.wsUrl, b.mqttUrl, b.secret, b.mint('alice'), b.log(), await b.stop()
//
// useBroker(opts) registers node:test hooks for the current file/suite: start before
// the tests, print the broker log when a test fails, close the test's clients after
// each test, stop the broker (always) at the end.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, chownSync, chmodSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, afterEach } from 'node:test';
import jwt from 'jsonwebtoken';

import { runCleanups } from './cleanup.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BUILD = path.resolve(process.env.CABLE_BUILD_DIR || path.join(REPO, 'build'));
export const MOSQUITTO = process.env.MOSQUITTO || '/usr/sbin/mosquitto';
export const READY_LINE = 'mosquitto-cable: listening on';
// scripts/sanitize.sh runs part of the suite against the ASan+UBSan build of the plugin:
// CABLE_BROKER_PRELOAD names the ASan runtime, which only the broker gets as LD_PRELOAD
// (never node). Then a sanitizer report in the broker's output fails the test that
// stops the broker, and the broker gets longer to start.
export const BROKER_PRELOAD = process.env.CABLE_BROKER_PRELOAD || '';
const SANITIZER_REPORT = /^==\d+==ERROR: (?:AddressSanitizer|LeakSanitizer)|^SUMMARY: (?:Address|Leak|UndefinedBehavior|Thread)Sanitizer|^WARNING: ThreadSanitizer|: runtime error: /m;
export function brokerEnv(extra = {}) {
  if (!BROKER_PRELOAD) return { ...process.env, ...extra };
  return {
    ...process.env,
    LD_PRELOAD: BROKER_PRELOAD,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:halt_on_error=1',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
    TSAN_OPTIONS: process.env.TSAN_OPTIONS || 'halt_on_error=0:report_signal_unsafe=0',
    ...extra,
  };
}
// Throws when the broker's output holds a sanitizer report (a no-op without preload).
export function assertNoSanitizerReport(log, what = 'mosquitto') {
  if (BROKER_PRELOAD && SANITIZER_REPORT.test(log)) {
    throw new Error(`sanitizer report in the output of ${what}:\n${log.slice(-30_000)}`);
  }
}
const START_TIMEOUT_MS = BROKER_PRELOAD ? 30_000 : 10_000;
export const STATE_READY_LINE = 'mosquitto-cable: last values: connected';
const STOP_TIMEOUT_MS = 10_000;

const running = new Set();
// Safety net: never leave a broker behind, whatever happens to this process.
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// A free TCP port on 127.0.0.1: bind port 0, read the port, close.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// If this test process dies without stopping its broker (killed by a ctest timeout,
// say), a detached shell kills the broker within a second and removes its temp dir,
// so no orphaned mosquitto keeps ports or files. It checks the command line first, so
// a reused pid is never hit; it ends by itself as soon as the broker is gone.
function startWatchdog(brokerPid, confFile, dir) {
  const script = [
    'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done',
    'if kill -0 "$2" 2>/dev/null && tr "\\0" " " < "/proc/$2/cmdline" | grep -qF -- "$3"; then kill -9 "$2"; fi',
    'sleep 1',
    'rm -rf -- "$4"',
  ].join('\n');
  const wd = spawn('/bin/sh', ['-c', script, 'cable-it-watchdog', String(process.pid), String(brokerPid), confFile, dir],
    { detached: true, stdio: 'ignore' });
  wd.unref();
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

// mosquitto started as root drops privileges to the `mosquitto` user before it calls
// the plugin's init, so the files the plugin reads must be readable by that user.
function mosquittoUser() {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'mosquitto']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'mosquitto']).toString().trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

/**
 * opts.pluginOpts: { key: value } added to / overriding the plugin_opt_<key> lines
 *                  (plugin_opt_threads is $CABLE_TEST_THREADS, else 2);
 *                  a value of null removes the line.
 * opts.secret:     the secret bytes (string or Buffer) instead of a random one.
 * opts.extraConf:  extra mosquitto.conf lines (before the plugin line).
 * opts.perListenerSettings: true writes `per_listener_settings true` (default false).
 * opts.env:        extra environment variables for the broker process.
 * opts.files:      { name: content } written into the broker's temp dir (readable by
 *                  the broker); "$DIR" in pluginOpts values stands for that dir.
 * opts.nofile:     run the broker with this descriptor limit (soft and hard), through
 *                  prlimit(1), which execs mosquitto: broker.pid stays the broker's.
 * opts.state:      true: last values on (a unix-socket listener $DIR/state.sock and
 *                  plugin_opt_state_listener naming it); ready once the internal client
 *                  has synchronised ("last values: connected" in the log).
 * When mosquitto exits or is not ready in time, the error thrown carries .exit
 * ({code, signal}, null on a timeout) and .log (the broker's output).
 */
export async function startBroker(opts = {}) {
  const plugin = path.join(BUILD, 'mosquitto_cable.so');
  if (!existsSync(plugin)) throw new Error(`plugin not built: ${plugin} (set CABLE_BUILD_DIR)`);

  const mqttPort = await freePort();
  let wsPort = await freePort();
  while (wsPort === mqttPort) wsPort = await freePort();

  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-it-'));
  // A 64-byte secret: the base64url text of 48 random bytes (384 bits), no newline;
  // what a Node backend would keep in an environment variable or a file.
  const secret = opts.secret ?? randomBytes(48).toString('base64url');
  const secretFile = path.join(dir, 'secret');
  writeFileSync(secretFile, secret, { mode: 0o600 });
  const extraFiles = Object.entries(opts.files || {}).map(([name, content]) => {
    const f = path.join(dir, name);
    writeFileSync(f, content, { mode: 0o600 });
    return f;
  });

  const pluginOpts = {
    address: '127.0.0.1',
    port: String(wsPort),
    path: '/cable',
    channels_file: path.join(REPO, 'config', 'channels.example.json'),
    jwt_secret_file: secretFile,
    ...(opts.state ? { state_listener: '$DIR/state.sock' } : {}),
    // Gateway shards: the suite runs with 2 (CABLE_TEST_THREADS=1 runs it with one).
    threads: process.env.CABLE_TEST_THREADS || '2',
    ...(opts.pluginOpts || {}),
  };
  const lines = [
    `per_listener_settings ${opts.perListenerSettings ? 'true' : 'false'}`,
    `listener ${mqttPort} 127.0.0.1`,
    'allow_anonymous true',
    'log_type all',
    'log_dest stderr',
    ...(opts.state ? [`listener 0 ${path.join(dir, 'state.sock')}`] : []),
    ...(opts.extraConf || []).map((l) => l.replaceAll('$DIR', dir)),
    `plugin ${plugin}`,
  ];
  for (const [k, v] of Object.entries(pluginOpts)) {
    if (v !== null && v !== undefined) lines.push(`plugin_opt_${k} ${String(v).replaceAll('$DIR', dir)}`);
  }
  const confFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(confFile, `${lines.join('\n')}\n`);

  const owner = mosquittoUser();
  if (owner) {
    for (const f of [dir, secretFile, confFile, ...extraFiles]) chownSync(f, owner.uid, owner.gid);
  }
  chmodSync(dir, 0o700);

  let logText = '';
  const argv = opts.nofile
    ? ['prlimit', [`--nofile=${opts.nofile}:${opts.nofile}`, MOSQUITTO, '-c', confFile]]
    : [MOSQUITTO, ['-c', confFile]];
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'pipe'], env: brokerEnv(opts.env) });
  running.add(child);
  startWatchdog(child.pid, confFile, dir);
  const append = (chunk) => { logText += chunk.toString(); };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  child.once('error', (e) => { logText += `\n[harness] spawn error: ${e.message}\n`; });

  const broker = {
    wsPort,
    mqttPort,
    wsUrl: `ws://127.0.0.1:${wsPort}/cable`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    secret,
    dir,
    confFile,
    pid: child.pid,
    log: () => logText,
    exited: () => exitInfo,
    // An HS256 token exactly as a Node backend would mint one (jsonwebtoken).
    // opts: { secret, algorithm, expiresIn, claims, subject (false: no sub) }
    mint(user, o = {}) {
      const payload = { ...(o.claims || {}) };
      const signOpts = { algorithm: o.algorithm || 'HS256' };
      if (o.expiresIn !== null) signOpts.expiresIn = o.expiresIn ?? '10m';
      if (user !== null && user !== undefined) signOpts.subject = String(user);
      return jwt.sign(payload, o.secret ?? secret, signOpts);
    },
    // URL with the token as the `jid` query parameter.
    urlFor(token) {
      return token === undefined || token === null ? this.wsUrl
        : `${this.wsUrl}?jid=${encodeURIComponent(token)}`;
    },
    // SIGTERM, wait for exit; resolves { code, signal, log }.
    async stop() {
      if (!exitInfo) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          logText += '\n[harness] broker did not exit within 10 s of SIGTERM: SIGKILL\n';
          child.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      assertNoSanitizerReport(logText);
      return { code: exitInfo.code, signal: exitInfo.signal, log: logText };
    },
  };

  // Ready when the plugin says it listens and the MQTT port accepts connections.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exitInfo) {
      rmSync(dir, { recursive: true, force: true });
      const err = new Error(`mosquitto exited during start-up (code ${exitInfo.code}, signal ` +
        `${exitInfo.signal}); config:\n${lines.join('\n')}\n--- broker log ---\n${logText}`);
      err.exit = exitInfo;
      err.log = logText;
      throw err;
    }
    if (logText.includes(READY_LINE) && await canConnect(mqttPort) &&
        (!opts.state || logText.includes(STATE_READY_LINE))) break;
    if (Date.now() > deadline) {
      await broker.stop();
      const err = new Error(`mosquitto not ready within ${START_TIMEOUT_MS} ms (waiting for ` +
        `"${READY_LINE}" and MQTT port ${mqttPort}); config:\n${lines.join('\n')}\n` +
        `--- broker log ---\n${logText}`);
      err.exit = null;
      err.log = logText;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return broker;
}

// Starts a broker that must fail to start; resolves with startBroker's error (.exit,
// .log). Rejects if the broker started, or was stopped by the harness instead of exiting.
export async function startBrokerMustFail(opts) {
  let started;
  try {
    started = await startBroker(opts);
  } catch (e) {
    if (!e.exit) throw new Error(`the broker must exit by itself, not hang: ${e.message}`);
    return e;
  }
  await started.stop();
  throw new Error('the broker started; it must not');
}

export function printBrokerLog(broker, title) {
  const text = broker.log();
  const max = 40_000;
  const shown = text.length > max ? `...(${text.length - max} bytes cut)...\n${text.slice(-max)}` : text;
  process.stderr.write(`\n----- mosquitto log (${title}) -----\n${shown}\n----- end of mosquitto log -----\n`);
}

// Hooks for a test file (or describe block). Returns a holder whose .broker is set
// once the `before` hook has run.
export function useBroker(opts = {}) {
  const holder = { broker: null };
  before(async () => {
    holder.broker = await startBroker(opts);
  });
  afterEach(async (t) => {
    if (t.passed === false && holder.broker) printBrokerLog(holder.broker, `after failed test "${t.name}"`);
    await runCleanups();
  });
  after(async () => {
    await runCleanups();
    if (holder.broker) await holder.broker.stop();
  });
  return holder;
}
