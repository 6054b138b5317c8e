// One import for the test files.
export * from './broker.mjs';
export * from './cable.mjs';
export * from './raw.mjs';
export * from './mqtt.mjs';
export * from './queue.mjs';
export { onCleanup, runCleanups } from './cleanup.mjs';

// The identifier the stock client builds for {channel: 'ActuatorChannel', id}:
// JSON.stringify of the params, keys in insertion order.
export const actuatorParams = (id) => ({ channel: 'ActuatorChannel', id });
export const actuatorId = (id) => JSON.stringify(actuatorParams(id));
export { startProxy } from './proxy.mjs';
