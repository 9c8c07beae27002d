import assert from 'node:assert/strict';
import { test } from 'node:test';
import { notebookName, notebookParams } from '../src/notebookCells';

const NOTEBOOK = 'file:///w/analysis%20one.ipynb';

test('the request carries the Python code cells in order, with their uris and text', () => {
  const params = notebookParams(NOTEBOOK, [
    { kind: 'markup', languageId: 'markdown', uri: 'vscode-notebook-cell:/w/a.ipynb#W0', text: '# Title' },
    { kind: 'code', languageId: 'python', uri: 'vscode-notebook-cell:/w/a.ipynb#W1', text: 'import os' },
    { kind: 'code', languageId: 'sql', uri: 'vscode-notebook-cell:/w/a.ipynb#W2', text: 'select 1' },
    { kind: 'code', languageId: 'python', uri: 'vscode-notebook-cell:/w/a.ipynb#W3', text: 'x = [0] * 10' },
  ]);
  assert.deepEqual(params, {
    notebookUri: NOTEBOOK,
    cells: [
      { uri: 'vscode-notebook-cell:/w/a.ipynb#W1', text: 'import os' },
      { uri: 'vscode-notebook-cell:/w/a.ipynb#W3', text: 'x = [0] * 10' },
    ],
  });
});

test('a notebook of markdown only sends no cells (the server says it has no code cells)', () => {
  const params = notebookParams(NOTEBOOK, [{ kind: 'markup', languageId: 'markdown', uri: 'c', text: 'hi' }]);
  assert.deepEqual(params.cells, []);
});

test('the name in messages is the file name, decoded', () => {
  assert.equal(notebookName(NOTEBOOK), 'analysis one.ipynb');
  assert.equal(notebookName('untitled:Untitled-1.ipynb'), 'untitled:Untitled-1.ipynb');
});
