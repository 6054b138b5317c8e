// The actuator terminal: the stock @rails/actioncable client (its ESM build, copied next
// to this file by demo/prepare.sh) talking to the mosquitto-cable plugin.
//
//   ActuatorChannel {id}  streams actuators/{id}/state and actuators/{id}/cmd
//   perform("speak", {message})  ->  MQTT actuators/{id}/cmd {"user":<sub>,"message":...}
//
//   perform("status", {message})  ->  the same, as an MQTT 5 request: the device
//                                    answers this page alone (docs/protocol.md)
//
// What arrives in received(data) is the MQTT payload itself:
//   {"user":"bob","message":"on"}                  a command (anyone's, ours included)
//   {"on":true,"by":"bob","command":"on","at":...}  the device's state answer
//   {"error":"unknown command","command":"x",...}  the device did not understand
// or, with the key "$cable", what the plugin says to this page alone:
//   {"$cable":"refused","action":"speak","reason":"acl_denied",...}  not sent, and why
//   {"$cable":"ack","action":"status",...}          the broker took our request
//   {"$cable":"reply","request":1,"payload":{...}}  the device's answer to our request
// and {"online":false,"at":...} when the device is gone (its MQTT will). The state is
// retained: with plugin_opt_state_listener it arrives right after the subscription is
// confirmed, so the page opens on the actuator's current state.
import { createConsumer, getConfig } from './vendor/actioncable.esm.js';

const MAX_ENTRIES = 500;
const $ = (id) => document.getElementById(id);

// The token: ?jid=... or #jid=... in the page URL (the fragment never reaches a server log).
function tokenFromLocation() {
  const query = new URLSearchParams(location.search).get('jid');
  if (query) return query;
  const hash = new URLSearchParams(location.hash.replace(/^#/, '')).get('jid');
  return hash || null;
}

// The user name shown on the page: the token's `sub`, read without verifying (the
// broker verifies; this is only a label).
function userFromToken(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(Array.from(atob(part),
      (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    const sub = JSON.parse(json).sub;
    return typeof sub === 'string' && sub ? sub : null;
  } catch {
    return null;
  }
}

const token = tokenFromLocation();
const NO_TOKEN_HINT = 'No token in the page URL: open the URL that `make run` prints (…/?jid=TOKEN). ' +
  'Connecting without one works only when the plugin runs with plugin_opt_auth anonymous.';
const me = token ? userFromToken(token) : null;
const cablePath = getConfig('url') || '/cable';
const cableUrl = token ? `${cablePath}${cablePath.includes('?') ? '&' : '?'}jid=${encodeURIComponent(token)}` : cablePath;
const consumer = createConsumer(cableUrl);

const log = $('log');
const status = $('status');
const commandInput = $('command');
const controls = [commandInput, $('send'), ...document.querySelectorAll('.quick button')];
let current = null; // { id, subscription }

function time(ms) {
  const d = Number.isFinite(ms) ? new Date(ms) : new Date();
  return d.toLocaleTimeString([], { hour12: false });
}

// One line of the terminal. Text only (textContent): payloads come from other users.
function addEntry(kind, parts, { user, at, data = {} } = {}) {
  const li = document.createElement('li');
  li.className = `entry ${kind}`;
  li.dataset.kind = kind;
  if (user !== undefined && user !== null) li.dataset.user = String(user);
  Object.assign(li.dataset, data);
  const ts = document.createElement('time');
  ts.textContent = time(at);
  li.append(ts);
  for (const p of parts) {
    const span = document.createElement('span');
    if (typeof p === 'string') {
      span.textContent = p;
    } else {
      span.textContent = p.text;
      span.className = p.cls;
    }
    li.append(span);
  }
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  while (log.childElementCount > MAX_ENTRIES) log.firstElementChild.remove();
  if (stick) log.scrollTop = log.scrollHeight;
  return li;
}

const system = (text) => addEntry('system', [text]);

// The connection's badge (top right). Commands are possible only when connected and
// the open actuator's subscription was not rejected.
function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
  enableControls(state === 'connected' && !current?.rejected);
}

function enableControls(on) {
  for (const c of controls) c.disabled = !on;
}

function setState(on, detail) {
  const box = $('state');
  box.dataset.on = on === true ? 'on' : on === false ? 'off' : on ?? 'unknown';
  $('state-text').textContent = detail;
}

const who = (user) => (user === null || user === undefined ? 'someone'
  : user === me ? `${user} (you)` : String(user));
const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// Why the plugin refused a command (the "reason" of {"$cable":"refused"}).
const REFUSALS = {
  acl_denied: 'you may watch this actuator but not command it',
  unknown_action: 'the server does not know this command',
  retain_not_allowed: 'retained commands are not allowed',
  invalid_data: 'the command was not understood',
  broker_refused: 'the broker did not accept it',
  server_error: 'the server could not send it',
};

// What the plugin says to this page alone: refusals, acknowledgements, device replies.
function answered(id, data) {
  switch (data.$cable) {
    case 'refused':
      addEntry('refused', [{ text: 'not sent', cls: 'who' },
        `${data.action ?? 'command'}: ${REFUSALS[data.reason] ?? data.reason}`],
      { user: me, data: { reason: String(data.reason), action: String(data.action ?? '') } });
      break;
    case 'reply':
      received(id, data.payload, { reply: true });
      break;
    default: // "ack": the command's own echo on the stream already shows it went out
      break;
  }
}

function received(id, data, { reply = false } = {}) {
  if (data && typeof data === 'object' && '$cable' in data && !reply) {
    answered(id, data);
  } else if (data && typeof data === 'object' && data.online === false) {
    addEntry('state', [{ text: `actuator ${id}`, cls: 'who' }, { text: 'OFFLINE', cls: 'offline' },
      '· the device is gone'], { at: data.at, data: { on: 'offline' } });
    setState('offline', `actuator ${id} is offline · ${time(data.at)}`);
  } else if (data && typeof data === 'object' && 'message' in data && 'user' in data) {
    addEntry('cmd', [{ text: who(data.user), cls: 'who' }, { text: '>', cls: 'sigil' }, show(data.message)],
      { user: data.user, data: { message: show(data.message) } });
  } else if (data && typeof data === 'object' && typeof data.error === 'string') {
    addEntry('error', [{ text: `actuator ${id}`, cls: 'who' },
      `${data.error}${'command' in data ? `: ${show(data.command)}` : ''}`],
    { user: data.by, at: data.at, data: { command: show(data.command ?? '') } });
  } else if (data && typeof data === 'object' && typeof data.on === 'boolean') {
    const word = data.on ? 'ON' : 'OFF';
    const why = data.boot ? 'device started'
      : data.command ? `${show(data.command)} by ${who(data.by)}` : data.by ? `by ${who(data.by)}` : '';
    addEntry('state', [{ text: `actuator ${id}`, cls: 'who' }, { text: word, cls: data.on ? 'on' : 'off' },
      why ? `· ${why}` : '', reply ? '· answered to you alone' : ''],
    { user: data.by, at: data.at, data: { on: String(data.on), reply: String(reply) } });
    setState(data.on, `actuator ${id} is ${word}${why ? ` · ${why}` : ''} · ${time(data.at)}`);
  } else {
    addEntry('raw', [{ text: `actuator ${id}`, cls: 'who' }, show(data)]);
  }
}

function open(id) {
  if (current) {
    current.subscription.unsubscribe();
    current = null;
  }
  log.replaceChildren();
  if (!token) system(NO_TOKEN_HINT); // a new actuator's log keeps the hint
  setState(null, 'state unknown: send status');
  $('cmd-topic').textContent = `actuators/${id}/cmd`;
  $('state-topic').textContent = `actuators/${id}/state`;
  const url = new URL(location.href);
  url.searchParams.set('id', String(id));
  history.replaceState(null, '', url);

  const entry = { id, subscription: null, rejected: false };
  entry.subscription = consumer.subscriptions.create({ channel: 'ActuatorChannel', id }, {
    connected({ reconnected } = {}) {
      if (current !== entry) return;
      setStatus('connected', 'Connected');
      system(reconnected ? `Reconnected: watching actuator ${id} again`
        : `Watching actuator ${id}: type on, off, toggle or status`);
    },
    disconnected({ willAttemptReconnect } = {}) {
      if (current !== entry) return;
      setStatus('lost', 'Connection lost');
      if (!willAttemptReconnect && token) $('user').textContent = 'not signed in';
      system(willAttemptReconnect ? 'Connection lost: reconnecting…'
        : 'Connection lost: the server refused this page (token missing, invalid or expired?). Reload with a fresh token.');
    },
    rejected() {
      if (current !== entry) return;
      // The connection is fine; this actuator is not yours: say so where its state goes.
      entry.rejected = true;
      setStatus('connected', 'Connected');
      setState('rejected', `actuator ${id}: rejected (not a valid id, or not allowed for you)`);
      system(`The server rejected actuator ${id} (not a valid id, or not allowed for you).`);
    },
    received(data) {
      if (current === entry) received(id, data);
    },
  });
  current = entry;
  setStatus('connecting', consumer.connection.isOpen() ? 'Subscribing…' : 'Connecting…');
}

function send(text) {
  const message = text.trim();
  if (!message || !current) return;
  // "status" is a request: the device answers this page alone (config/channels.example.json).
  const action = message.toLowerCase() === 'status' ? 'status' : 'speak';
  if (!current.subscription.perform(action, { message })) {
    system('Not sent: the connection is down.');
  }
}

$('pick-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = Number($('actuator-id').value);
  if (Number.isInteger(id) && id >= 0) open(id);
});
$('command-form').addEventListener('submit', (e) => {
  e.preventDefault();
  send(commandInput.value);
  commandInput.value = '';
  commandInput.focus();
});
for (const b of document.querySelectorAll('.quick button')) {
  b.addEventListener('click', () => send(b.dataset.command));
}

// The label trusts nothing: a token whose sub cannot be read is not a sign-in.
$('user').textContent = me ? `signed in as ${me}` : token ? 'unreadable token' : 'no token';
const startId = Number(new URLSearchParams(location.search).get('id') ?? 42);
$('actuator-id').value = String(Number.isInteger(startId) && startId >= 0 ? startId : 42);
open(Number($('actuator-id').value));
setTimeout(() => {
  if (status.dataset.state === 'connecting') system(`Still connecting to ${cablePath}… is the broker running?`);
}, 5000);

// For the browser console: the consumer and the current subscription.
window.actuatorTerminal = { consumer, get subscription() { return current?.subscription; } };
