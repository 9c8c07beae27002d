// The "Hotspots" tree in the Memlens view container: top lines by peak and leaks, each expanding
// into its stack frames; clicking any item opens the file at that line.

import * as vscode from 'vscode';
import type { Memlens } from './context';
import { throttle } from './heat';
import { buildHotspotTree, childrenOf, type HotspotNode, type Location } from './hotspotModel';
import { hotspots, type Summary } from './protocol';

const HOTSPOT_LIMIT = 20;
const REFRESH_MS = 500;

/** The `vscode.open` command that reveals a 0-based line. */
export function openCommand(location: Location, title = 'Open'): vscode.Command {
  const position = new vscode.Position(location.line, 0);
  const options: vscode.TextDocumentShowOptions = { selection: new vscode.Range(position, position), preview: true };
  return { title, command: 'vscode.open', arguments: [vscode.Uri.parse(location.uri), options] };
}

export class HotspotsView implements vscode.TreeDataProvider<HotspotNode>, vscode.Disposable {
  private roots: HotspotNode[] = [];
  /** The shown run's summary: its peak and total decide which lines are too small to list. */
  private summary: Summary | null = null;
  private readonly changed = new vscode.EventEmitter<HotspotNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  readonly refreshSoon = throttle(() => void this.refresh(), REFRESH_MS);

  constructor(private readonly memlens: Memlens) {
    this.disposables.push(
      this.changed,
      vscode.window.createTreeView('memlens.hotspots', { treeDataProvider: this, showCollapseAll: true }),
      memlens.onDidUpdate((update) => {
        this.summary = update.summary;
        if (update.summary === null) this.clear();
        else this.refreshSoon();
      }),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('memlens.hideBelowShare') && this.summary) this.refreshSoon();
      }),
    );
  }

  async refresh(): Promise<void> {
    try {
      const result = await this.memlens.request(hotspots, { limit: HOTSPOT_LIMIT });
      this.roots = buildHotspotTree(result, {
        hideBelowShare: this.memlens.settings.hideBelowShare,
        peakBytes: this.summary?.peak_bytes,
        totalBytes: this.summary?.alloc_bytes,
      });
    } catch (error) {
      this.memlens.log.warn(`hotspots: ${String(error)}`);
      this.roots = [];
    }
    this.changed.fire(undefined);
  }

  clear(): void {
    this.refreshSoon.cancel();
    this.roots = [];
    this.changed.fire(undefined);
  }

  getChildren(node?: HotspotNode): HotspotNode[] {
    return node ? childrenOf(node) : this.roots;
  }

  getTreeItem(node: HotspotNode): vscode.TreeItem {
    if (node.kind === 'section') {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
      item.id = node.id;
      item.description = node.description;
      item.tooltip = node.tooltip;
      item.contextValue = 'memlens.section';
      return item;
    }
    const collapsible =
      node.kind === 'line' && node.children.length
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, collapsible);
    item.id = node.id;
    item.description = node.description;
    item.resourceUri = vscode.Uri.parse(node.location.uri);
    item.iconPath = new vscode.ThemeIcon(
      node.kind === 'frame' ? 'symbol-function' : node.id.startsWith('leaks/') ? 'warning' : 'flame',
    );
    item.tooltip = node.kind === 'line' ? node.tooltip : `${node.label} — ${node.description}`;
    item.command = openCommand(node.location);
    item.contextValue = `memlens.${node.kind}`;
    return item;
  }

  dispose(): void {
    this.refreshSoon.cancel();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
