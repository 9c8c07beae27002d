import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildHotspotTree, childrenOf, placeText, type LineNode } from '../src/hotspotModel';
import type { Hotspot } from '../src/protocol';

const MIB = 2 ** 20;
const frame = (fn: string, line: number) => ({ uri: 'file:///w/alloc.py', file: '/w/alloc.py', function: fn, line });
const hotspot = (over: Partial<Hotspot>): Hotspot => ({
  uri: 'file:///w/alloc.py',
  line: 4,
  file: '/w/alloc.py',
  function: 'hold',
  peakBytes: 50 * MIB,
  totalBytes: 60 * MIB,
  count: 3,
  leakBytes: 0,
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
    lines: [hotspot({}), hotspot({ line: 7, function: 'tmp', peakBytes: 512, share: 0.0001, stack: [] })],
    leaks: [hotspot({ line: 8, function: 'keep', leakBytes: 2 * MIB })],
  });
  assert.deepEqual(tree.map((s) => [s.label, s.description]), [['Peak memory', '2 lines'], ['Leaks', '1 lines']]);
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
  const tree = buildHotspotTree({ lines: [hotspot({})], leaks: [hotspot({ leakBytes: 1 })] });
  const ids = tree.flatMap((s) => [s.id, ...s.children.flatMap((l) => [l.id, ...l.children.map((f) => f.id)])]);
  assert.equal(new Set(ids).size, ids.length);
});

test('places are base name and 1-based line, on either separator', () => {
  assert.equal(placeText('/a/b/c.py', 0), 'c.py:1');
  assert.equal(placeText('C:\\a\\d.py', 9), 'd.py:10');
});
