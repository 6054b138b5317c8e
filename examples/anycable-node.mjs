// AnyCable's client (@anycable/core) in Node, against mosquitto-cable.
//   node examples/anycable-node.mjs ws://127.0.0.1:8080/cable '<token>'
// Subscribes to actuator 42, prints every message as a line of JSON, and says "on" once.
// In a browser, @anycable/web's createCable takes the same options (without
// websocketImplementation).
import WebSocket from "ws"
import { createCable } from "@anycable/core"

const [url, token] = process.argv.slice(2)
const cable = createCable(url, {
  protocol: "actioncable-v1-json",  // the plugin speaks the Rails protocol
  websocketImplementation: WebSocket,
  auth: { token },                   // sent as ?jid=<token>
})
const actuator = cable.subscribeTo("ActuatorChannel", { id: 42 })
actuator.on("message", (data) => console.log(JSON.stringify(data)))  // {"on": true}
await actuator.ensureSubscribed()
console.log(JSON.stringify({ connected: true }))
await actuator.perform("speak", { message: "on" })
process.on("SIGINT", () => { cable.disconnect(); process.exit(0) })
