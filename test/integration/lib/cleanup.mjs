// Clients register how to close themselves; the broker hooks run these after each test
// so that no socket or timer outlives its test (node --test waits for open handles).
const cleanups = [];

export function onCleanup(fn) {
  cleanups.push(fn);
}

export async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch { /* best effort */ }
  }
}
