// "Profile this test": the server's command and its result, and what the user is told.
// Pure (no vscode import) so that it is unit-tested; the command itself is in testLens.ts.
// Server side: server/memlens/lsp/features/test_lens.py.

/** The server's command (one object argument) and the client's command behind the lens. */
export const TestCommand = {
  profileTest: 'memlens.profileTest',
  profileThisTest: 'memlens.profileThisTest',
} as const;

/** What the lens passes: the file and the test's node id after "FILE::". */
export interface TestTarget {
  uri: string;
  test: string;
}

export interface ProfileTestResult {
  nodeid: string;
  outcome: 'passed' | 'failed' | 'skipped';
  passed: boolean;
  peakBytes: number;
  peakText: string;
  /** `peak 3.2 MiB / limit 4.0 MiB ✓` with a limit marker, else `peak 3.2 MiB` */
  verdict: string;
  /** how many cases ran (a parametrized test runs all; the highest peak is shown) */
  cases: number;
  exitCode: number;
  capturePath: string;
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
