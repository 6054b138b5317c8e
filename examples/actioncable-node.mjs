// The stock @rails/actioncable client in Node (20 or newer), against mosquitto-cable.
//   node examples/actioncable-node.mjs 'ws://127.0.0.1:8080/cable?jid=<token>'
// Subscribes to actuator 42, prints every message as a line of JSON, and says "on" once.
import WebSocket from "ws"

// The client is written for browsers. It reads the WebSocket constructor once, when
// its module is evaluated, and its connection monitor calls the window's
// addEventListener. So both globals must exist BEFORE the module is loaded: set them,
// then import it dynamically (a static import would be evaluated first).
globalThis.WebSocket ??= WebSocket
globalThis.addEventListener ??= () => {}
globalThis.removeEventListener ??= () => {}
const { default: ActionCable } = await import("@rails/actioncable")

const cable = ActionCable.createConsumer(process.argv[2])
const actuator = cable.subscriptions.create({ channel: "ActuatorChannel", id: 42 }, {
  connected() {
    console.log(JSON.stringify({ connected: true }))
    this.perform("speak", { message: "on" })
  },
  rejected() { console.log(JSON.stringify({ rejected: true })) },
  received(data) { console.log(JSON.stringify(data)) },  // {"on": true}
})
process.on("SIGINT", () => { actuator.unsubscribe(); cable.disconnect(); process.exit(0) })
