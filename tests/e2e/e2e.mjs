// End-to-end test of the memlens extension in a real VS Code (code-server), driven through Debian's
// headless chromium with playwright-core. Everything is asserted from the DOM, as a user sees it.
// Usage: E2E_PYTHON=<python with memlens> node e2e.mjs <baseUrl> <workspaceDir> <artifactsDir>
// Exit 0 = passed; writes screenshots and results.json into artifactsDir.
import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [BASE, WS, OUT] = process.argv.slice(2);
const PYTHON = process.env.E2E_PYTHON; // memlens.python: runs the process the test attaches to
if (!OUT || !PYTHON) {
  console.error('usage: E2E_PYTHON=<python with memlens> node e2e.mjs <baseUrl> <workspaceDir> <artifactsDir>');
  process.exit(2);
}
const STEP_MS = Number(process.env.E2E_STEP_MS || 45_000); // bound for every single wait
const TOTAL_MS = 200_000; // hard bound for the whole run
// The fixture's known facts: alloc.py holds 50 MiB at the peak, allocated on line 6 in hold().
const SCRIPT = 'alloc.py';
const ALLOC_LINE = 6; // 1-based, as the status bar shows it
const CALLER_LINE = 11; // the module-level call of hold()
const PEAK_TEXT = '50.0 MiB';
fs.mkdirSync(OUT, { recursive: true });
// A run whose line 8 grows across checkpoints: a lens left from a checkpoint would show a total
// for work() below its own line's final total.
const GROWS = `import time


def work():  # line 4
    chunks = []
    for _ in range(30):
        time.sleep(0.1)
        chunks.append(bytearray(2**20))  # line 8: 30 MiB by the end, 10-20 MiB at checkpoints
    return chunks


kept = work()
`;
fs.writeFileSync(path.join(WS, 'grows.py'), GROWS);

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const killer = setTimeout(() => {
  console.error('E2E TOTAL TIMEOUT');
  process.exit(3);
}, TOTAL_MS);

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'memlens-e2e-chromium-'));
// Playwright refuses --user-data-dir in args; a persistent context takes the fresh dir instead.
const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const results = {};
let ok = false;
let page;

const failures = [];
/** Runs one group of checks; a failure is recorded (with a screenshot) and the run goes on. */
async function step(name, body) {
  log(`== ${name}`);
  try {
    await body();
    log(`== ${name}: passed`);
  } catch (e) {
    const shot = `failure-${failures.length + 1}.png`;
    failures.push({ step: name, error: e.message.split('\n')[0], screenshot: shot });
    log(`== ${name}: FAILED: ${e.message.split('\n')[0]}`);
    await page.screenshot({ path: path.join(OUT, shot) }).catch(() => {});
    await page.keyboard.press('Escape').catch(() => {});
  }
}

async function until(what, probe, timeout = STEP_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(250);
  }
}

/** Runs a palette command by its exact title (category included). */
async function runCommand(title) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row').filter({
    has: page.locator('.label-name', { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }),
  });
  await row.first().waitFor();
  await row.first().click();
  log('ran command:', title);
}

async function openFile(name) {
  await page.keyboard.press('Escape');
  const tab = page.locator('.tabs-container .tab', { hasText: name });
  if (await tab.count()) {
    await tab.first().click(); // already open: its tab (Quick Open may target another group)
    await page.locator('.tab.active', { hasText: name }).first().waitFor();
    log('switched to', name);
    return;
  }
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(name);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tab.active', { hasText: name }).waitFor();
  await page.locator('.monaco-editor .view-lines').first().waitFor();
  log('opened', name);
}

/** In the page: the text a rendered line shows, with inlay hints and `after` decorations (CSS content). */
function defineShownText() {
  window.memlensShownText = (line) => {
    let text = '';
    for (const span of line.querySelectorAll('span')) {
      for (const pseudo of ['::before', '::after']) {
        const c = getComputedStyle(span, pseudo).content;
        if (c && c !== 'none' && c !== 'normal' && c !== '""') text += c.replace(/^"|"$/g, '');
      }
      if (!span.children.length) text += span.textContent;
    }
    return text.replace(/\u00a0/g, ' ');
  };
}

/** Texts of the active editor's lines by 1-based number, with inlay hints and `after` decorations. */
function editorLines() {
  return page.evaluate(() => {
    const editor = document.querySelector('.editor-group-container.active .monaco-editor') || document.querySelector('.monaco-editor');
    if (!editor) return {};
    const numbers = new Map();
    for (const el of editor.querySelectorAll('.margin-view-overlays .line-numbers')) numbers.set(el.parentElement.style.top || el.style.top, el.textContent.trim());
    const lines = {};
    for (const line of editor.querySelectorAll('.view-lines .view-line')) {
      const number = numbers.get(line.style.top);
      if (number) lines[number] = window.memlensShownText(line);
    }
    return lines;
  });
}

/** Texts of every line of the notebook's cell editors. */
function notebookLines() {
  return page.evaluate(() =>
    [...document.querySelectorAll('.notebook-editor .monaco-editor .view-line')].map((line) => window.memlensShownText(line)),
  );
}

async function notification(pattern) {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: pattern });
  await toast.first().waitFor();
  return toast.first();
}

/** The cursor's 1-based line from the status bar, or undefined when no text editor is active. */
async function statusBarLine() {
  const text = await page.evaluate(() => document.getElementById('status.editor.selection')?.textContent ?? '');
  const match = /Ln (\d+)/.exec(text);
  return match ? Number(match[1]) : undefined;
}

try {
  const blocked = [];
  await context.route(
    (url) => !['127.0.0.1', 'localhost'].includes(url.hostname) && url.protocol.startsWith('http'),
    (route) => {
      blocked.push(route.request().url());
      return route.abort();
    },
  );
  page = context.pages()[0] || (await context.newPage());
  await page.addInitScript(defineShownText);
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => log('pageerror:', e.message));

  await page.goto(`${BASE}/?folder=${encodeURIComponent(WS)}`, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor();
  await page.locator('.statusbar').waitFor();
  log('workbench loaded');

  // Three independent groups: a failure in one is reported and the next still runs, so one
  // run shows everything that is broken. Each group stops at its own first failure.
  await step('profile alloc.py and check every annotation', async () => {
    // 1. Profile the fixture from the palette.
    await openFile(SCRIPT);
    await page.keyboard.press('Control+Home');
    await runCommand('Memlens: Profile memory');

    // 2. The inlay hint at the end of the allocating line, with the right MiB.
    const lines = await until(`"${PEAK_TEXT}" at the end of line ${ALLOC_LINE}`, async () => {
      const all = await editorLines();
      return all[ALLOC_LINE]?.includes(PEAK_TEXT) ? all : undefined;
    });
    results.inlayLine = lines[ALLOC_LINE];
    results.linesWithPeak = Object.keys(lines).filter((n) => lines[n].includes(PEAK_TEXT)).map(Number);
    log(`line ${ALLOC_LINE}:`, JSON.stringify(lines[ALLOC_LINE]));
    if (lines[ALLOC_LINE - 1]?.includes('MiB')) throw new Error(`line ${ALLOC_LINE - 1} (a comment) is annotated too`);

    // 3. The code lens.
    const lens = page.locator('.monaco-editor .codelens-decoration', { hasText: /MiB/ });
    await lens.first().waitFor();
    results.codeLenses = (await lens.allInnerTexts()).map((t) => t.trim());
    log('code lenses:', JSON.stringify(results.codeLenses));

    // 4. Heat: the allocating line has a heat background (a whole-line decoration in the overlays).
    results.heatLines = await until(`heat on line ${ALLOC_LINE}`, async () => {
      const hot = await page.evaluate(() => {
        const editor = document.querySelector('.editor-group-container.active .monaco-editor');
        const numbers = new Map();
        for (const el of editor.querySelectorAll('.margin-view-overlays .line-numbers')) numbers.set(el.parentElement.style.top, Number(el.textContent.trim()));
        return [...editor.querySelectorAll('.view-overlays > div')]
          .filter((line) => line.querySelector('[class*="ced-"]'))
          .map((line) => numbers.get(line.style.top));
      });
      return hot.includes(ALLOC_LINE) ? hot : undefined;
    });
    log('heat on lines:', JSON.stringify(results.heatLines));

    // 5. The status bar shows the run's peak.
    const peakItem = page.locator('.statusbar-item', { hasText: `${PEAK_TEXT} peak` });
    await peakItem.first().waitFor();
    log('status bar: peak shown');

    // 6. The diagnostic in the Problems panel.
    await page.keyboard.press('Control+Shift+M');
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: PEAK_TEXT });
    await problem.first().waitFor();
    results.problem = (await problem.first().innerText()).replace(/\s+/g, ' ').trim();
    log('problems panel:', results.problem);
    if (!results.problem.includes(`Ln ${ALLOC_LINE}`)) throw new Error(`the diagnostic is not on line ${ALLOC_LINE}`);

    await page.keyboard.press('Control+1');
    await page.keyboard.press('Control+Home');
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(OUT, 'annotated-editor.png') });

    // 7. The Hotspots tree: clicking the top line moves the cursor there.
    await page.keyboard.press('Control+End');
    const before = await statusBarLine();
    await runCommand('Memlens: Focus on Hotspots View');
    const item = page.locator('.monaco-list-row', { hasText: `${SCRIPT}:${ALLOC_LINE}` }).filter({ hasText: PEAK_TEXT });
    await item.first().waitFor();
    results.hotspot = (await item.first().innerText()).replace(/\s+/g, ' ').trim();
    log('hotspot item:', results.hotspot);
    await item.first().click();
    const after = await until(`cursor on Ln ${ALLOC_LINE}`, async () => ((await statusBarLine()) === ALLOC_LINE ? ALLOC_LINE : undefined));
    results.hotspotClick = { before, after };
    log(`hotspot click moved the cursor: Ln ${before} -> Ln ${after}`);
    await page.screenshot({ path: path.join(OUT, 'hotspots.png') });

    // 8. Show peak stack for the cursor's line: a quick pick of frames; picking the caller opens it.
    await runCommand('Memlens: Show peak stack');
    const frames = page.locator('.quick-input-list .monaco-list-row');
    await frames.filter({ hasText: 'hold' }).first().waitFor();
    results.peakStack = (await frames.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
    log('peak stack:', JSON.stringify(results.peakStack));
    await frames.filter({ hasText: '<module>' }).first().click();
    await until(`cursor on Ln ${CALLER_LINE}`, async () => (await statusBarLine()) === CALLER_LINE);
    log(`peak stack frame opened Ln ${CALLER_LINE}`);

    // 9. The flame graph, opened from the status bar item; clicking hold()'s allocating line
    // (boxes show their source text) opens it.
    await peakItem.first().click();
    await page.locator('.tab', { hasText: 'flame graph' }).first().waitFor();
    await page.locator('iframe.webview').first().waitFor({ state: 'attached' });
    const flame = await until('the flame graph page with hold()\'s line', async () => {
      for (const frame of page.frames()) {
        const count = await frame.locator('#flame .frame', { hasText: 'bytearray(50' }).count().catch(() => 0);
        if (count) return frame;
      }
      return undefined;
    });
    results.flameGraphFrames = (await flame.locator('#flame .frame').allInnerTexts()).slice(0, 6);
    log('flame graph frames:', JSON.stringify(results.flameGraphFrames));
    await page.screenshot({ path: path.join(OUT, 'flame-graph.png') });
    await flame.locator('#flame .frame', { hasText: 'bytearray(50' }).first().click();
    await until(`flame graph click opens Ln ${ALLOC_LINE}`, async () => (await statusBarLine()) === ALLOC_LINE);
    log(`flame graph click opened Ln ${ALLOC_LINE}`);

  });

  await step('syntax error', async () => {
    // 10. A script with a syntax error: the message naming it, and no annotation in it. The
    // server may keep the last good run's annotations on alloc.py (they are still true) or clear
    // them; either is recorded, and neither may be shown on the broken file.
    await page.keyboard.press('Control+1');
    await openFile('broken.py');
    await runCommand('Memlens: Profile memory');
    const failure = await notification(/SyntaxError/);
    results.syntaxErrorMessage = (await failure.innerText()).replace(/\s+/g, ' ').trim();
    log('syntax error message:', results.syntaxErrorMessage);
    if (!/broken\.py:4/.test(results.syntaxErrorMessage)) throw new Error('the message does not name broken.py:4');
    await page.waitForTimeout(1500);
    const stale = Object.values(await editorLines()).filter((text) => text.includes('MiB'));
    if (stale.length) throw new Error(`annotations on the broken file: ${JSON.stringify(stale)}`);
    await openFile(SCRIPT);
    await page.waitForTimeout(1500);
    results.allocAnnotationsAfterFailedRun = Object.values(await editorLines()).filter((text) => text.includes('MiB'));
    log('no stale annotations; alloc.py after the failed run:', JSON.stringify(results.allocAnnotationsAfterFailedRun));
  });

  await step('clear', async () => {
    // 11. Clear removes everything: inline text, heat, the status bar peak.
    await openFile(SCRIPT);
    await runCommand('Memlens: Clear');
    await until('no peak in the status bar', async () => (await page.locator('.statusbar-item', { hasText: 'peak' }).count()) === 0);
    await until('no inline MiB', async () => !Object.values(await editorLines()).some((text) => text.includes('MiB')));
    await until('no heat', () =>
      page.evaluate(() => !document.querySelector('.editor-group-container.active .monaco-editor .view-overlays [class*="ced-"]')),
    );
    log('clear removed the inline text, the heat and the status bar peak');
  });

  await step('live view and cancel', async () => {
    // 12. A long run: its checkpoints annotate the editor while it runs, and Cancel on the
    // progress notification stops it (the script and its process group are gone).
    await openFile('slow.py');
    await runCommand('Memlens: Profile memory');
    const progress = await notification('slow.py');
    const live = await until('live "20.0 MiB" on line 4 while the run goes on', async () => {
      const text = (await editorLines())[4];
      return text?.includes('20.0 MiB') ? text : undefined;
    });
    log('live annotation:', JSON.stringify(live));
    await progress.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
    await until('the profile to end', async () => (await page.locator('.notifications-toasts .notification-toast', { hasText: 'slow.py' }).count()) === 0);
    await until('the script to be killed', () => {
      try {
        execFileSync('pgrep', ['-f', `${WS}/slow.py`]);
        return false;
      } catch {
        return true; // pgrep exits 1 when nothing matches
      }
    });
    log('cancel stopped slow.py');
  });

  await step('final numbers at once', async () => {
    // 13. When a run ends, the lens on work() and the inline text of its lines show the final
    // numbers together: a function's total is never below one of its lines' totals.
    await openFile('grows.py');
    await runCommand('Memlens: Profile memory');
    await page.locator('.statusbar-item', { hasText: '30.0 MiB peak' }).first().waitFor();
    await until('the run to end', async () => (await page.locator('.notifications-toasts .notification-toast', { hasText: 'grows.py' }).count()) === 0);
    const ended = Date.now();
    const sigma = (text) => {
      const match = /Σ ([\d.]+) (B|KiB|MiB|GiB)/.exec(text ?? '');
      return match ? Number(match[1]) * { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 }[match[2]] : undefined;
    };
    // Polled every 50 ms (not until()'s 250 ms) so that a short mismatch is seen too.
    let mismatchMs = 0;
    let last = Date.now();
    let final;
    while (!final) {
      if (Date.now() - ended > 3_000) throw new Error('the lens of work() and line 8 do not show "Σ 30.0 MiB" 3 s after the run');
      const lens = (await page.locator('.monaco-editor .codelens-decoration', { hasText: 'Σ' }).allInnerTexts()).map((t) => t.trim());
      const lines = await editorLines();
      const now = Date.now();
      const body = [5, 6, 7, 8, 9].map((n) => sigma(lines[n])).filter((v) => v !== undefined);
      if (lens.length === 1 && body.some((v) => v > sigma(lens[0]))) mismatchMs += now - last;
      last = now;
      if (lens.length === 1 && lens[0].includes('Σ 30.0 MiB') && lines[8]?.includes('Σ 30.0 MiB')) final = { lens: lens[0], line8: lines[8] };
      else await page.waitForTimeout(50);
    }
    results.finalAtOnce = { ...final, lagMs: Date.now() - ended, lensBelowLineMs: mismatchMs };
    log('final numbers:', JSON.stringify(results.finalAtOnce));
    if (mismatchMs > 0) throw new Error(`the lens of work() was below one of its lines' totals for ${mismatchMs} ms after the run`);
  });

  await step('a file outside the workspace asks first', async () => {
    // 14. Profiling a file outside the workspace folders asks (modal); "Profile anyway" runs it.
    const outside = path.join(path.dirname(WS), 'outside.py');
    fs.writeFileSync(outside, 'held = bytearray(7 * 2**20)\n');
    await runCommand('File: Open File...');
    // code-server's own file dialog: once it lists the workspace, type the path over it
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'alloc.py' }).first().waitFor();
    const input = page.locator('.quick-input-widget input');
    await input.fill(outside);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'outside.py' }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: 'outside.py' }).waitFor();
    await runCommand('Memlens: Profile memory');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor();
    results.outsideQuestion = (await dialog.innerText()).replace(/\s+/g, ' ').trim();
    log('question:', results.outsideQuestion);
    const expected = `${fs.realpathSync(outside)} is outside the workspace folders. Profiling runs it. Profile anyway?`;
    if (!results.outsideQuestion.includes(expected)) throw new Error(`the question does not say "${expected}"`);
    await dialog.locator('.monaco-button', { hasText: 'Profile anyway' }).first().click();
    await page.locator('.statusbar-item', { hasText: '7.0 MiB peak' }).first().waitFor();
    log('profiled the file outside the workspace after the question');
  });

  await step('profile this test from its lens', async () => {
    // 16. The "Profile this test" lens over a pytest test runs that one test under the plugin;
    // its allocating line shows the test's numbers and the lens its peak.
    await openFile('test_memory.py');
    const lens = page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Profile this test' });
    await lens.first().click();
    const line = await until('"12.0 MiB" on line 5 of the test', async () => {
      const text = (await editorLines())[5];
      return text?.includes('12.0 MiB') ? text : undefined;
    });
    const verdict = page.locator('.monaco-editor .codelens-decoration', { hasText: 'peak 12.0 MiB' });
    await verdict.first().waitFor();
    await page.locator('.statusbar-item', { hasText: '12.0 MiB peak' }).first().waitFor();
    results.testLens = { line5: line, lenses: (await page.locator('.monaco-editor .codelens-decoration').allInnerTexts()).map((t) => t.trim()) };
    log('profile this test:', JSON.stringify(results.testLens));
  });

  await step('attach to a running process, then detach', async () => {
    // 17. "Attach to process…" on a Python program that allocates in a loop: live annotations
    // and the running heap while attached; "Detach" shows the final capture, the program goes on.
    const target = spawn(PYTHON, [path.join(WS, 'attach_target.py')], { stdio: 'ignore' });
    try {
      await openFile('attach_target.py');
      await runCommand('Memlens: Attach to process…');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill(String(target.pid));
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'attach_target.py' });
      await row.first().waitFor();
      await row.first().click();
      const live = await until('a live annotation on line 6', async () => {
        const text = (await editorLines())[6];
        return text?.includes('MiB') ? text : undefined;
      });
      await page.locator('.statusbar-item', { hasText: 'peak (running)' }).first().waitFor();
      log('attached, live:', JSON.stringify(live));
      await runCommand('Memlens: Detach');
      const detached = page.locator('.statusbar-item', { hasText: 'memlens: detached; peak' });
      await detached.first().waitFor();
      await until('the final peak in the status bar', async () => {
        const items = await page.locator('.statusbar-item', { hasText: / peak$/ }).allInnerTexts();
        return items.some((text) => !text.includes('running'));
      });
      const final = (await editorLines())[6];
      if (!final?.includes('MiB')) throw new Error(`line 6 lost its annotation after detach: ${JSON.stringify(final)}`);
      if (target.exitCode !== null) throw new Error(`the attached program ended (exit ${target.exitCode})`);
      results.attach = { live, final, detached: (await detached.first().innerText()).trim() };
      log('detached:', JSON.stringify(results.attach));
    } finally {
      target.kill('SIGKILL');
    }
  });

  await step('profile a notebook', async () => {
    // 16b. A Jupyter notebook: Profile notebook runs its code cells as one program and the
    // numbers land on the cells' own lines (a magic line above the allocation keeps its place).
    await openFile('cells.ipynb');
    await page.locator('.notebook-editor .monaco-editor .view-lines').first().waitFor();
    await runCommand('Memlens: Profile notebook');
    const cellLine = await until('"▲ 9.0 MiB" on the allocating cell line', async () =>
      (await notebookLines()).find((text) => text.startsWith('big = bytearray') && text.includes('▲ 9.0 MiB')),
    );
    results.notebookLine = cellLine;
    log('notebook cell line:', JSON.stringify(cellLine));
    await page.locator('.statusbar-item', { hasText: '9.0 MiB peak' }).first().waitFor();
  });

  await step('wrong interpreter', async () => {
    // 15. A wrong interpreter: the notification that offers to install memlens.
    // Workspace settings: code-server notices edits of this file (not of the user settings file).
    fs.mkdirSync(path.join(WS, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(WS, '.vscode', 'settings.json'), JSON.stringify({ 'memlens.python': '/usr/bin/python3' }));
    const missing = await notification('memlens is not installed in /usr/bin/python3');
    await missing.locator('.monaco-button', { hasText: 'Install' }).first().waitFor();
    results.wrongInterpreterMessage = (await missing.innerText()).replace(/\s+/g, ' ').trim();
    log('wrong interpreter:', results.wrongInterpreterMessage);
    await page.screenshot({ path: path.join(OUT, 'wrong-interpreter.png') });

  });

  results.blockedRequests = blocked;
  if (blocked.length) log('blocked non-loopback requests:', blocked.length, blocked.slice(0, 5));
  ok = failures.length === 0;
} catch (e) {
  log('FAIL:', e.message);
  results.error = e.message;
  if (page) await page.screenshot({ path: path.join(OUT, 'failure.png') }).catch(() => {});
} finally {
  await context.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
  clearTimeout(killer);
}
fs.writeFileSync(
  path.join(OUT, 'results.json'),
  JSON.stringify({ ok, seconds: (Date.now() - t0) / 1000, failures, ...results }, null, 2),
);
for (const failure of failures) log(`FAILED ${failure.step}: ${failure.error} (${failure.screenshot})`);
log(ok ? 'E2E PASSED' : 'E2E FAILED');
process.exit(ok ? 0 : 1);
