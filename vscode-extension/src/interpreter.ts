// Finding the Python interpreter that runs the server, and making sure memlens imports there:
// memlens.python, else the Python extension's active interpreter, else python3. A missing memlens
// is never a silent failure: the user gets a notification that offers to pip-install it.

import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import { VERSION_SCRIPT, parseVersion, unsupportedVersion } from './pythonVersion';
import { chooseInterpreter, installCommand, type InterpreterSource } from './settings';

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  };
}

/** The Python extension's active interpreter, through its public API, when it is installed. */
async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!extension) return undefined;
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const resource = vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri;
    return api?.environments?.getActiveEnvironmentPath(resource)?.path || undefined;
  } catch {
    return undefined; // a broken Python extension must not stop memlens: fall back to python3
  }
}

export async function resolveInterpreter(setting: string): Promise<{ python: string; source: InterpreterSource }> {
  const fromExtension = setting.trim() ? undefined : await pythonExtensionInterpreter();
  return chooseInterpreter(setting, fromExtension);
}

export type ImportCheck =
  | { ok: true }
  | { ok: false; reason: 'not-found'; detail: string }
  | { ok: false; reason: 'not-installed'; detail: string }
  | { ok: false; reason: 'unsupported'; detail: string };

/**
 * The interpreter's version (a supported one, or one clear line naming it and the range), then
 * whether memlens imports there. An interpreter that does not answer the version question is
 * left to the import check, which tells "not found" from "not installed".
 */
export async function checkInterpreter(python: string): Promise<ImportCheck> {
  const version = await new Promise<[number, number] | undefined>((resolve) => {
    execFile(python, ['-c', VERSION_SCRIPT], { timeout: 15_000 }, (error, stdout) =>
      resolve(error ? undefined : parseVersion(String(stdout))),
    );
  });
  const problem = version && unsupportedVersion(python, version);
  if (problem) return { ok: false, reason: 'unsupported', detail: problem };
  return checkMemlensImport(python);
}

/** Runs `<python> -c "import memlens"`. */
export function checkMemlensImport(python: string): Promise<ImportCheck> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import memlens'], { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve({ ok: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        return resolve({ ok: false, reason: 'not-found', detail: `${python}: ${code}` });
      }
      const lastLine = String(stderr).trim().split('\n').pop() ?? error.message;
      resolve({ ok: false, reason: 'not-installed', detail: lastLine });
    });
  });
}

/**
 * Tells the user why the server cannot start and offers the fix: install memlens into that
 * interpreter (pip in a terminal, so they see it) or pick another interpreter in the settings.
 */
export async function reportUnusableInterpreter(
  python: string,
  check: Exclude<ImportCheck, { ok: true }>,
  installSource: string,
  log: vscode.LogOutputChannel,
): Promise<'installing' | 'dismissed'> {
  log.error(`interpreter ${python}: ${check.detail}`);
  const openSettings = 'Open Settings';
  if (check.reason !== 'not-installed') {
    const message =
      check.reason === 'unsupported'
        ? check.detail
        : `memlens: Python interpreter not found: ${python}. Set memlens.python to a Python that has memlens.`;
    const choice = await vscode.window.showErrorMessage(message, openSettings);
    if (choice === openSettings) await vscode.commands.executeCommand('workbench.action.openSettings', 'memlens.python');
    return 'dismissed';
  }
  const install = 'Install';
  const choice = await vscode.window.showErrorMessage(
    `memlens is not installed in ${python}`,
    install,
    openSettings,
  );
  if (choice === install) {
    const terminal = vscode.window.createTerminal({ name: 'memlens: install' });
    terminal.show();
    terminal.sendText(installCommand(python, installSource, process.platform === 'win32'));
    return 'installing';
  }
  if (choice === openSettings) await vscode.commands.executeCommand('workbench.action.openSettings', 'memlens.python');
  return 'dismissed';
}
