// A raw WebSocket client (the `ws` package) for byte-level protocol checks.
//
//   const c = await rawConnect(broker.urlFor(token));      // waits for the upgrade
//   c.protocol                                             // selected sub-protocol
//   const w = await c.waitFor((f) => f.json?.type === 'welcome');
//   c.send({ command: 'subscribe', identifier: '{"channel":"ActuatorChannel","id":42}' });
//   const { code } = await c.closed;
import WebSocket from 'ws';
import { AsyncQueue, withTimeout } from './queue.mjs';
import { onCleanup } from './cleanup.mjs';

export const DEFAULT_PROTOCOLS = ['actioncable-v1-json', 'actioncable-unsupported'];

export const isPing = (f) => f.json && f.json.type === 'ping';
export const isWelcome = (f) => f.json && f.json.type === 'welcome';
export const isDisconnect = (f) => f.json && f.json.type === 'disconnect';
export const isConfirm = (id) => (f) => f.json && f.json.type === 'confirm_subscription' && f.json.identifier === id;
export const isReject = (id) => (f) => f.json && f.json.type === 'reject_subscription' && f.json.identifier === id;
export const isReply = (id) => (f) => f.json && f.json.identifier === id &&
  (f.json.type === 'confirm_subscription' || f.json.type === 'reject_subscription');
export const isMessageFor = (id) => (f) => f.json && f.json.identifier === id && !('type' in f.json) && 'message' in f.json;
export const notPing = (f) => !isPing(f);

export class RawClient {
  constructor(ws, url) {
    this.ws = ws;
    this.url = url;
    this.frames = new AsyncQueue(`frames from ${url}`);
    this.closeInfo = null;
    ws.on('message', (data, isBinary) => {
      const raw = isBinary ? null : data.toString('utf8');
      let json;
      if (raw !== null) { try { json = JSON.parse(raw); } catch { json = undefined; } }
      this.frames.push({ raw, json, binary: isBinary, bytes: data, at: Date.now() });
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (e) => { this.error = e; });
    onCleanup(() => this.close());
  }

  get protocol() { return this.ws.protocol; }

  send(cmd) {
    this.ws.send(typeof cmd === 'string' ? cmd : JSON.stringify(cmd));
  }

  subscribe(identifier) { this.send({ command: 'subscribe', identifier }); }

  unsubscribe(identifier) { this.send({ command: 'unsubscribe', identifier }); }

  perform(identifier, action, data = {}) {
    this.send({ command: 'message', identifier, data: JSON.stringify({ ...data, action }) });
  }

  waitFor(pred, ms = 3000, what = 'a matching frame') {
    return this.frames.nextMatching(pred, ms, what);
  }

  welcome(ms = 3000) { return this.waitFor(isWelcome, ms, 'welcome'); }

  // Subscribes and resolves with the confirm/reject frame for that identifier.
  async subscribeAndWait(identifier, ms = 3000) {
    this.subscribe(identifier);
    return this.waitFor(isReply(identifier), ms, `confirm/reject for ${identifier}`);
  }

  // All frames received so far (consumed or not), pings excluded unless asked.
  received({ pings = false } = {}) {
    return this.frames.all.filter((f) => pings || !isPing(f));
  }

  waitClosed(ms = 3000) { return withTimeout(this.closed, ms, `close of ${this.url}`); }

  async close() {
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.CONNECTING) { ws.terminate(); return; }
    ws.close(1000);
    try { await this.waitClosed(1000); } catch { ws.terminate(); }
  }
}

// Opens a WebSocket and resolves once it is upgraded; rejects with .statusCode on an
// HTTP answer without upgrade.
export function rawConnect(url, { protocols = DEFAULT_PROTOCOLS, timeout = 5000, headers } = {}) {
  return new Promise((resolve, reject) => {
    const ws = protocols === null ? new WebSocket(url, { headers }) : new WebSocket(url, protocols, { headers });
    const client = new RawClient(ws, url);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no upgrade from ${url} within ${timeout} ms`)); }, timeout);
    ws.once('open', () => { clearTimeout(timer); resolve(client); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      const err = new Error(`HTTP ${res.statusCode} instead of an upgrade from ${url}`);
      err.statusCode = res.statusCode;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Connects with the URL's token and resolves 'welcome', or the disconnect reason the
// server sent instead ('unauthorized', ...); closes the connection either way.
export async function authVerdict(url, ms = 5000) {
  const c = await rawConnect(url);
  const f = await c.waitFor((x) => isDisconnect(x) || isWelcome(x), ms, 'welcome or disconnect');
  await c.close();
  return isWelcome(f) ? 'welcome' : f.json.reason;
}
