// Server-created work-done progress (the profile run) as a cancellable notification. The language
// client's own handler shows it in the status bar, where it cannot be cancelled; this one replaces
// it, and Cancel sends window/workDoneProgress/cancel, on which the server kills the run.

import * as vscode from 'vscode';
import {
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type LanguageClient,
} from 'vscode-languageclient/node';

export function showServerProgress(client: LanguageClient): vscode.Disposable {
  return client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    let report: (message: string) => void = () => undefined;
    let finish: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => (finish = resolve));
    const listener = client.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === 'begin') {
        void vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: value.title, cancellable: value.cancellable ?? false },
          (progress, cancellation) => {
            report = (message) => progress.report({ message });
            if (value.message) report(value.message);
            cancellation.onCancellationRequested(() => {
              void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
            });
            return ended;
          },
        );
      } else if (value.kind === 'report') {
        if (value.message) report(value.message);
      } else {
        finish();
        listener.dispose();
      }
    });
  });
}
