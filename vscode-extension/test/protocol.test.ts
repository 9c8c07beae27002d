import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseError } from 'vscode-languageserver-protocol';
import {
  REQUEST_FAILED,
  confirmationPath,
  confirmationQuestion,
  parseOpenMessage,
  runOutcome,
  statusText,
} from '../src/protocol';

test('status bar text: the server peak text, nothing without a summary', () => {
  assert.equal(statusText(undefined), undefined);
  assert.equal(statusText({ final: true, summary: null, peakText: null, leakText: null }), undefined);
  const summary = { peak_bytes: 10 * 2 ** 20, peak_ns: 1, duration_s: 1, alloc_bytes: 1, alloc_count: 1, leak_bytes: 0, exit_code: 0, top_lines: [] };
  assert.equal(statusText({ final: true, summary, peakText: '10.0 MiB', leakText: null }), '$(pulse) 10.0 MiB peak');
});

test('only well-formed open messages from the flame graph are accepted', () => {
  const open = { type: 'open', file: '/w/a.py', line: 3, line0: 2 };
  assert.deepEqual(parseOpenMessage({ type: 'open', file: '/w/a.py', line: 3 }), open);
  assert.deepEqual(parseOpenMessage({ type: 'open', file: '/w/a.py', line: '3' }), open);
  for (const bad of [null, 'open', { type: 'run', file: '/a', line: 1 }, { type: 'open', file: '', line: 1 }, { type: 'open', file: '/a', line: 0 }, { type: 'open', file: '/a', line: 1.5 }, { type: 'open', line: 1 }]) {
    assert.equal(parseOpenMessage(bad), undefined, JSON.stringify(bad));
  }
});

test('run outcome: failure names the exit code, cancel says so, success gives the peak', () => {
  const base = { peakBytes: 2 ** 20, peakText: '1.0 MiB', durationS: 0.25, capturePath: '/c', cancelled: false };
  assert.deepEqual(runOutcome('a.py', { ...base, exitCode: 0 }), { level: 'info', text: 'memlens: a.py peak 1.0 MiB in 0.3 s.' });
  const failed = runOutcome('bad.py', { ...base, exitCode: 1 });
  assert.equal(failed.level, 'error');
  assert.match(failed.text, /bad\.py exited with code 1/);
  assert.equal(runOutcome('a.py', { ...base, exitCode: null, cancelled: true }).level, 'info');
});

test('the refusal of a file outside the workspace is told apart from other failures', () => {
  const refusal = new ResponseError(REQUEST_FAILED, 'memlens: /tmp/x.py is outside the workspace folders', {
    needsConfirmation: true,
    path: '/tmp/x.py',
  });
  assert.equal(confirmationPath(refusal), '/tmp/x.py');
  // the same code for another reason, another code, no data, a plain Error: not a question
  assert.equal(confirmationPath(new ResponseError(REQUEST_FAILED, 'failed', { path: '/tmp/x.py' })), undefined);
  assert.equal(confirmationPath(new ResponseError(-32602, 'bad', { needsConfirmation: true, path: '/x' })), undefined);
  assert.equal(confirmationPath(new ResponseError(REQUEST_FAILED, 'failed')), undefined);
  assert.equal(confirmationPath(new ResponseError(REQUEST_FAILED, 'f', { needsConfirmation: true, path: '' })), undefined);
  assert.equal(confirmationPath(new Error('boom')), undefined);
  assert.equal(confirmationPath(undefined), undefined);
  assert.equal(
    confirmationQuestion('/tmp/x.py'),
    '/tmp/x.py is outside the workspace folders. Profiling runs it. Profile anyway?',
  );
});
