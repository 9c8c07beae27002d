// The running Python processes, read from /proc, for "Memlens: Attach to process…".
// Pure node (no vscode import), so it is unit-tested against a fake /proc.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';

export interface PythonProcess {
  pid: number;
  /** The command line, as `ps` shows it. */
  command: string;
}

const PYTHON_NAME = /^python(\d+(\.\d+)?)?$/;

/** Whether a process runs CPython: its executable (or, unreadable, its argv[0]) is python*. */
export function isPython(argv: string[], executable: string | undefined): boolean {
  const program = executable ?? argv[0];
  return program !== undefined && PYTHON_NAME.test(path.basename(program));
}

/** memlens's own language server, which nobody means to attach to. */
export function isMemlensServer(argv: string[]): boolean {
  return argv.includes('memlens.lsp') || (argv.includes('memlens') && argv.includes('serve'));
}

export function listPythonProcesses(proc = '/proc', exclude: ReadonlySet<number> = new Set()): PythonProcess[] {
  const found: PythonProcess[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (exclude.has(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(path.join(proc, entry, 'cmdline'), 'utf8').split('\0').filter((part) => part !== '');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    let executable: string | undefined;
    try {
      executable = readlinkSync(path.join(proc, entry, 'exe'));
    } catch {
      executable = undefined; // another user's process: argv[0] must do
    }
    if (argv.length && isPython(argv, executable) && !isMemlensServer(argv)) {
      found.push({ pid, command: argv.join(' ') });
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}
