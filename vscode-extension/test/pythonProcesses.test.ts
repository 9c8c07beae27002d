import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { isPython, listPythonProcesses } from '../src/pythonProcesses';

test('python executables are recognised by name, versioned or not', () => {
  assert.equal(isPython(['app'], '/usr/bin/python3.12'), true);
  assert.equal(isPython(['python', 'x.py'], undefined), true);
  assert.equal(isPython(['/opt/venv/bin/python3', 'x.py'], '/usr/local/bin/python3'), true);
  assert.equal(isPython(['python-config'], '/usr/bin/python-config'), false);
  assert.equal(isPython(['sleep', '30'], '/usr/bin/sleep'), false);
});

test('a fake /proc lists its Python processes with their command lines, sorted by pid', () => {
  const proc = mkdtempSync(path.join(tmpdir(), 'memlens-proc-'));
  try {
    const add = (pid: number, argv: string[], exe?: string) => {
      mkdirSync(path.join(proc, String(pid)));
      writeFileSync(path.join(proc, String(pid), 'cmdline'), argv.map((a) => `${a}\0`).join(''));
      if (exe) symlinkSync(exe, path.join(proc, String(pid), 'exe'));
    };
    add(300, ['python3', 'server.py', '--port', '8000'], '/usr/bin/python3.11');
    add(20, ['/venv/bin/python', '-m', 'worker']); // another user's: no readable exe
    add(7, ['sleep', '30'], '/usr/bin/sleep');
    add(8, ['python3', '-m', 'memlens', 'serve'], '/usr/bin/python3.11'); // memlens's own server
    add(9, [], '/usr/bin/python3.11'); // a kernel thread or a zombie: no command line
    add(42, ['python3', 'me.py'], '/usr/bin/python3.11');
    mkdirSync(path.join(proc, 'self'));
    assert.deepEqual(listPythonProcesses(proc, new Set([42])), [
      { pid: 20, command: '/venv/bin/python -m worker' },
      { pid: 300, command: 'python3 server.py --port 8000' },
    ]);
  } finally {
    rmSync(proc, { recursive: true });
  }
});
