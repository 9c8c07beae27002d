// The memlens LSP protocol as the client sees it, declared once (the server's twin is
// server/memlens/lsp/protocol.py). Lines are 0-based everywhere, like LSP.
// Pure: no vscode import, so the mapping helpers are unit-tested under plain node. Bytes are
// formatted by the server: every `...Text` field and label is shown as is.

import { NotificationType, RequestType } from 'vscode-languageserver-protocol';

/** A server command: `workspace/executeCommand` with ONE object argument of type P, answering R. */
export class CommandType<P, R> {
  declare readonly types?: [P, R]; // carries P and R for the checker; never set
  constructor(readonly command: string) {}
}

export type NoParams = Record<string, never>;

// Each method once, typed (the server's twin is protocol.METHODS; test_protocol_ts.py compares).
export const profile = new CommandType<ProfileParams, ProfileResult | null>('memlens.profile');
export const loadCapture = new CommandType<LoadCaptureParams, CaptureResult | null>('memlens.loadCapture');
export const clear = new CommandType<NoParams, null>('memlens.clear');
export const showStack = new CommandType<ShowStackParams, ShowStackResult>('memlens.showStack');
export const profileTest = new CommandType<ProfileTestParams, ProfileTestResult | null>('memlens.profileTest');
export const profileNotebook = new CommandType<ProfileNotebookParams, ProfileResult | null>('memlens.profileNotebook');
export const attach = new CommandType<AttachParams, AttachResult | null>('memlens.attach');
export const detach = new CommandType<NoParams, DetachResult | null>('memlens.detach');
export const snapshot = new CommandType<SnapshotParams, SnapshotResult | null>('memlens.snapshot');
export const summary = new RequestType<NoParams, Summary | null, void>('memlens/summary');
export const hotspots = new RequestType<HotspotsParams, HotspotsResult, void>('memlens/hotspots');
export const flameGraph = new RequestType<FlameGraphParams, FlameGraphResult | null, void>('memlens/flamegraph');
export const fileUsage = new RequestType<FileUsageParams, FileUsageResult, void>('memlens/fileUsage');
export const didUpdate = new NotificationType<DidUpdateParams>('memlens/didUpdate');

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

export interface LoadCaptureParams {
  path: string;
}

export interface ShowStackParams {
  uri: string;
  line: number;
}

export interface AttachParams {
  pid: number;
  checkpointInterval?: number;
}

export interface SnapshotParams {
  /** default: "editor-N", N counting this server's requests */
  label?: string;
}

export interface ProfileTestParams {
  uri: string;
  /** the node id after "FILE::": "test_x" or "TestY::test_x" */
  test: string;
  confirmed?: boolean;
}

export interface NotebookCell {
  /** the cell document's uri (vscode-notebook-cell:...) */
  uri: string;
  text: string;
}

export interface ProfileNotebookParams {
  notebookUri: string;
  /** the code cells, in order */
  cells: NotebookCell[];
  confirmed?: boolean;
}

export interface HotspotsParams {
  limit?: number;
}

export interface FileUsageParams {
  uri: string;
}

export interface ProfileResult {
  exitCode: number | null;
  durationS: number;
  cancelled: boolean;
  peakBytes: number | null;
  peakText: string | null;
  capturePath: string | null;
}

export interface ProfileTestResult {
  nodeid: string;
  /** passed, failed or skipped */
  outcome: string;
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

export interface CaptureResult {
  peakBytes: number;
  peakText: string;
  capturePath: string;
}

export interface AttachResult {
  pid: number;
  python: string;
  capturePath: string;
}

export interface SnapshotResult {
  label: string;
  /** since tracking started */
  tMs: number;
  count: number;
  bytes: number;
  text: string;
}

export interface DetachResult {
  peakBytes: number;
  peakText: string;
  capturePath: string;
  how: 'detached' | 'exited' | 'vanished';
}

export interface Frame {
  uri: string | null;
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

/** memlens.reports.summary's JSON (snake_case as built); the fields the extension reads. */
export interface Summary {
  peak_bytes: number;
  peak_ns: number;
  duration_s: number;
  alloc_bytes: number;
  alloc_count: number;
  leak_bytes: number;
  exit_code: number | null;
  top_lines: unknown[];
}

export interface Hotspot {
  uri: string | null;
  line: number;
  file: string;
  function: string;
  peakBytes: number;
  peakText: string;
  totalBytes: number;
  totalText: string;
  count: number;
  leakBytes: number;
  leakText: string;
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
  peakText: string | null;
  leakText: string | null;
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

/** The status bar text for a run's summary, or undefined when there is nothing to show. */
export function statusText(update: DidUpdateParams | undefined): string | undefined {
  if (!update?.summary || !update.peakText) return undefined;
  return `$(pulse) ${update.peakText} peak`;
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
  if (result.exitCode !== 0 && result.exitCode !== null) {
    return { level: 'error', text: `memlens: ${file} exited with code ${result.exitCode}; its output is in the Memlens output channel.` };
  }
  return { level: 'info', text: `memlens: ${file} peak ${result.peakText ?? '?'} in ${result.durationS.toFixed(1)} s.` };
}
