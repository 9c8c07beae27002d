import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildHotspotTree, childrenOf, isQuiet, placeText, type LineNode } from '../src/hotspotModel';
import type { Hotspot } from '../src/protocol';

const MIB = 2 ** 20;
const frame = (fn: string, line: number) => ({ uri: 'file:///w/alloc.py', file: '/w/alloc.py', function: fn, line });
const hotspot = (over: Partial<Hotspot>): Hotspot => ({
  uri: 'file:///w/alloc.py',
  line: 4,
  file: '/w/alloc.py',
  function: 'hold',
  peakBytes: 50 * MIB,
  peakText: '50.0 MiB',
  totalBytes: 60 * MIB,
  totalText: '60.0 MiB',
  count: 3,
  leakBytes: 0,
  leakText: '0 B',
  share: 0.98,
  label: 'charged: 50.0 MiB at peak · 60.0 MiB allocated',
  stack: [frame('<module>', 10), frame('hold', 4)],
  ...over,
});

test('no profile, or an empty one, is an empty tree', () => {
  assert.deepEqual(buildHotspotTree(null), []);
  assert.deepEqual(buildHotspotTree({ lines: [], leaks: [] }), []);
});

test('peak and leak sections with lines that expand into frames', () => {
  const tree = buildHotspotTree({
    lines: [hotspot({}), hotspot({ line: 7, function: 'tmp', peakBytes: 512, peakText: '512 B', share: 0.0001, stack: [] })],
    leaks: [hotspot({ line: 8, function: 'keep', leakBytes: 2 * MIB, leakText: '2.0 MiB' })],
  });
  assert.deepEqual(tree.map((s) => [s.label, s.description]), [['Peak memory', '2 lines'], ['Leaks', '1 line']]);
  const [top, small] = tree[0].children;
  assert.equal(top.label, 'hold alloc.py:5');
  assert.equal(top.description, '50.0 MiB · 98%');
  assert.deepEqual(top.location, { uri: 'file:///w/alloc.py', line: 4 });
  assert.match(top.tooltip, /^charged: 50.0 MiB at peak · 60.0 MiB allocated\n/);
  assert.match(top.tooltip, /peak 50.0 MiB \(98% of the run's peak\)\nallocated 60.0 MiB in 3 allocations/);
  assert.equal(small.description, '512 B · 0.0%');
  assert.deepEqual(childrenOf(small), []);
  const frames = childrenOf(top);
  assert.deepEqual(frames.map((f) => [f.label, f.description]), [['<module>', 'alloc.py:11'], ['hold', 'alloc.py:5']]);
  assert.deepEqual(frames[0].kind === 'frame' && frames[0].location, { uri: 'file:///w/alloc.py', line: 10 });
  assert.deepEqual(childrenOf(frames[0]), []);
  const leak: LineNode = tree[1].children[0];
  assert.equal(leak.label, 'keep alloc.py:9');
  assert.equal(leak.description, '2.0 MiB leaked');
});

test('ids are unique across sections even for the same line', () => {
  const tree = buildHotspotTree({ lines: [hotspot({})], leaks: [hotspot({ leakBytes: 1, leakText: '1 B' })] });
  const ids = tree.flatMap((s) => [s.id, ...s.children.flatMap((l) => [l.id, ...l.children.map((f) => f.id)])]);
  assert.equal(new Set(ids).size, ids.length);
});

test('places are base name and 1-based line, on either separator', () => {
  assert.equal(placeText('/a/b/c.py', 0), 'c.py:1');
  assert.equal(placeText('C:\\a\\d.py', 9), 'd.py:10');
});

test('lines under hideBelowShare of the peak and of the total are hidden, and counted', () => {
  // run: peak 100 MiB, 1000 MiB allocated; at 0.5 % a line needs 0.5 MiB at peak or 5 MiB in total
  const run = { hideBelowShare: 0.005, peakBytes: 100 * MIB, totalBytes: 1000 * MIB };
  const big = hotspot({});
  const tiny = hotspot({ line: 7, function: 'const', peakBytes: 32, totalBytes: 32, share: 32 / (100 * MIB) });
  const churn = hotspot({ line: 9, function: 'churn', peakBytes: 64, totalBytes: 6 * MIB, share: 64 / (100 * MIB) });
  const edge = hotspot({ line: 11, function: 'edge', peakBytes: 0.5 * MIB, totalBytes: 0.5 * MIB, share: 0.005 });
  assert.deepEqual([big, tiny, churn, edge].map((h) => isQuiet(h, run)), [false, true, false, false]);
  const tree = buildHotspotTree({ lines: [big, tiny, churn, edge], leaks: [hotspot({ line: 8, leakBytes: 32, peakBytes: 32, totalBytes: 32 })] }, run);
  assert.deepEqual(
    tree.map((s) => [s.description, s.children.map((l) => l.label)]),
    [
      ['3 lines · 1 hidden', ['hold alloc.py:5', 'churn alloc.py:10', 'edge alloc.py:12']],
      ['0 lines · 1 hidden', []],
    ],
  );
  assert.equal(tree[0].tooltip, "1 line under 0.5 % of the run's peak and of its total hidden here (memlens.hideBelowShare)");
  // 0 shows everything; an unknown run (no summary yet) hides nothing
  assert.equal(buildHotspotTree({ lines: [tiny], leaks: [] }, { ...run, hideBelowShare: 0 })[0].description, '1 line');
  assert.equal(buildHotspotTree({ lines: [tiny], leaks: [] }, { hideBelowShare: 0.005 })[0].description, '1 line');
});
