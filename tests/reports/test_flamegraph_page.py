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


# ---- source labels, import hiding, only my code, orientation, memory graph, stats --------------

APP_SOURCE = "import pkg\n\ndef work():\n    c = a + b\n    return c\n\nwork()\n"
SITE = "/opt/venv/lib/python3.11/site-packages"


def import_profile(folder: Path) -> Profile:
    """app.py line 1 imports pkg (3 MiB through importlib and pkg's own code, inspect.cleandoc
    among it); line 7 calls work, whose line 4 allocates 1 MiB itself and 2 MiB in 400 small
    library calls (each under the page's merging threshold)."""
    app = folder / "app.py"
    app.write_text(APP_SOURCE)
    top = ("<module>", str(app), 1, 1)
    call = ("<module>", str(app), 7, 1)
    work = ("work", str(app), 4, 3)
    boot = [
        ("_find_and_load", "<frozen importlib._bootstrap>", 1178, 1165),
        ("exec_module", "<frozen importlib._bootstrap_external>", 940, 935),
        ("<module>", f"{SITE}/pkg/__init__.py", 12, 1),
        ("cleandoc", "/opt/nowhere/lib/python3.11/inspect.py", 870, 850),
    ]
    small = [
        ([call, work, ("helper", f"{SITE}/lib{i}/core.py", 5, 1)], values(peak=2 * MIB // 400))
        for i in range(400)
    ]
    return build(
        [
            ([top, *boot], values(peak=3 * MIB, count=40)),
            ([call, work], values(peak=MIB, count=1)),
            *small,
        ],
        peak_ns=1_990_000_000,
        timeline=(
            list(range(0, 2001, 10)),
            [i * 5000 for i in range(201)],
            [i * 9000 for i in range(201)],
        ),
    )


@pytest.fixture
def import_page(browser: Any, tmp_path: Path) -> Iterator[Page]:
    opened = Page(browser, flamegraph.render(import_profile(tmp_path)), tmp_path)
    yield opened
    opened.close()


def test_boxes_show_the_source_line(import_page: Page, tmp_path: Path) -> None:
    names = import_page.names()
    assert names[:3] == ["all: memory at the peak", "import pkg", "_find_and_load"]
    assert "c = a + b" in names and "work()" in names
    assert "cleandoc" in names  # no such file here: the function's name
    import_page.frame("c = a + b").hover()
    tooltip = import_page.page.locator("#tooltip").text_content()
    assert tooltip.startswith("work" + str(tmp_path / "app.py") + ":4" + "c = a + b")
    import_page.page.fill("#search", "a + b")  # search looks at the source text too
    assert import_page.page.locator(".frame.match").count() == 1
    assert import_page.errors == []


def test_hide_import_frames_charges_the_import_line(import_page: Page) -> None:
    import_page.page.check("#hide-import")
    names = import_page.names()
    assert "import pkg" in names
    for machinery in ("_find_and_load", "exec_module", "cleandoc", "<module>"):
        assert machinery not in names
    width = import_page.page.evaluate("document.getElementById('flame').clientWidth")
    box = import_page.frame("import pkg").bounding_box()
    assert box["width"] == pytest.approx(width * 0.5, abs=2)  # 3 of 6 MiB
    import_page.frame("import pkg").hover()
    assert "3.0 MiB in 40 allocations" in import_page.page.text_content("#tooltip")
    assert import_page.errors == []


def test_only_my_code_merges_library_frames_into_the_callers_line(import_page: Page) -> None:
    assert any(n.startswith("(") for n in import_page.names())  # the 400 slivers, merged
    import_page.page.check("#only-mine")
    names = import_page.names()
    assert sorted(names) == sorted(["all: memory at the peak", "import pkg", "work()", "c = a + b"])
    import_page.frame("c = a + b").hover()
    assert "3.0 MiB in 401 allocations" in import_page.page.text_content("#tooltip")
    assert import_page.errors == []


def test_flames_put_the_root_at_the_bottom(import_page: Page) -> None:
    def top_of(text: str) -> float:
        return import_page.frame(text).bounding_box()["y"]

    assert top_of("all: memory") < top_of("import pkg") < top_of("_find_and_load")
    import_page.page.check("#flames")
    assert top_of("all: memory") > top_of("import pkg") > top_of("_find_and_load")
    import_page.page.uncheck("#flames")
    assert top_of("all: memory") < top_of("import pkg")


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_peak_label_never_covers_the_legend(import_page: Page) -> None:
    page = import_page.page
    chart = page.locator("#timeline").bounding_box()
    label = page.locator("#timeline .peak-text").bounding_box()
    assert page.text_content("#timeline .peak-text") == "peak 6.0 MiB at 1.99 s"
    for legend in ("#timeline .heap-label", "#timeline .rss-label"):
        assert not overlaps(label, page.locator(legend).bounding_box())
    assert chart["x"] <= label["x"] and label["x"] + label["width"] <= chart["x"] + chart["width"]
    assert page.get_attribute("#timeline .peak-text", "text-anchor") == "end"  # flipped


def test_memory_graph_opens_large_and_zooms(import_page: Page) -> None:
    page = import_page.page
    assert not page.locator("#memory-dialog").is_visible()
    page.click("#enlarge")
    assert page.locator("#memory-dialog").is_visible()
    large = page.locator("#timeline-large").bounding_box()
    assert large["height"] > 400
    assert page.text_content("#timeline-large .t-end") == "2.00 s"
    left = large["x"] + 64
    plot = large["width"] - 64 - 12
    page.mouse.move(left + plot * 0.25, large["y"] + 100)
    page.mouse.down()
    page.mouse.move(left + plot * 0.5, large["y"] + 100, steps=4)
    page.mouse.up()
    assert page.text_content("#memory-range") == "0.500 s to 1.000 s"
    assert page.text_content("#timeline-large .t-end") == "1.000 s"
    assert page.locator("#timeline-large .peak-text").count() == 0  # the peak is outside
    page.click("#memory-reset")
    assert page.text_content("#memory-range") == "0.000 s to 2.000 s"
    page.click("#memory-close")
    assert not page.locator("#memory-dialog").is_visible()
    assert import_page.errors == []


def test_run_statistics_panel(import_page: Page) -> None:
    page = import_page.page
    page.click("#run-stats summary")
    keys = page.eval_on_selector_all("#run-stats dt", "els => els.map(e => e.textContent)")
    values_shown = page.eval_on_selector_all("#run-stats dd", "els => els.map(e => e.textContent)")
    shown = dict(zip(keys, values_shown, strict=True))
    assert shown["Command"] == "prog.py --flag"
    assert shown["Python"] == "3.11.2"
    assert shown["Started"] == "2023-11-14 22:13:20.000 UTC"
    assert shown["Ended"] == "2023-11-14 22:13:22.000 UTC"
    assert shown["Allocators"].startswith("Python objects and the malloc family")
    assert shown["Peak memory"] == "6.0 MiB at 1.99 s"
    assert shown["Total allocated"] == "6.0 MiB in 441 allocations"
    assert shown["Capture"] == "complete"


def test_hostile_names_are_text_and_control_characters_show(browser: Any, tmp_path: Path) -> None:
    name = "`[bold]x[/bold]`\x1b[31m\x07\x00<img src=x onerror=alert(1)>"
    profile = build([([MAIN, (name, "/app/\x1b]8;;evil\x07.py", 3, 1)], values(peak=MIB))])
    profile.meta.argv.append("<img src=y onerror=alert(3)>\x1b")
    opened = Page(browser, flamegraph.render(profile), tmp_path)
    try:
        opened.page.click("#run-stats summary")
        command = opened.page.text_content("#run-stats dd")
        assert command == "prog.py --flag <img src=y onerror=alert(3)>\\x1b"
        shown = "`[bold]x[/bold]`\\x1b[31m\\x07\\x00<img src=x onerror=alert(1)>"
        assert shown in opened.names()
        opened.frame("onerror").hover()
        assert "/app/\\x1b]8;;evil\\x07.py:3" in opened.page.text_content("#tooltip")
        assert opened.page.locator("img").count() == 0
        assert opened.dialogs == [] and opened.errors == []
    finally:
        opened.close()
