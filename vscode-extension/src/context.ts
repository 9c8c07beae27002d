// The one object that owns the language client, the settings and the "Memlens" output channel.
// Commands and views are built from it; it starts the server lazily and restarts it on demand.

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type RequestType,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { checkInterpreter, reportUnusableInterpreter, resolveInterpreter } from './interpreter';
import { LensesFirst } from './lensesFirst';
import { showServerProgress } from './progress';
import { didUpdate, type CommandType, type DidUpdateParams } from './protocol';
import { needsRestart, parseSettings, serverSettings, type Settings } from './settings';

export class Memlens implements vscode.Disposable {
  /** Program output (window/logMessage from the server) and the client's own log. */
  readonly log: vscode.LogOutputChannel;
  settings: Settings;
  /** The interpreter of the running server. */
  python: string | undefined;
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private readonly updates = new vscode.EventEmitter<DidUpdateParams>();
  /** A new profile (live or final) or a cleared one (summary null). */
  readonly onDidUpdate = this.updates.event;
  private readonly disposables: vscode.Disposable[] = [];
  /** Handlers on the running client: disposed with it, so restarts do not pile them up. */
  private clientHandlers: vscode.Disposable[] = [];

  constructor(readonly extension: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('Memlens', { log: true });
    this.settings = this.readSettings();
    this.disposables.push(
      this.log,
      this.updates,
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('memlens')) void this.settingsChanged();
      }),
    );
  }

  private readSettings(): Settings {
    const section = vscode.workspace.getConfiguration('memlens');
    const { settings, problems } = parseSettings((key) => section.get(key));
    for (const problem of problems) {
      this.log.warn(problem);
      void vscode.window.showWarningMessage(problem);
    }
    return settings;
  }

  private async settingsChanged(): Promise<void> {
    const before = this.settings;
    this.settings = this.readSettings();
    this.log.info('settings changed');
    if (needsRestart(before, this.settings)) {
      await this.restart();
    } else if (this.client?.isRunning() && this.python) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: serverSettings(this.settings, this.python),
      });
    }
  }

  /** The running client, starting the server first if needed; undefined (user told) if it cannot start. */
  async ensureClient(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    this.starting ??= this.start()
      .catch((error) => {
        this.log.error(`server start: ${String(error)}`);
        return undefined;
      })
      .finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<LanguageClient | undefined> {
    const { python, source } = await resolveInterpreter(this.settings.python);
    this.log.info(`interpreter: ${python} (from ${source})`);
    const check = await checkInterpreter(python);
    if (!check.ok) {
      void reportUnusableInterpreter(python, check, this.settings.installSource, this.log);
      return undefined;
    }
    const serverOptions: ServerOptions = {
      command: python,
      args: ['-m', 'memlens', 'serve'],
      // No `transport`: TransportKind.stdio would append --stdio, which `memlens serve` does not
      // take (stdio is its default).
      options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
    };
    const lenses = new LensesFirst();
    const clientOptions: LanguageClientOptions = {
      // notebook cells too: the server shows a profiled notebook's numbers on its cells
      documentSelector: [
        { scheme: 'file', language: 'python' },
        { notebook: '*', language: 'python' },
      ],
      // vscode-languageclient >= 10 calls .info/.error on it, so it must be a log channel.
      outputChannel: this.log,
      initializationOptions: serverSettings(this.settings, python),
      middleware: lenses.middleware,
    };
    const client = new LanguageClient('memlens', 'Memlens', serverOptions, clientOptions);
    const handlers = [
      client.onNotification(didUpdate, (params: DidUpdateParams) => this.updates.fire(params)),
      client.onDidChangeState((event) => {
        if (event.newState === State.Stopped && this.client === client) {
          void vscode.commands.executeCommand('setContext', 'memlens.hasResults', false);
        }
      }),
    ];
    try {
      await client.start();
    } catch (error) {
      this.log.error(`server failed to start: ${String(error)}`);
      // The log says why (the server's stderr is in it); show it too, as a notification raised
      // while the workbench starts can land silently in the notification center.
      this.log.show(true);
      void vscode.window.showErrorMessage(
        `memlens: the server (${python} -m memlens serve) failed to start: ${String(error)}`,
      );
      // Not awaited: disposing a client whose start failed can wait on a dead connection.
      client.dispose(2_000).catch(() => undefined);
      for (const handler of handlers) handler.dispose();
      return undefined;
    }
    // A client that died by itself (not through stop()) leaves its handlers here.
    for (const handler of this.clientHandlers) handler.dispose();
    // After start: the client's own progress and lens refresh handlers, registered while it
    // starts, are replaced.
    this.clientHandlers = [...handlers, showServerProgress(client), lenses.attach(client)];
    this.client = client;
    this.python = python;
    return client;
  }

  async restart(): Promise<void> {
    await this.stop();
    this.updates.fire({ final: true, summary: null, peakText: null, leakText: null });
    await this.ensureClient();
  }

  async stop(): Promise<void> {
    await this.starting;
    const client = this.client;
    const handlers = this.clientHandlers;
    this.client = undefined;
    this.clientHandlers = [];
    if (client) await client.dispose(2_000).catch((error) => this.log.warn(`stopping the server: ${String(error)}`));
    for (const handler of handlers) handler.dispose();
  }

  /** A custom request, or undefined when no server runs (nothing to show). */
  async request<P, R>(type: RequestType<P, R, void>, params: P): Promise<R | undefined> {
    const client = this.client?.isRunning() ? this.client : undefined;
    if (!client) return undefined;
    return client.sendRequest(type.method, params); // its answer is R: `type` says so
  }

  /** `workspace/executeCommand` with the single-object argument the server expects. */
  async execute<P, R>(type: CommandType<P, R>, argument: P, token?: vscode.CancellationToken): Promise<R | undefined> {
    const client = await this.ensureClient();
    if (!client) return undefined;
    const params = { command: type.command, arguments: [argument] };
    return (await client.sendRequest(ExecuteCommandRequest.type, params, token)) as R;
  }

  get running(): boolean {
    return this.client?.isRunning() ?? false;
  }

  dispose(): void {
    void this.stop();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
