// A notebook's cells as memlens.profileNotebook takes them: its Python code cells, in order, each
// with its document's uri and text (markdown and other languages' cells are not run). No vscode
// import here, so that it is tested on its own.

import type { ProfileNotebookParams } from './protocol';

/** What the request needs of a cell (vscode.NotebookCell gives it: kind, languageId, document). */
export interface CellLike {
  kind: 'code' | 'markup';
  languageId: string;
  uri: string;
  text: string;
}

export function notebookParams(notebookUri: string, cells: readonly CellLike[]): ProfileNotebookParams {
  return {
    notebookUri,
    cells: cells
      .filter((cell) => cell.kind === 'code' && cell.languageId === 'python')
      .map((cell) => ({ uri: cell.uri, text: cell.text })),
  };
}

/** The notebook's name in messages: the last part of its path. */
export function notebookName(notebookUri: string): string {
  const path = notebookUri.replace(/[?#].*$/, '');
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || notebookUri;
}
