// "Memlens: Take snapshot": the live run (a profile in progress or an attached process) records
// which Python objects are live now. The server does the work (memlens.snapshot,
// server/memlens/lsp/features/snapshot.py) and says itself why a snapshot could not be taken.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { snapshot, type DidUpdateParams, type SnapshotResult } from './protocol';

/** True while checkpoints of a live run arrive (final: false); the command is shown then. */
export const LIVE = 'memlens.live';

export function followLiveRuns(update: DidUpdateParams): void {
  void vscode.commands.executeCommand('setContext', LIVE, !update.final);
}

export function takeSnapshot(memlens: Memlens) {
  return async (): Promise<void> => {
    const label = await vscode.window.showInputBox({
      title: 'memlens: take a snapshot of the live objects',
      prompt: 'A label for it (empty: editor-N)',
    });
    if (label === undefined) return; // dismissed
    let result: SnapshotResult | null | undefined;
    try {
      result = await memlens.execute(snapshot, label.trim() ? { label: label.trim() } : {});
    } catch (error) {
      void vscode.window.showErrorMessage(`memlens: cannot take a snapshot: ${String(error)}`);
      return;
    }
    if (!result) return; // the server has said why (window/showMessage)
    const text = `memlens: ${result.text}; hover a line for its types, or memlens types --at ${result.label}`;
    memlens.log.info(text);
    void vscode.window.setStatusBarMessage(text, 10_000);
  };
}
