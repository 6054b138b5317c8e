// Browser shims that let the stock @rails/actioncable client run unmodified in Node.
//
// The client needs exactly three things from a browser, and nothing else:
//  1. a WebSocket constructor. The client captures it once, when its module is first
//     evaluated (`adapters.WebSocket = typeof WebSocket !== "undefined" ? WebSocket :
//     undefined`), and later reads the readyState names by enumerating its static
//     CONNECTING/OPEN/CLOSING/CLOSED properties. We use the `ws` package's WebSocket
//     (RFC 6455 in Node; same constructor signature `new WebSocket(url, protocols)`,
//     same `protocol`, `readyState`, on* handlers and string `event.data` for text
//     frames). Node 22+ ships its own global WebSocket; we replace it on purpose so
//     every test uses the same implementation.
//  2. global addEventListener/removeEventListener (in a browser these are window's):
//     ConnectionMonitor.start()/stop() (un)listen for "visibilitychange". There is no
//     tab here that could become visible, so no-ops.
//  3. `document`: ConnectionMonitor.visibilityDidChange reads
//     document.visibilityState, and getConfig() (only when createConsumer() is called
//     without a URL) reads document.head.querySelector(meta). We always pass a ws://
//     URL, so createWebSocketURL never needs document.createElement.
// `window` is deliberately NOT defined: the client never names it (its
// addEventListener calls are bare globals), and the `mqtt` package decides it runs in a
// browser when `window.document` exists, which would break the MQTT clients in the
// same test process.
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);

globalThis.WebSocket = WebSocket;
if (typeof globalThis.addEventListener !== 'function') {
  globalThis.addEventListener = () => {};
  globalThis.removeEventListener = () => {};
}
if (typeof globalThis.document === 'undefined') {
  globalThis.document = {
    visibilityState: 'visible',
    head: { querySelector: () => null },
  };
}

// The UMD build ("main"); loaded only now, after the globals above exist.
const ActionCable = require('@rails/actioncable');
ActionCable.adapters.WebSocket = WebSocket;
if (process.env.CABLE_TEST_DEBUG) ActionCable.logger.enabled = true;

export default ActionCable;
export { WebSocket };
