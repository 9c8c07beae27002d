// "Profile notebook": sends the active notebook's Python code cells to the server
// (memlens.profileNotebook), which runs them in order as one script and shows the numbers on the
// cells themselves (hints, lenses, diagnostics and hover on their vscode-notebook-cell: documents,
// which the client's document selector includes). "Profile memory" with a notebook cell in focus
// does the same.

import * as vscode from 'vscode';
import { allowedToRun } from './commands';
import type { Memlens } from './context';
import { notebookName, notebookParams } from './notebookCells';
import { confirmationPath, profileNotebook as profileNotebookRequest, runOutcome } from './protocol';
import type { ProfileNotebookParams, ProfileResult } from './protocol';

/** The notebook the user is in: the one of the focused cell, else the active notebook editor's. */
export function activeNotebook(): vscode.NotebookDocument | undefined {
  const focused = vscode.window.activeTextEditor?.document.uri;
  if (focused?.scheme === 'vscode-notebook-cell') {
    const uri = focused.toString();
    return vscode.workspace.notebookDocuments.find((notebook) =>
      notebook.getCells().some((cell) => cell.document.uri.toString() === uri),
    );
  }
  return focused ? undefined : vscode.window.activeNotebookEditor?.notebook;
}

export function profileNotebook(memlens: Memlens) {
  return async (): Promise<void> => {
    const notebook = activeNotebook() ?? vscode.window.activeNotebookEditor?.notebook;
    if (!notebook) {
      void vscode.window.showWarningMessage('memlens: open a Jupyter notebook to profile its cells.');
      return;
    }
    if (!(await memlens.ensureClient())) return;
    const params = notebookParams(
      notebook.uri.toString(),
      notebook.getCells().map((cell) => ({
        kind: cell.kind === vscode.NotebookCellKind.Code ? 'code' : 'markup',
        languageId: cell.document.languageId,
        uri: cell.document.uri.toString(),
        text: cell.document.getText(),
      })),
    );
    const name = notebookName(params.notebookUri);
    memlens.log.info(`profiling the ${params.cells.length} code cells of ${name}`);
    const result = await runNotebook(memlens, params);
    if (!result) return; // the server has said why (window/showMessage)
    const outcome = runOutcome(name, result);
    if (outcome.level === 'error') memlens.log.error(outcome.text);
    else {
      memlens.log.info(outcome.text);
      void vscode.window.setStatusBarMessage(outcome.text, 10_000);
    }
  };
}

/** "Profile memory": the notebook when it is asked for a notebook cell (the focused one, or the
 * one whose editor title menu was used), else the file. */
export function profileFileOrNotebook(memlens: Memlens, profileFile: (resource?: unknown) => Promise<void>) {
  return (resource?: unknown): Promise<void> => {
    const cell = resource instanceof vscode.Uri && resource.scheme === 'vscode-notebook-cell';
    const forNotebook = (resource === undefined || cell) && activeNotebook() !== undefined;
    return forNotebook ? profileNotebook(memlens)() : profileFile(resource);
  };
}

async function runNotebook(memlens: Memlens, params: ProfileNotebookParams): Promise<ProfileResult | undefined> {
  try {
    return (await memlens.execute(profileNotebookRequest, params)) ?? undefined;
  } catch (error) {
    const outside = params.confirmed ? undefined : confirmationPath(error);
    if (outside !== undefined) {
      return (await allowedToRun(memlens, outside)) ? runNotebook(memlens, { ...params, confirmed: true }) : undefined;
    }
    memlens.log.error(`profiling ${params.notebookUri} failed: ${String(error)}`);
    void vscode.window.showErrorMessage(`memlens: profiling the notebook failed: ${String(error)}`);
    return undefined;
  }
}
