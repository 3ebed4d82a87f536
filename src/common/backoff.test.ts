import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, abortableSleep } from './backoff.js';

describe('Backoff', () => {
  it('upper bounds double up to the cap; reset starts over', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
    assert.equal(b.attempt, 6);
    b.reset();
    assert.equal(b.attempt, 0);
    assert.equal(b.next(), 100);
  });

  it('full jitter between the floor (initial/2 by default) and the ceiling', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    assert.deepEqual([low.next(), low.next(), low.next()], [50, 50, 50]);
    const zero = new Backoff({ initialMs: 100, maxMs: 1000, floorMs: 0, random: () => 0.5 });
    assert.deepEqual([zero.next(), zero.next(), zero.next()], [50, 100, 200]);
  });

  it('spreads agents that fail at the same moment (no lockstep)', () => {
    const delays = Array.from({ length: 50 }, () => {
      const b = new Backoff({ initialMs: 200, maxMs: 2000 });
      for (let i = 0; i < 5; i++) b.next();
      return b.next();
    });
    for (const d of delays) assert.ok(d >= 100 && d <= 2000, `delay ${d} out of [100, 2000]`);
    assert.ok(new Set(delays).size > 25, `50 agents drew only ${new Set(delays).size} distinct delays`);
  });

  it('rejects a nonsensical policy', () => {
    assert.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }), RangeError);
    assert.throws(() => new Backoff({ initialMs: 100, maxMs: 10 }), RangeError);
  });
});

describe('abortableSleep', () => {
  it('waits, and ends early on abort', async () => {
    const t0 = Date.now();
    await abortableSleep(30, new AbortController().signal);
    assert.ok(Date.now() - t0 >= 25);
    const ac = new AbortController();
    const t1 = Date.now();
    setTimeout(() => ac.abort(), 10);
    await abortableSleep(60_000, ac.signal);
    assert.ok(Date.now() - t1 < 5000);
    const done = new AbortController();
    done.abort();
    await abortableSleep(60_000, done.signal);
  });
});
