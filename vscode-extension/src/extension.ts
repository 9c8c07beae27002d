// Entry point: only wires the parts together; every disposable goes to context.subscriptions.

import * as vscode from 'vscode';
import { attachToProcess, detachFromProcess } from './attach';
import { followLiveRuns, takeSnapshot } from './snapshot';
import { clearResults, openCapture, openFlameGraph, profileMemory, restartServer } from './commands';
import { Memlens } from './context';
import { FlameGraphPanel } from './flameGraph';
import { HeatDecorations } from './heatDecorations';
import { HotspotsView } from './hotspotsView';
import { profileFileOrNotebook, profileNotebook } from './notebook';
import { showPeakStack } from './peakStack';
import { PeakStatus } from './statusBar';
import { profileThisTest } from './testLens';

let memlens: Memlens | undefined;

export function activate(context: vscode.ExtensionContext): void {
  memlens = new Memlens(context);
  const flameGraph = new FlameGraphPanel(memlens);
  const hotspots = new HotspotsView(memlens);
  const current = memlens;
  context.subscriptions.push(
    memlens,
    flameGraph,
    hotspots,
    new HeatDecorations(memlens),
    new PeakStatus(memlens),
    memlens.onDidUpdate((update) =>
      vscode.commands.executeCommand('setContext', 'memlens.hasResults', update.summary !== null),
    ),
    memlens.onDidUpdate(followLiveRuns),
    vscode.commands.registerCommand('memlens.profileMemory', profileFileOrNotebook(memlens, profileMemory(memlens, false))),
    vscode.commands.registerCommand('memlens.profileNotebookMemory', profileNotebook(memlens)),
    vscode.commands.registerCommand('memlens.profileMemoryWithArguments', profileMemory(memlens, true)),
    vscode.commands.registerCommand('memlens.openCapture', openCapture(memlens)),
    vscode.commands.registerCommand('memlens.clearResults', clearResults(memlens)),
    vscode.commands.registerCommand('memlens.showPeakStack', (argument?: unknown) => showPeakStack(current, argument)),
    vscode.commands.registerCommand('memlens.openFlameGraph', openFlameGraph(flameGraph)),
    vscode.commands.registerCommand('memlens.restartServer', restartServer(memlens)),
    vscode.commands.registerCommand('memlens.refreshHotspots', () => hotspots.refresh()),
    vscode.commands.registerCommand('memlens.attachToProcess', attachToProcess(memlens)),
    vscode.commands.registerCommand('memlens.detachFromProcess', detachFromProcess(memlens)),
    vscode.commands.registerCommand('memlens.profileThisTest', profileThisTest(memlens)),
    vscode.commands.registerCommand('memlens.takeSnapshot', takeSnapshot(memlens)),
  );
  // Start the server now, so lenses and hints work and a missing memlens is reported at once.
  void memlens.ensureClient();
}

export async function deactivate(): Promise<void> {
  await memlens?.stop();
  memlens = undefined;
}
