// Code lenses and inlay hints that change together. On the server's refresh VS Code asks for
// inlay hints after ~25 ms but for code lenses after at least 250 ms, so at the end of a run the
// hints showed the final numbers while a function's lens still showed a checkpoint's, its total
// below its own line's. Here the hints asked for after a lens refresh wait (at most a second)
// until the lenses have been fetched again and shown: VS Code puts a new title on a lens it
// already shows in its resolve pass, which runs at least 250 ms after the fetch, and later when
// its adaptive debounce has seen slow fetches (a 350 ms margin was once 244 ms short in the
// end-to-end test): a full second covers it; the hints then come about a second after the run.

import * as vscode from 'vscode';
import { CodeLensRefreshRequest, CodeLensRequest, type LanguageClient, type Middleware } from 'vscode-languageclient/node';
import { Gate } from './gate';

const HINTS_WAIT_MS = 2_500;
const LENS_RESOLVE_MS = 1_000;

export class LensesFirst {
  private readonly lenses = new Gate();

  /** For the client's options: lens fetches open the gate, hint fetches wait on it. */
  readonly middleware: Middleware = {
    provideCodeLenses: async (document, token, next) => {
      try {
        return await next(document, token);
      } finally {
        setTimeout(() => this.lenses.open(), LENS_RESOLVE_MS);
      }
    },
    provideInlayHints: async (document, range, token, next) => {
      await this.lenses.wait(HINTS_WAIT_MS);
      return next(document, range, token);
    },
  };

  /**
   * Takes over workspace/codeLens/refresh (after start, so that the client's own handler is
   * replaced): close the gate, then tell VS Code the lenses changed, as the client would.
   */
  attach(client: LanguageClient): vscode.Disposable {
    return client.onRequest(CodeLensRefreshRequest.type, () => {
      this.lenses.close();
      const feature = client.getFeature(CodeLensRequest.method);
      const providers = new Set(
        vscode.workspace.textDocuments.map((document) => feature.getProvider(document)).filter((p) => p !== undefined),
      );
      if (!providers.size) this.lenses.open(); // no document has our lenses: nothing to wait for
      for (const provider of providers) provider.onDidChangeCodeLensEmitter.fire();
    });
  }
}
