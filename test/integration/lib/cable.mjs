// The stock @rails/actioncable consumer, with promise-based helpers for tests.
//
//   const cable = createCable(broker.urlFor(token));
//   const sub = cable.subscribe({ channel: 'ActuatorChannel', id: 42 });
//   await sub.confirmed();               // connected() called (or throws on rejected())
//   const msg = await sub.next();        // next received(data)
//   sub.perform('speak', { message: 'hi' });
//   await cable.close();
import ActionCable from './shims.mjs';
import { AsyncQueue } from './queue.mjs';
import { onCleanup } from './cleanup.mjs';

export { ActionCable };

export class CableSubscription {
  constructor(cable, params) {
    this.cable = cable;
    this.params = params;
    // Every callback the client makes, in order: {type, arg, at}.
    this.events = new AsyncQueue(`events of ${JSON.stringify(params)}`);
    // Only received(data) payloads.
    this.received = new AsyncQueue(`received() of ${JSON.stringify(params)}`);
    const self = this;
    this.subscription = cable.consumer.subscriptions.create(params, {
      connected(arg) { self.events.push({ type: 'connected', arg, at: Date.now() }); },
      rejected() { self.events.push({ type: 'rejected', at: Date.now() }); },
      disconnected(arg) { self.events.push({ type: 'disconnected', arg, at: Date.now() }); },
      received(data) {
        self.events.push({ type: 'received', arg: data, at: Date.now() });
        self.received.push(data);
      },
    });
    this.identifier = this.subscription.identifier;
  }

  // Resolves on connected(); throws if rejected() comes first or nothing within ms.
  async confirmed(ms = 5000) {
    const ev = await this.events.nextMatching((e) => e.type === 'connected' || e.type === 'rejected',
      ms, 'connected() or rejected() callback');
    if (ev.type !== 'connected') throw new Error(`subscription ${this.identifier} was rejected`);
    return ev.arg;
  }

  // Resolves on rejected(); throws if connected() comes first or nothing within ms.
  async rejected(ms = 5000) {
    const ev = await this.events.nextMatching((e) => e.type === 'connected' || e.type === 'rejected',
      ms, 'connected() or rejected() callback');
    if (ev.type !== 'rejected') throw new Error(`subscription ${this.identifier} was confirmed, expected a rejection`);
  }

  async disconnected(ms = 5000) {
    const ev = await this.events.nextMatching((e) => e.type === 'disconnected', ms, 'disconnected() callback');
    return ev.arg;
  }

  next(ms = 3000) {
    return this.received.next(ms, 'received(data) call');
  }

  expectNone(ms = 500) {
    return this.received.expectNone(ms, () => true, 'received(data) call');
  }

  perform(action, data = {}) {
    const sent = this.subscription.perform(action, data);
    if (!sent) throw new Error(`perform(${action}) not sent: socket not open`);
    return sent;
  }

  unsubscribe() {
    return this.subscription.unsubscribe();
  }
}

export class Cable {
  constructor(url) {
    this.url = url;
    this.consumer = ActionCable.createConsumer(url);
    onCleanup(() => this.close());
  }

  subscribe(params) {
    return new CableSubscription(this, params);
  }

  get connection() { return this.consumer.connection; }

  get webSocket() { return this.consumer.connection.webSocket; }

  // Resolves once the client's WebSocket is open (readyState OPEN).
  async opened(ms = 5000) {
    const deadline = Date.now() + ms;
    while (!this.connection.isOpen()) {
      if (Date.now() > deadline) throw new Error(`consumer WebSocket to ${this.url} not open within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.connection.getProtocol();
  }

  // Stops the client for good: no monitor polls, no guarantor retries, socket closed.
  async close() {
    const conn = this.consumer.connection;
    conn.monitor.stop();
    this.consumer.subscriptions.guarantor.stopGuaranteeing();
    const ws = conn.webSocket;
    try { this.consumer.disconnect(); } catch { /* ignore */ }
    if (ws && ws.readyState !== ws.CLOSED) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => { try { ws.terminate(); } catch { /* ignore */ } resolve(); }, 1000);
        ws.once('close', () => { clearTimeout(timer); resolve(); });
        if (ws.readyState === ws.CONNECTING) { try { ws.terminate(); } catch { /* ignore */ } }
      });
    }
  }
}

export function createCable(url) {
  return new Cable(url);
}

// A consumer for `user` against `broker`, connected and with these subscriptions confirmed.
export async function connectAndSubscribe(broker, user, paramsList) {
  const cable = createCable(broker.urlFor(broker.mint(user)));
  const subs = paramsList.map((p) => cable.subscribe(p));
  await Promise.all(subs.map((s) => s.confirmed()));
  return { cable, subs };
}
