// The run's peak in the status bar; a click opens the flame graph.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { statusText } from './protocol';

export class PeakStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscription: vscode.Disposable;

  constructor(memlens: Memlens) {
    this.item = vscode.window.createStatusBarItem('memlens.peak', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'Memlens peak';
    this.item.command = 'memlens.openFlameGraph';
    this.subscription = memlens.onDidUpdate((update) => {
      const text = statusText(update);
      if (!text || !update.summary) {
        this.item.hide();
        return;
      }
      this.item.text = update.final ? text : `${text} (running)`;
      const leaked = update.leakText ? `, ${update.leakText} leaked` : '';
      this.item.tooltip = `memlens: peak ${update.peakText}${leaked}. Click for the flame graph.`;
      this.item.show();
    });
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
