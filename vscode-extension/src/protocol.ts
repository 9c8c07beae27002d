// The memlens LSP protocol as the client sees it, declared once (the server's twin is
// server/memlens/lsp/protocol.py). Lines are 0-based everywhere, like LSP.
// Pure: no vscode import, so the mapping helpers are unit-tested under plain node.

/** Commands run on the server with `workspace/executeCommand` and ONE object argument. */
export const ServerCommand = {
  profile: 'memlens.profile',
  loadCapture: 'memlens.loadCapture',
  clear: 'memlens.clear',
  showStack: 'memlens.showStack',
} as const;

/** Custom requests and notifications. */
export const Method = {
  summary: 'memlens/summary',
  hotspots: 'memlens/hotspots',
  flameGraph: 'memlens/flamegraph',
  fileUsage: 'memlens/fileUsage',
  didUpdate: 'memlens/didUpdate',
} as const;

export interface ProfileParams {
  uri: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** The user agreed to run a file outside the workspace folders (the server refuses it otherwise). */
  confirmed?: boolean;
}

/** LSP's RequestFailed: the server's refusal to profile an unconfirmed file outside the workspace. */
export const REQUEST_FAILED = -32803;

/**
 * The real path the server wants confirmed, when `error` (a rejected memlens.profile) is its
 * refusal to run a file outside the workspace folders; undefined for any other failure.
 */
export function confirmationPath(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, data } = error as { code?: unknown; data?: unknown };
  if (code !== REQUEST_FAILED || typeof data !== 'object' || data === null) return undefined;
  const { needsConfirmation, path } = data as { needsConfirmation?: unknown; path?: unknown };
  return needsConfirmation === true && typeof path === 'string' && path !== '' ? path : undefined;
}

/** The modal question asked before profiling a file outside the workspace folders. */
export function confirmationQuestion(path: string): string {
  return `${path} is outside the workspace folders. Profiling runs it. Profile anyway?`;
}

export interface ProfileResult {
  exitCode: number | null;
  peakBytes: number;
  peakText: string;
  durationS: number;
  capturePath: string | null;
  cancelled: boolean;
  /** Why the run failed (the server has already told the user with window/showMessage). */
  error?: string | null;
}

export interface Frame {
  uri: string;
  line: number;
  function: string;
  file: string;
}

export interface PeakStack {
  peakBytes: number;
  label: string;
  frames: Frame[];
}

export interface ShowStackResult {
  stacks: PeakStack[];
}

export interface Summary {
  peak_bytes: number;
  peak_ns?: number | null;
  duration_s?: number | null;
  alloc_bytes?: number;
  alloc_count?: number;
  leak_bytes?: number;
  exit_code?: number | null;
  top?: unknown;
}

export interface Hotspot {
  uri: string;
  line: number;
  file: string;
  function: string;
  peakBytes: number;
  totalBytes: number;
  count: number;
  leakBytes: number;
  share: number;
  label: string;
  stack: Frame[];
}

export interface HotspotsResult {
  lines: Hotspot[];
  leaks: Hotspot[];
}

export interface FlameGraphParams {
  metric?: string;
  nonce?: string;
  cspSource?: string;
}

export interface FlameGraphResult {
  html: string;
}

export interface LineUsage {
  line: number;
  peakBytes: number;
  totalBytes: number;
  share: number;
  stale: boolean;
}

export interface FileUsageResult {
  lines: LineUsage[];
}

export interface DidUpdateParams {
  final: boolean;
  summary: Summary | null;
}

/**
 * A message the flame graph page posts when a frame is clicked. The page shows Python's own line
 * numbers, so unlike the rest of the protocol `line` is 1-based here; `line0` is the LSP line.
 */
export interface OpenMessage {
  type: 'open';
  file: string;
  line: number;
  line0: number;
}

const KIB = 1024;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Binary units with one decimal, the same text as the server's `format_bytes` ("10.0 MiB"). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < KIB) return `${Math.max(0, Math.round(bytes || 0))} B`;
  let value = bytes;
  let unit = 0;
  while (value >= KIB && unit < UNITS.length - 1) {
    value /= KIB;
    unit += 1;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** The status bar text for a run's summary, or undefined when there is nothing to show. */
export function statusText(summary: Summary | null | undefined): string | undefined {
  if (!summary || typeof summary.peak_bytes !== 'number') return undefined;
  return `$(pulse) ${formatBytes(summary.peak_bytes)} peak`;
}

/** Validates a message from the flame graph webview; anything else is ignored. */
export function parseOpenMessage(message: unknown): OpenMessage | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  if (m.type !== 'open' || typeof m.file !== 'string' || m.file === '') return undefined;
  const line = typeof m.line === 'number' ? m.line : Number(m.line);
  if (!Number.isInteger(line) || line < 1) return undefined;
  return { type: 'open', file: m.file, line, line0: line - 1 };
}

/**
 * One line about a finished profile run. Failures are 'error': the server has already shown them
 * (window/showMessage), so the client only logs them.
 */
export function runOutcome(file: string, result: ProfileResult): { level: 'info' | 'error'; text: string } {
  if (result.cancelled) return { level: 'info', text: `memlens: profiling ${file} was cancelled.` };
  if (result.error) return { level: 'error', text: `memlens: profiling ${file} failed: ${result.error}` };
  if (result.exitCode !== 0 && result.exitCode !== null) {
    return { level: 'error', text: `memlens: ${file} exited with code ${result.exitCode}; its output is in the Memlens output channel.` };
  }
  const peak = result.peakText || formatBytes(result.peakBytes);
  return { level: 'info', text: `memlens: ${file} peak ${peak} in ${result.durationS.toFixed(1)} s.` };
}
