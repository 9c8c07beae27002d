import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LEVELS, heatLevel, linesByLevel, throttle } from '../src/heat';

test('share maps to levels at the documented bounds', () => {
  assert.equal(LEVELS, 5);
  assert.equal(heatLevel(0), 0);
  assert.equal(heatLevel(0.004), 0);
  assert.equal(heatLevel(0.005), 1);
  assert.equal(heatLevel(0.099), 1);
  assert.equal(heatLevel(0.1), 2);
  assert.equal(heatLevel(0.25), 3);
  assert.equal(heatLevel(0.5), 4);
  assert.equal(heatLevel(0.75), 5);
  assert.equal(heatLevel(1), 5);
  assert.equal(heatLevel(1.5), 5);
  assert.equal(heatLevel(Number.NaN), 0);
});

test('lines are bucketed by level, sorted, stale and bad lines skipped', () => {
  const line = (n: number, share: number, stale = false) => ({ line: n, peakBytes: 0, totalBytes: 0, share, stale });
  const buckets = linesByLevel([line(9, 1), line(3, 0.8), line(4, 0.3), line(5, 0.3, true), line(-1, 1), line(7, 0.001), line(2, 0.05)]);
  assert.deepEqual(buckets, [[2], [], [4], [], [3, 9]]);
});

function fakeClock() {
  let now = 0;
  const queue: { at: number; run: () => void }[] = [];
  return {
    timers: {
      now: () => now,
      set: ((run: () => void, ms: number) => {
        const entry = { at: now + ms, run };
        queue.push(entry);
        return entry;
      }) as unknown as typeof setTimeout,
      clear: ((entry: unknown) => {
        const i = queue.indexOf(entry as (typeof queue)[number]);
        if (i >= 0) queue.splice(i, 1);
      }) as unknown as typeof clearTimeout,
    },
    advance(ms: number) {
      now += ms;
      for (const entry of queue.filter((e) => e.at <= now)) {
        queue.splice(queue.indexOf(entry), 1);
        entry.run();
      }
    },
  };
}

test('throttle: first call runs at once, a burst becomes one trailing run', () => {
  const clock = fakeClock();
  let runs = 0;
  const call = throttle(() => runs++, 100, clock.timers);
  call();
  assert.equal(runs, 1);
  call();
  call();
  call();
  assert.equal(runs, 1);
  clock.advance(99);
  assert.equal(runs, 1);
  clock.advance(1);
  assert.equal(runs, 2);
  clock.advance(500);
  call();
  assert.equal(runs, 3);
});

test('throttle: cancel drops the pending run', () => {
  const clock = fakeClock();
  let runs = 0;
  const call = throttle(() => runs++, 100, clock.timers);
  call();
  call();
  call.cancel();
  clock.advance(1000);
  assert.equal(runs, 1);
});
