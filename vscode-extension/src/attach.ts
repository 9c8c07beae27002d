// "Memlens: Attach to process…" and "Memlens: Detach": a running Python program, tracked live.
// The server does the work (memlens.attach / memlens.detach, server/memlens/lsp/features/attach.py);
// its checkpoints arrive as memlens/didUpdate like a running profile's, so the annotations, the
// heat and the status bar heap follow them with nothing more here.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { attach, detach, type AttachResult, type DetachResult } from './protocol';
import { listPythonProcesses } from './pythonProcesses';

const ATTACHED = 'memlens.attached';

export function attachToProcess(memlens: Memlens) {
  return async (): Promise<void> => {
    const processes = listPythonProcesses('/proc', new Set([process.pid]));
    if (!processes.length) {
      void vscode.window.showInformationMessage('memlens: no running Python process found.');
      return;
    }
    const picked = await vscode.window.showQuickPick(
      processes.map((found) => ({ label: String(found.pid), description: found.command, pid: found.pid })),
      { title: 'memlens: attach to a running Python process', placeHolder: 'pid or command line', matchOnDescription: true },
    );
    if (!picked) return;
    let result: AttachResult | null | undefined;
    try {
      result = await memlens.execute(attach, { pid: picked.pid });
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: cannot attach to pid ${picked.pid}: ${String(error)}`);
      return;
    }
    if (!result) return; // the server has said why (window/showMessage)
    void vscode.commands.executeCommand('setContext', ATTACHED, true);
    const text = `memlens: attached to pid ${result.pid} (CPython ${result.python}); results follow its checkpoints`;
    memlens.log.info(text);
    void vscode.window.setStatusBarMessage(text, 10_000);
  };
}

export function detachFromProcess(memlens: Memlens) {
  return async (): Promise<void> => {
    let result: DetachResult | null | undefined;
    try {
      result = await memlens.execute(detach, {});
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: cannot detach: ${String(error)}`);
      return;
    } finally {
      void vscode.commands.executeCommand('setContext', ATTACHED, false);
    }
    if (!result) return;
    const text = `memlens: detached; peak ${result.peakText} (capture ${result.capturePath})`;
    memlens.log.info(text);
    void vscode.window.setStatusBarMessage(text, 10_000);
  };
}
