// "Profile this test" (the lens on each pytest test, from the server): saves the file, asks the
// server to run that one test under the memlens pytest plugin, and reports how it went. The
// test's lines are shown like any profile's (memlens/didUpdate drives the annotations, the heat
// and the status bar); pytest's own output is in the Memlens output channel.

import * as vscode from 'vscode';
import { allowedToRun } from './commands';
import type { Memlens } from './context';
import { confirmationPath, profileTest } from './protocol';
import { testOutcome, testTarget, type ProfileTestResult, type TestTarget } from './testResult';

export function profileThisTest(memlens: Memlens) {
  return async (argument?: unknown): Promise<void> => {
    const target = testTarget(argument);
    if (!target) {
      void vscode.window.showWarningMessage('memlens: use the "Profile this test" lens above a test function.');
      return;
    }
    // Run what the user sees, not the file on disk from before their last edit.
    const open = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === target.uri);
    if (open?.isDirty) await open.save();
    if (!(await memlens.ensureClient())) return;
    memlens.log.info(`profiling test ${target.test} of ${vscode.Uri.parse(target.uri).fsPath}`);
    const result = await runTest(memlens, target, false);
    if (!result) return; // the server has said why (window/showMessage)
    const outcome = testOutcome(result);
    void vscode.window.setStatusBarMessage(outcome.text, 10_000);
    if (outcome.level === 'info') {
      memlens.log.info(outcome.text);
      return;
    }
    memlens.log.error(outcome.text);
    memlens.log.show(true); // pytest's report of the failure is there
  };
}

async function runTest(memlens: Memlens, target: TestTarget, confirmed: boolean): Promise<ProfileTestResult | undefined> {
  try {
    return (await memlens.execute(profileTest, { ...target, confirmed })) ?? undefined;
  } catch (error) {
    const outside = confirmed ? undefined : confirmationPath(error);
    if (outside !== undefined) return (await allowedToRun(memlens, outside)) ? runTest(memlens, target, true) : undefined;
    memlens.log.error(`profiling test ${target.test} failed: ${String(error)}`);
    void vscode.window.showErrorMessage(`memlens: profiling test ${target.test} failed: ${String(error)}`);
    return undefined;
  }
}
