// "Profile this test": what the lens passes and what the user is told (the server's command and its
// result are in protocol.ts). Pure (no vscode import) so that it is unit-tested; the command itself is
// in testLens.ts. Server side: server/memlens/lsp/features/test_lens.py.

import type { ProfileTestResult } from './protocol';

export type { ProfileTestResult };

/** What the lens passes: the file and the test's node id after "FILE::". */
export interface TestTarget {
  uri: string;
  test: string;
}


/** The lens's argument, checked: it comes back from the server as plain JSON. */
export function testTarget(argument: unknown): TestTarget | undefined {
  if (typeof argument !== 'object' || argument === null) return undefined;
  const { uri, test } = argument as { uri?: unknown; test?: unknown };
  return typeof uri === 'string' && typeof test === 'string' && uri !== '' && test !== '' ? { uri, test } : undefined;
}

/** One line for the log and the status bar: the test's outcome and its memory verdict. */
export function testOutcome(result: ProfileTestResult): { level: 'info' | 'error'; text: string } {
  const cases = result.cases > 1 ? ` (highest of ${result.cases} cases)` : '';
  const text = `memlens: ${result.nodeid} ${result.outcome}: ${result.verdict}${cases}`;
  return { level: result.passed ? 'info' : 'error', text };
}
