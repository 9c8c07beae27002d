// The user's commands, each a factory of the Memlens context object.

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Memlens } from './context';
import type { FlameGraphPanel } from './flameGraph';
import {
  clear,
  loadCapture,
  profile,
  confirmationPath,
  confirmationQuestion,
  runOutcome,
  type ProfileParams,
  type ProfileResult,
} from './protocol';
import { splitArgs } from './settings';

/** The script to profile: the explorer's selection, else the active editor's Python file. */
function scriptToProfile(resource: unknown): vscode.Uri | undefined {
  if (resource instanceof vscode.Uri) return resource;
  const document = vscode.window.activeTextEditor?.document;
  if (!document || document.languageId !== 'python' || document.uri.scheme !== 'file') {
    void vscode.window.showWarningMessage('memlens: open a Python file (or pick one in the explorer) to profile it.');
    return undefined;
  }
  return document.uri;
}

let lastArguments = '';

export function profileMemory(memlens: Memlens, askForArguments: boolean) {
  return async (resource?: unknown): Promise<void> => {
    const script = scriptToProfile(resource);
    if (!script) return;
    let args = memlens.settings.args;
    if (askForArguments) {
      const text = await vscode.window.showInputBox({
        title: `memlens: arguments for ${path.basename(script.fsPath)}`,
        value: lastArguments,
        prompt: 'Arguments as in a shell: quotes group words',
        validateInput: (value) => {
          try {
            splitArgs(value);
            return undefined;
          } catch (error) {
            return (error as Error).message;
          }
        },
      });
      if (text === undefined) return;
      lastArguments = text;
      args = splitArgs(text);
    }
    // Profile what the user sees, not the file on disk from before their last edit.
    const open = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === script.toString());
    if (open?.isDirty) await open.save();
    if (!(await memlens.ensureClient())) return;

    const folder = vscode.workspace.getWorkspaceFolder(script)?.uri.fsPath;
    const params: ProfileParams = {
      uri: script.toString(),
      args,
      cwd: memlens.settings.cwd || folder || path.dirname(script.fsPath),
      env: memlens.settings.env,
    };
    const name = path.basename(script.fsPath);
    memlens.log.info(`profiling ${script.fsPath} ${args.join(' ')}`);
    // The server reports progress itself (window/workDoneProgress/create, cancellable): the
    // language client shows it as a notification whose Cancel stops the run.
    const result = await runProfile(memlens, params);
    if (!result) return;
    const outcome = runOutcome(name, result);
    if (outcome.level === 'error') memlens.log.error(outcome.text);
    else {
      memlens.log.info(outcome.text);
      void vscode.window.setStatusBarMessage(outcome.text, 10_000);
    }
  };
}

async function runProfile(memlens: Memlens, params: ProfileParams): Promise<ProfileResult | undefined> {
  try {
    return (await memlens.execute(profile, params)) ?? undefined;
  } catch (error) {
    const outside = params.confirmed ? undefined : confirmationPath(error);
    if (outside !== undefined) return confirmAndProfile(memlens, params, outside);
    memlens.log.error(`profile failed: ${String(error)}`);
    void vscode.window.showErrorMessage(`memlens: profiling failed: ${String(error)}`);
    return undefined;
  }
}

/** The server refused a file outside the workspace folders: ask, and run it only on a yes. */
async function confirmAndProfile(
  memlens: Memlens,
  params: ProfileParams,
  outside: string,
): Promise<ProfileResult | undefined> {
  if (!(await allowedToRun(memlens, outside))) return undefined;
  return runProfile(memlens, { ...params, confirmed: true });
}

/** Asks (modal) before running a file outside the workspace folders; true on a yes. */
export async function allowedToRun(memlens: Memlens, outside: string): Promise<boolean> {
  const profile = 'Profile anyway';
  const choice = await vscode.window.showWarningMessage(confirmationQuestion(outside), { modal: true }, profile);
  if (choice !== profile) memlens.log.info(`not profiling ${outside}: it is outside the workspace folders`);
  return choice === profile;
}

export function openCapture(memlens: Memlens) {
  return async (): Promise<void> => {
    const picked = await vscode.window.showOpenDialog({
      title: 'memlens: load a capture',
      canSelectMany: false,
      filters: { 'memlens captures': ['msgpack', 'partial'], 'All files': ['*'] },
    });
    if (!picked?.length) return;
    try {
      await memlens.execute(loadCapture, { path: picked[0].fsPath });
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: cannot load ${picked[0].fsPath}: ${String(error)}`);
    }
  };
}

export function clearResults(memlens: Memlens) {
  return async (): Promise<void> => {
    if (memlens.running) await memlens.execute(clear, {});
  };
}

export function openFlameGraph(panel: FlameGraphPanel) {
  return (): Promise<void> => panel.open();
}

export function restartServer(memlens: Memlens) {
  return async (): Promise<void> => {
    await memlens.restart();
    if (memlens.running) void vscode.window.setStatusBarMessage('memlens: server restarted', 5_000);
  };
}
