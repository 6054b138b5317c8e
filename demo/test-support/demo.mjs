// Helpers for the demo's integration tests (test/integration/5*-*.test.mjs): lay out the
// page with demo/prepare.sh, run the simulated device, launch Debian's Chromium through
// playwright-core. The broker itself comes from the shared harness (test/integration/lib).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A fresh, world-readable directory holding the page exactly as `make run` serves it.
// Returns { dir, remove() }.
export function prepareSite() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-www-'));
  chmodSync(dir, 0o755); // mosquitto drops to user `mosquitto` before serving a file
  execFileSync(path.join(DEMO, 'prepare.sh'), [dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const runningDevices = new Set();
process.on('exit', () => {
  for (const child of runningDevices) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// Runs `node demo/device.mjs --url <mqttUrl> --ids <ids>` and resolves once it printed
// its "device ready:" line. Returns { output(), stop(), kill() }.
export function startDevice(mqttUrl, ids = [42, 43], { timeout = 10_000 } = {}) {
  const child = spawn(process.execPath, [path.join(DEMO, 'device.mjs'), '--url', mqttUrl, '--ids', ids.join(',')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  runningDevices.add(child);
  let text = '';
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      runningDevices.delete(child);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  const device = {
    output: () => text,
    // Gone without a word (SIGKILL): the broker publishes each actuator's will.
    async kill() {
      if (!exitInfo) child.kill('SIGKILL');
      return exited;
    },
    async stop() {
      if (!exitInfo) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      return exitInfo;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      device.stop();
      reject(new Error(`device simulator not ready within ${timeout} ms; output:\n${text}`));
    }, timeout);
    const onData = (chunk) => {
      text += chunk.toString();
      if (/^device ready:/m.test(text)) {
        clearTimeout(timer);
        resolve(device);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { text += chunk.toString(); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`device simulator exited (code ${code}, signal ${signal}); output:\n${text}`));
    });
  });
}

// Debian's Chromium (apt-get install -y chromium), driven by playwright-core.
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's browser with ` +
      '`apt-get install -y chromium` (scripts/deps.sh test does), or set CHROMIUM');
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

// Collects what a page complains about: uncaught exceptions, console.error, failed
// requests, HTTP error answers. `problems` is an array of strings.
export function watchPage(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console.error: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  return problems;
}
