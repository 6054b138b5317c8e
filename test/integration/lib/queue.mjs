// A small async queue: producers push(), tests await next()/nextMatching() with a
// timeout, or assert that nothing (matching) arrives within a quiet period.
// Items are kept in `all` forever (for counting and diagnostics); `pending` holds the
// ones not yet consumed by next()/nextMatching().

export class TimeoutError extends Error {}

export class AsyncQueue {
  constructor(name = 'queue') {
    this.name = name;
    this.all = [];
    this.pending = [];
    this.waiters = [];
  }

  push(item) {
    this.all.push(item);
    this.pending.push(item);
    this._wake();
  }

  _wake() {
    for (const w of [...this.waiters]) {
      const i = this.pending.findIndex(w.pred);
      if (i >= 0) {
        const [item] = this.pending.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(item);
      }
    }
  }

  // The first pending item matching pred (consumed), or a TimeoutError after ms.
  nextMatching(pred, ms = 3000, what = 'a matching item') {
    const i = this.pending.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new TimeoutError(`${this.name}: no ${what} within ${ms} ms; ` +
          `received so far: ${describeItems(this.all)}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  next(ms = 3000, what = 'item') {
    return this.nextMatching(() => true, ms, what);
  }

  // Resolves with the pending items matching pred that arrived within ms (not consumed).
  async collect(ms, pred = () => true) {
    await sleep(ms);
    return this.pending.filter(pred);
  }

  // Fails if an item matching pred is pending now or arrives within ms.
  async expectNone(ms, pred = () => true, what = 'item') {
    await sleep(ms);
    const got = this.pending.filter(pred);
    if (got.length) {
      throw new Error(`${this.name}: expected no ${what} within ${ms} ms, got ${describeItems(got)}`);
    }
  }

  count(pred = () => true) {
    return this.all.filter(pred).length;
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function describeItems(items) {
  const s = items.map((x) => {
    if (x && typeof x === 'object' && 'raw' in x) return x.raw;
    try { return JSON.stringify(x); } catch { return String(x); }
  });
  const text = `[${s.join(', ')}]`;
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

// Rejects after ms unless promise settles first.
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
