// "Show peak stack": the stacks holding memory at the peak through one line, as a quick pick of
// frames; picking a frame opens its location.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { placeText } from './hotspotModel';
import { showStack, type Frame } from './protocol';

interface FrameItem extends vscode.QuickPickItem {
  frame?: Frame;
}

/** The line to explain: from a code lens argument {uri, line}, else the cursor. */
function target(argument: unknown): { uri: string; line: number } | undefined {
  if (typeof argument === 'object' && argument !== null) {
    const { uri, line } = argument as { uri?: unknown; line?: unknown };
    if (typeof uri === 'string' && typeof line === 'number') return { uri, line };
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor) return undefined;
  return { uri: editor.document.uri.toString(), line: editor.selection.active.line };
}

export async function showPeakStack(memlens: Memlens, argument?: unknown): Promise<void> {
  const where = target(argument);
  if (!where) {
    void vscode.window.showInformationMessage('memlens: open a Python file and put the cursor on a line first.');
    return;
  }
  const result = await memlens.execute(showStack, where);
  if (!result) return;
  const place = placeText(vscode.Uri.parse(where.uri).fsPath, where.line);
  if (!result.stacks?.length) {
    void vscode.window.showInformationMessage(`memlens: no memory held at the peak goes through ${place}.`);
    return;
  }
  const items: FrameItem[] = [];
  for (const stack of result.stacks) {
    items.push({ label: `${stack.label} at peak`, kind: vscode.QuickPickItemKind.Separator });
    // Innermost frame first: that is where the memory was allocated.
    for (const frame of [...stack.frames].reverse()) {
      items.push({
        label: `$(symbol-function) ${frame.function || '<module>'}`,
        description: placeText(frame.file || (frame.uri ?? ''), frame.line),
        detail: frame.file,
        frame,
      });
    }
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: `memlens: peak stacks through ${place}`,
    placeHolder: 'Pick a frame to open its line',
    matchOnDescription: true,
  });
  if (!picked?.frame?.uri) return;
  const position = new vscode.Position(picked.frame.line, 0);
  await vscode.window.showTextDocument(vscode.Uri.parse(picked.frame.uri), {
    selection: new vscode.Range(position, position),
  });
}
