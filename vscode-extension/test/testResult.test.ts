import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testOutcome, testTarget, type ProfileTestResult } from '../src/testResult';

const RESULT: ProfileTestResult = {
  nodeid: 'test_sample.py::test_big',
  outcome: 'passed',
  passed: true,
  peakBytes: 10 * 2 ** 20,
  peakText: '10.0 MiB',
  verdict: 'peak 10.0 MiB',
  cases: 1,
  exitCode: 0,
  capturePath: '/tmp/x.msgpack',
};

test('the lens argument is the test file and the test id, nothing else', () => {
  assert.deepEqual(testTarget({ uri: 'file:///w/test_a.py', test: 'TestA::test_b' }), {
    uri: 'file:///w/test_a.py',
    test: 'TestA::test_b',
  });
  assert.equal(testTarget(undefined), undefined);
  assert.equal(testTarget('file:///w/test_a.py'), undefined);
  assert.equal(testTarget({ uri: 'file:///w/test_a.py' }), undefined);
  assert.equal(testTarget({ uri: 'file:///w/test_a.py', test: '' }), undefined);
  assert.equal(testTarget({ uri: 1, test: 'test_b' }), undefined);
});

test('a passed test is told as info with its verdict', () => {
  assert.deepEqual(testOutcome(RESULT), { level: 'info', text: 'memlens: test_sample.py::test_big passed: peak 10.0 MiB' });
});

test('a failed limit is an error, and a parametrized test says which case is shown', () => {
  const failed = { ...RESULT, outcome: 'failed' as const, passed: false, verdict: 'peak 8.0 MiB / limit 4.0 MiB ✗', cases: 2 };
  assert.deepEqual(testOutcome(failed), {
    level: 'error',
    text: 'memlens: test_sample.py::test_big failed: peak 8.0 MiB / limit 4.0 MiB ✗ (highest of 2 cases)',
  });
});
