// Heat scale: a line's share of the run's peak -> one of a few background levels, and a throttle
// so a burst of updates (live checkpoints, typing) repaints at most once per interval.
// Pure: no vscode import.

import type { LineUsage } from './protocol';

/** Upper bounds (exclusive) of levels 1..4; level 5 is everything from the last bound up. */
export const LEVEL_BOUNDS = [0.1, 0.25, 0.5, 0.75] as const;
export const LEVELS = LEVEL_BOUNDS.length + 1;
/** Lines holding less than this share of the peak are not colored (noise). */
export const MIN_SHARE = 0.005;

/** 0 = no heat, 1..LEVELS = increasingly hot. */
export function heatLevel(share: number): number {
  if (!Number.isFinite(share) || share < MIN_SHARE) return 0;
  let level = 1;
  for (const bound of LEVEL_BOUNDS) {
    if (share < bound) return level;
    level += 1;
  }
  return level;
}

/** Lines (0-based) per level: index 0 is level 1. Stale lines (edited since the run) get no heat. */
export function linesByLevel(lines: readonly LineUsage[]): number[][] {
  const buckets: number[][] = Array.from({ length: LEVELS }, () => []);
  for (const usage of lines) {
    if (usage.stale || !Number.isInteger(usage.line) || usage.line < 0) continue;
    const level = heatLevel(usage.share);
    if (level > 0) buckets[level - 1].push(usage.line);
  }
  for (const bucket of buckets) bucket.sort((a, b) => a - b);
  return buckets;
}

/**
 * Calls `run` at most once per `intervalMs`: the first call runs at once, calls during the interval
 * are folded into one trailing run. `cancel` drops a pending run.
 */
export function throttle(
  run: () => void,
  intervalMs: number,
  timers: { set: typeof setTimeout; clear: typeof clearTimeout; now: () => number } = {
    set: setTimeout,
    clear: clearTimeout,
    now: Date.now,
  },
): { (): void; cancel(): void } {
  let last = -Infinity;
  let pending: ReturnType<typeof setTimeout> | undefined;
  const fire = (): void => {
    pending = undefined;
    last = timers.now();
    run();
  };
  const call = (): void => {
    if (pending !== undefined) return;
    const wait = last + intervalMs - timers.now();
    if (wait <= 0) fire();
    else pending = timers.set(fire, wait);
  };
  call.cancel = (): void => {
    if (pending !== undefined) timers.clear(pending);
    pending = undefined;
  };
  return call;
}
