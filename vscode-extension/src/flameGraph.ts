// The flame graph: the server's HTML in a webview panel with a strict CSP (a fresh nonce per page,
// no remote content, no local resources). A click on a frame posts {type: "open", file, line}
// and the editor reveals that line.

import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Memlens } from './context';
import { flameGraph, parseOpenMessage, type FlameGraphResult, type OpenMessage } from './protocol';

/** The policy every flame graph page runs under: only our nonce'd scripts and styles. */
export function contentSecurityPolicy(nonce: string, cspSource: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

/** Puts our CSP first in <head>, whatever the page declares itself (the stricter one wins anyway). */
export function withPolicy(html: string, policy: string): string {
  const meta = `<meta http-equiv="Content-Security-Policy" content="${policy}">`;
  if (/<head[^>]*>/i.test(html)) return html.replace(/<head[^>]*>/i, (head) => `${head}\n${meta}`);
  return `<!DOCTYPE html><html><head>${meta}</head><body>${html}</body></html>`;
}

export class FlameGraphPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly memlens: Memlens) {
    this.disposables.push(
      memlens.onDidUpdate((update) => {
        if (!this.panel) return;
        if (update.summary === null) this.panel.dispose();
        else if (update.final) void this.render();
      }),
    );
  }

  async open(): Promise<void> {
    if (!(await this.memlens.ensureClient())) return;
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside);
    } else {
      this.panel = vscode.window.createWebviewPanel(
        'memlens.flameGraph',
        'Memlens: flame graph',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
        { enableScripts: true, localResourceRoots: [], retainContextWhenHidden: false },
      );
      this.panel.onDidDispose(() => (this.panel = undefined), null, this.disposables);
      this.panel.webview.onDidReceiveMessage((message: unknown) => void this.onMessage(message), null, this.disposables);
    }
    await this.render();
  }

  private async render(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const nonce = randomBytes(16).toString('base64');
    const cspSource = panel.webview.cspSource;
    let result: FlameGraphResult | null | undefined;
    try {
      result = await this.memlens.request(flameGraph, { nonce, cspSource });
    } catch (error) {
      this.memlens.log.error(`flame graph: ${String(error)}`);
      void vscode.window.showErrorMessage(`memlens: could not build the flame graph: ${String(error)}`);
    }
    const body = result?.html ?? '<p>No profile yet: run <b>Memlens: Profile memory</b> first.</p>';
    panel.webview.html = withPolicy(body, contentSecurityPolicy(nonce, cspSource));
  }

  private async onMessage(raw: unknown): Promise<void> {
    const message = parseOpenMessage(raw);
    if (!message) return;
    const uri = this.resolve(message);
    const position = new vscode.Position(message.line0, 0);
    try {
      await vscode.window.showTextDocument(uri, {
        viewColumn: vscode.ViewColumn.One,
        selection: new vscode.Range(position, position),
      });
    } catch (error) {
      void vscode.window.showWarningMessage(`memlens: cannot open ${uri.fsPath}: ${String(error)}`);
    }
  }

  /** A URI, an absolute path, or a path relative to the first workspace folder. */
  private resolve(message: OpenMessage): vscode.Uri {
    if (/^[a-z][\w+.-]*:\/\//i.test(message.file)) return vscode.Uri.parse(message.file);
    if (path.isAbsolute(message.file)) return vscode.Uri.file(message.file);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    return folder ? vscode.Uri.joinPath(folder, message.file) : vscode.Uri.file(message.file);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
