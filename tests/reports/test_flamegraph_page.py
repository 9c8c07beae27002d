"""The flame graph page in Debian's headless Chromium, driven by playwright (no browser download):
it renders without console errors, frames post {file, line} when clicked, search highlights,
toggles and zoom work, and names from the profiled program never execute."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from synthetic import BOOT, LOAD, MAIN, PARSE, build, values

from memlens.model import Profile
from memlens.reports import flamegraph

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Debian's chromium is not installed: run `bash scripts/ensure-chromium.sh` (CI does)",
)
MIB = 2**20
XSS_FUNCTION = "<img src=x onerror=alert(1)>"
XSS_FILE = "</script><script>alert(2)</script>"
# a library frame whose file does not exist here, so boxes show its name, not its source
JSON = ("decode", "/opt/nowhere/lib/python3.11/json/decoder.py", 353, 340)


def probe_profile() -> Profile:
    return build(
        [
            ([MAIN, LOAD, PARSE], values(peak=6 * MIB, count=3)),
            ([MAIN, LOAD], values(peak=2 * MIB, count=2)),
            ([MAIN, JSON], values(peak=1 * MIB, count=100)),
            ([MAIN, BOOT], values(peak=512 * 1024, count=7)),
            ([MAIN, (XSS_FUNCTION, XSS_FILE, 66, 60)], values(peak=MIB, count=1)),
        ]
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Page:
    """A page with every console error, page error and dialog recorded."""

    def __init__(self, browser: Any, html: str, folder: Path, **context: Any) -> None:
        path = folder / "flame.html"
        path.write_text(html, encoding="utf-8")
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 800}, **context)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.add_init_script(
            """
            window.__opened = [];
            window.__messages = [];
            document.addEventListener("memlens-open", (e) => window.__opened.push(e.detail));
            window.addEventListener("message", (e) => window.__messages.push(e.data));
            """
        )
        self.page.goto(path.as_uri())
        self.page.wait_for_selector(".frame")

    def frame(self, text: str) -> Any:
        return self.page.locator(".frame", has_text=text).first

    def names(self) -> list[str]:
        return self.page.eval_on_selector_all(".frame", "els => els.map(e => e.textContent)")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Page]:
    opened = Page(browser, flamegraph.render(probe_profile()), tmp_path)
    yield opened
    opened.close()


def test_renders_without_errors(page: Page) -> None:
    assert page.names()[:3] == ["all: memory at the peak", "<module>", "load"]
    assert page.page.locator("#timeline polyline").count() == 2
    assert "peak 10.5 MiB at 0.50 s" in page.page.locator("#timeline").text_content()
    assert page.errors == []


def test_click_posts_file_and_line_and_zooms(page: Page) -> None:
    page.frame("parse").click()
    page.page.wait_for_function("() => window.__messages.length > 0")
    expected = {"type": "open", "file": "/app/lib.py", "line": 20}
    assert page.page.evaluate("window.__opened") == [expected]
    assert page.page.evaluate("window.__messages") == [expected]
    # zoomed: parse now spans the whole width
    width = page.page.evaluate("document.getElementById('flame').clientWidth")
    assert page.frame("parse").bounding_box()["width"] == pytest.approx(width, abs=1)
    page.page.click("#reset-zoom")
    assert page.frame("parse").bounding_box()["width"] < width * 0.7
    assert page.errors == []


def test_tooltip(page: Page) -> None:
    page.frame("parse").hover()
    tooltip = page.page.locator("#tooltip")
    assert tooltip.is_visible()
    text = tooltip.text_content()
    assert "/app/lib.py:20" in text and "6.0 MiB in 3 allocations" in text
    assert "57.1% of memory at the peak" in text  # 6 of 10.5 MiB


def test_search_highlights(page: Page) -> None:
    page.page.fill("#search", "PARS")
    matches = page.page.eval_on_selector_all(".frame.match", "els => els.map(e => e.textContent)")
    assert matches == ["parse"]
    assert page.page.text_content("#match") == "1 matching frame"
    page.page.fill("#search", "/app/")  # file names match too
    assert page.page.locator(".frame.match").count() == 3
    page.page.fill("#search", "")
    assert page.page.locator(".frame.match").count() == 0


def test_toggles(page: Page) -> None:
    assert "_find_and_load" in page.names() and "decode" in page.names()
    page.page.check("#hide-import")
    assert "_find_and_load" not in page.names() and "decode" in page.names()
    page.page.check("#only-mine")
    assert "decode" not in page.names() and "parse" in page.names()
    page.page.uncheck("#only-mine")
    page.page.uncheck("#hide-import")
    page.page.check("#inverted")
    names = page.names()
    # inverted: allocating functions right under the root, their callers below
    assert names[1] == "parse" and names[2] == "load"
    assert page.errors == []


def test_untrusted_names_render_as_text(page: Page) -> None:
    probe = page.frame("onerror")
    assert probe.text_content() == XSS_FUNCTION
    probe.hover()
    assert XSS_FILE + ":66" in page.page.locator("#tooltip").text_content()
    probe.click()
    page.page.fill("#search", "script")
    page.page.wait_for_timeout(200)
    assert page.page.locator("img").count() == 0
    assert page.page.evaluate("window.__opened")[-1]["file"] == XSS_FILE
    assert page.dialogs == []
    assert page.errors == []


def test_nonce_page_and_dark_theme(browser: Any, tmp_path: Path) -> None:
    html = flamegraph.render(probe_profile(), nonce="bm9uY2UxMjM=", csp_source="'self'")
    opened = Page(browser, html, tmp_path, color_scheme="dark")
    try:
        assert opened.errors == []
        background = opened.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        opened.page.evaluate("document.body.classList.add('vscode-light')")
        background = opened.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(255, 255, 255)"
    finally:
        opened.close()


def test_scripts_blocked_by_csp_are_reported(browser: Any, tmp_path: Path) -> None:
    # the hash CSP is really enforced: an injected inline script does not run
    html = flamegraph.render(probe_profile()).replace(
        "</body>", "<script>document.title = 'injected'</script></body>"
    )
    opened = Page(browser, html, tmp_path)
    try:
        assert opened.page.title() != "injected"
        assert any("Content Security Policy" in e for e in opened.errors)
    finally:
        opened.close()


@pytest.mark.slow
def test_100k_stack_page_draws(browser: Any, tmp_path: Path) -> None:
    from synthetic import many_stacks

    from memlens import capture

    profile = capture.from_dict(many_stacks(100_000))
    opened = Page(browser, flamegraph.render(profile), tmp_path)
    try:
        drawn = opened.page.locator(".frame").count()
        assert 100 < drawn < 5000
        assert "merged into" in opened.page.text_content("#merged-note")
        opened.page.check("#inverted")
        opened.page.fill("#search", "function_1")
        assert opened.page.locator(".frame.match").count() > 0
        assert opened.errors == []
    finally:
        opened.close()


def test_empty_capture_page(browser: Any, tmp_path: Path) -> None:
    empty = build([], timeline=([], [], []))
    opened = Page(browser, flamegraph.render(empty), tmp_path)
    try:
        assert opened.names() == ["all: memory at the peak"]
        assert "no timeline samples" in opened.page.text_content("#timeline")
        opened.frame("all").click()
        assert opened.page.evaluate("window.__opened") == []  # the root opens no file
        assert opened.errors == []
    finally:
        opened.close()
