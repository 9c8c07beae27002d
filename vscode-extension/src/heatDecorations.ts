// Heat: each line's background and overview-ruler mark colored by its share of the run's peak,
// from `memlens/fileUsage`. Decoration types are created once; repaints are throttled.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { LEVELS, linesByLevel, throttle } from './heat';
import { fileUsage, type FileUsageResult } from './protocol';

const REPAINT_MS = 250;

export class HeatDecorations implements vscode.Disposable {
  private readonly levels: vscode.TextEditorDecorationType[];
  private readonly disposables: vscode.Disposable[] = [];
  private readonly repaintSoon = throttle(() => void this.repaint(), REPAINT_MS);
  private hasResults = false;

  constructor(private readonly memlens: Memlens) {
    this.levels = Array.from({ length: LEVELS }, (_, i) =>
      vscode.window.createTextEditorDecorationType({
        isWholeLine: true,
        backgroundColor: new vscode.ThemeColor(`memlens.heat${i + 1}Background`),
        overviewRulerColor: new vscode.ThemeColor(`memlens.heat${i + 1}OverviewRuler`),
        overviewRulerLane: vscode.OverviewRulerLane.Right,
      }),
    );
    this.disposables.push(
      ...this.levels,
      memlens.onDidUpdate((update) => {
        this.hasResults = update.summary !== null;
        if (this.hasResults) this.repaintSoon();
        else this.clear();
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.repaintSoon()),
      // Edited lines become stale on the server; repaint so their heat goes away.
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.document.languageId === 'python' && event.contentChanges.length) this.repaintSoon();
      }),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('memlens.heat')) this.repaintSoon();
      }),
    );
  }

  private async repaint(): Promise<void> {
    const editors = vscode.window.visibleTextEditors.filter(
      (editor) => editor.document.languageId === 'python' && editor.document.uri.scheme === 'file',
    );
    if (!this.hasResults || !this.memlens.settings.heat) {
      for (const editor of editors) this.paint(editor, undefined);
      return;
    }
    await Promise.all(
      editors.map(async (editor) => {
        try {
          const usage = await this.memlens.request(fileUsage, {
            uri: editor.document.uri.toString(),
          });
          // A clear may have arrived while the request was in flight.
          this.paint(editor, this.hasResults ? usage : undefined);
        } catch (error) {
          this.memlens.log.warn(`heat for ${editor.document.uri.fsPath}: ${String(error)}`);
        }
      }),
    );
  }

  private paint(editor: vscode.TextEditor, usage: FileUsageResult | undefined): void {
    const buckets = usage ? linesByLevel(usage.lines ?? []) : [];
    const lastLine = editor.document.lineCount - 1;
    this.levels.forEach((type, i) => {
      const ranges = (buckets[i] ?? [])
        .filter((line) => line <= lastLine)
        .map((line) => new vscode.Range(line, 0, line, 0));
      editor.setDecorations(type, ranges);
    });
  }

  clear(): void {
    this.repaintSoon.cancel();
    this.hasResults = false;
    for (const editor of vscode.window.visibleTextEditors) for (const type of this.levels) editor.setDecorations(type, []);
  }

  dispose(): void {
    this.repaintSoon.cancel();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
