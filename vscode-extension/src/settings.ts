// The `memlens.*` settings: parsed from whatever the configuration holds (a bad value falls back to
// its default and is reported), split into what the server needs and what only the client uses.
// Pure: no vscode import. Defaults and ranges come from package.json (written there once; the
// server's settings.py is checked against it by tests/lsp/test_protocol_ts.py).

import manifest from '../package.json';

export interface DiagnosticsSettings {
  topN: number;
  minMiB: number;
  minShare: number;
}

/** Sent to the server as initializationOptions `{memlens: ...}` and on every change. */
export interface ServerSettings {
  python: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  pythonAllocators: boolean;
  followFork: boolean;
  includeLibraries: boolean;
  diagnostics: DiagnosticsSettings;
  inlayHints: boolean;
  leakDiagnostics: boolean;
  /** Lines and functions under this share (0–1) of the peak and of the total get no hint or lens. */
  hideBelowShare: number;
  /** A block freed within this many allocations of its thread is temporary (0–64). */
  temporaryAllocationThreshold: number;
  /** The inline text adds each line's change of peak since the previous run of the script. */
  showChangeSincePreviousRun: boolean;
}

export interface Settings extends ServerSettings {
  heat: boolean;
  installSource: string;
}

/** A setting as package.json declares it: its default and range are written there only. */
interface Declared {
  default: unknown;
  minimum?: number;
  maximum?: number;
}

const DECLARED = manifest.contributes.configuration.properties as Record<string, Declared>;

function declared(key: string): Declared {
  const found = DECLARED[`memlens.${key}`];
  if (!found) throw new Error(`memlens.${key} is not declared in package.json`);
  return found;
}

const fallback = <T>(key: string): T => declared(key).default as T;

export const DEFAULTS: Settings = {
  python: fallback('python'),
  args: fallback('args'),
  cwd: fallback('cwd'),
  env: fallback('env'),
  pythonAllocators: fallback('pythonAllocators'),
  followFork: fallback('followFork'),
  includeLibraries: fallback('includeLibraries'),
  diagnostics: {
    topN: fallback('diagnostics.topN'),
    minMiB: fallback('diagnostics.minMiB'),
    minShare: fallback('diagnostics.minShare'),
  },
  inlayHints: fallback('inlayHints'),
  leakDiagnostics: fallback('leakDiagnostics'),
  hideBelowShare: fallback('hideBelowShare'),
  temporaryAllocationThreshold: fallback('temporaryAllocationThreshold'),
  showChangeSincePreviousRun: fallback('showChangeSincePreviousRun'),
  heat: fallback('heat'),
  installSource: fallback('installSource'),
};

/** A number within the range package.json declares for `key` (whole, if `integer`). */
function inRange(key: string, integer = false): (v: unknown) => v is number {
  const { minimum = -Infinity, maximum = Infinity } = declared(key);
  return (v: unknown): v is number =>
    typeof v === 'number' && Number.isFinite(v) && v >= minimum && v <= maximum && (!integer || Number.isInteger(v));
}

export interface Parsed {
  settings: Settings;
  /** One line per value that was replaced by its default. */
  problems: string[];
}

/** Reads `key` (dotted) from a section object as `getConfiguration('memlens')` exposes it. */
export type Lookup = (key: string) => unknown;

export function parseSettings(lookup: Lookup): Parsed {
  const problems: string[] = [];
  const pick = <T>(key: string, fallback: T, valid: (v: unknown) => v is T): T => {
    const value = lookup(key);
    if (value === undefined || value === null) return fallback;
    if (valid(value)) return value;
    problems.push(`memlens.${key}: invalid value ${JSON.stringify(value)}, using ${JSON.stringify(fallback)}`);
    return fallback;
  };
  const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
  const isString = (v: unknown): v is string => typeof v === 'string';
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
  const isEnv = (v: unknown): v is Record<string, string> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isString);

  const settings: Settings = {
    python: pick('python', DEFAULTS.python, isString).trim(),
    args: pick('args', DEFAULTS.args, isStrings),
    cwd: pick('cwd', DEFAULTS.cwd, isString),
    env: pick('env', DEFAULTS.env, isEnv),
    pythonAllocators: pick('pythonAllocators', DEFAULTS.pythonAllocators, isBool),
    followFork: pick('followFork', DEFAULTS.followFork, isBool),
    includeLibraries: pick('includeLibraries', DEFAULTS.includeLibraries, isBool),
    diagnostics: {
      topN: pick('diagnostics.topN', DEFAULTS.diagnostics.topN, inRange('diagnostics.topN', true)),
      minMiB: pick('diagnostics.minMiB', DEFAULTS.diagnostics.minMiB, inRange('diagnostics.minMiB')),
      minShare: pick('diagnostics.minShare', DEFAULTS.diagnostics.minShare, inRange('diagnostics.minShare')),
    },
    inlayHints: pick('inlayHints', DEFAULTS.inlayHints, isBool),
    leakDiagnostics: pick('leakDiagnostics', DEFAULTS.leakDiagnostics, isBool),
    hideBelowShare: pick('hideBelowShare', DEFAULTS.hideBelowShare, inRange('hideBelowShare')),
    temporaryAllocationThreshold: pick(
      'temporaryAllocationThreshold',
      DEFAULTS.temporaryAllocationThreshold,
      inRange('temporaryAllocationThreshold', true),
    ),
    showChangeSincePreviousRun: pick('showChangeSincePreviousRun', DEFAULTS.showChangeSincePreviousRun, isBool),
    heat: pick('heat', DEFAULTS.heat, isBool),
    installSource: pick('installSource', DEFAULTS.installSource, isString).trim() || DEFAULTS.installSource,
  };
  return { settings, problems };
}

/** The part of the settings the server reads; `python` is the interpreter actually used. */
export function serverSettings(settings: Settings, python: string): { memlens: ServerSettings } {
  const { heat: _heat, installSource: _source, ...server } = settings;
  return { memlens: { ...server, python } };
}

/** Where the interpreter came from, for messages ("from memlens.python"). */
export type InterpreterSource = 'setting' | 'python-extension' | 'default';

/** memlens.python, else the Python extension's active interpreter, else python3. */
export function chooseInterpreter(
  setting: string,
  pythonExtension: string | undefined,
): { python: string; source: InterpreterSource } {
  if (setting.trim()) return { python: setting.trim(), source: 'setting' };
  if (pythonExtension && pythonExtension.trim()) return { python: pythonExtension.trim(), source: 'python-extension' };
  return { python: 'python3', source: 'default' };
}

/** Changes that need a new server process rather than a didChangeConfiguration. */
export function needsRestart(before: Settings, after: Settings): boolean {
  return before.python !== after.python;
}

/** The pip command line offered when memlens is missing, quoted for a POSIX or Windows shell. */
export function installCommand(python: string, source: string, windows = false): string {
  const quote = (s: string): string => {
    if (/^[\w@%+=:,./-]+$/.test(s)) return s;
    return windows ? `"${s.replace(/"/g, '\\"')}"` : `'${s.replace(/'/g, `'\\''`)}'`;
  };
  const call = windows ? '& ' : '';
  return `${call}${quote(python)} -m pip install ${quote(source)}`;
}

/** Splits "a 'b c' d" into arguments as a POSIX shell would (quotes and backslashes only). */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let current = '';
  let started = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) args.push(current);
      current = '';
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (quote) throw new Error(`unclosed ${quote} quote in arguments`);
  if (started) args.push(current);
  return args;
}
