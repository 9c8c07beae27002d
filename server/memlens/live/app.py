"""The live view (Textual): heap and RSS over time, the lines holding the most memory now (per
thread, sortable), the program's output, and the summary once the run is over.

Keys: l/p/a/n sort by live now / at peak / allocated / allocations; t next thread;
m memory, o output, s summary; q quit (under `run --live` this stops the program, see program.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (
    DataTable,
    Footer,
    Log,
    Select,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from memlens.live import rows
from memlens.live.follower import Follower, Snapshot
from memlens.live.program import Child
from memlens.model import Profile
from memlens.units import format_bytes

POLL_INTERVAL_S = 0.5
QUIET_S = 5  # a checkpoint older than this is pointed out: the run may be gone
OUTPUT_LINES_KEPT = 10_000  # the program's output panel keeps its last lines, not all of them
_NUMBERS = rows.COLUMNS.index("location")  # the columns before it are numbers


@dataclass(frozen=True)
class View:
    """Everything the screen shows of one snapshot, computed off the UI thread."""

    snapshot: Snapshot
    lines: list[rows.Row]
    threads: list[tuple[str, int]]
    heap: list[float]
    rss: list[float]


def build_view(snapshot: Snapshot, thread: int, metric: str) -> View:
    profile = snapshot.profile
    if profile is None:
        return View(snapshot, [], [], [], [])
    timeline = profile.timeline
    return View(
        snapshot,
        rows.top_rows(rows.for_thread(profile, thread), metric),
        rows.threads(profile),
        rows.series(timeline.heap),
        rows.series(timeline.rss),
    )


class LiveApp(App[None]):
    """Follows one capture; with a Child, also runs the program and shows its output."""

    TITLE = "memlens live"
    CSS = """
    #status { height: 1; background: $boost; }
    .label { height: 1; }
    Sparkline { height: 3; }
    #controls { height: 3; }
    #thread { width: 40; }
    #sort { padding: 1 2; }
    """
    BINDINGS = [
        *(Binding(key, f"sort('{metric}')", f"by {title}") for key, metric, title in rows.SORTS),
        Binding("t", "next_thread", "thread"),
        Binding("m", "tab('memory')", "memory"),
        Binding("o", "tab('output')", "output"),
        Binding("s", "summary", "summary"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, follower: Follower, child: Child | None = None) -> None:
        super().__init__()
        self.follower = follower
        self.child = child
        self.metric = rows.SORTS[0][1]
        self.thread = rows.ALL_THREADS
        self.snapshot: Snapshot | None = None  # the latest readable one
        self.thread_ids = [rows.ALL_THREADS]  # the selector's choices
        self.problem = ""  # the last read error, shown in the status line
        self.program_state = "running" if child else "following"
        self.started = time.monotonic()
        self._polling = False

    def compose(self) -> ComposeResult:
        # markup=False where the text comes from the run (argv, paths, errors may hold "[")
        yield Static("waiting for the first checkpoint…", id="status", markup=False)
        with TabbedContent(initial="memory"):
            with TabPane("Memory", id="memory"):
                yield Static("heap", id="heap-label", classes="label", markup=False)
                yield Sparkline([], id="heap")
                yield Static("RSS", id="rss-label", classes="label", markup=False)
                yield Sparkline([], id="rss")
                with Horizontal(id="controls"):
                    yield Select(
                        [("all threads", rows.ALL_THREADS)],
                        value=rows.ALL_THREADS,
                        allow_blank=False,
                        id="thread",
                    )
                    yield Static("", id="sort")
                yield DataTable(id="lines", cursor_type="row", zebra_stripes=True)
            with TabPane("Output", id="output"):
                yield Log(id="program-output", max_lines=OUTPUT_LINES_KEPT)
            with TabPane("Summary", id="summary"):
                with VerticalScroll():
                    yield Static(
                        "No checkpoint yet: nothing to summarise.",
                        id="summary-text",
                        markup=False,
                    )
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#lines", DataTable).add_columns(*rows.COLUMNS)
        self._show_sort()
        if self.child is not None:
            await self.child.start(self._program_output)
            self.run_worker(self._watch_child(), exit_on_error=False)
        self.set_interval(POLL_INTERVAL_S, self.poll)
        await self.poll()

    # --- data -----------------------------------------------------------------------------

    async def poll(self) -> None:
        """Read the capture if it changed (off the UI thread) and show it."""
        if self._polling:
            return
        self._polling = True
        try:
            snapshot = await asyncio.to_thread(self.follower.poll)
            if snapshot is not None:
                await self._present(snapshot)
            self._show_status()
        finally:
            self._polling = False

    async def _rebuild(self) -> None:
        """Recompute the table for a new sort or thread from the profile already read."""
        if self.snapshot is not None:
            await self._present(self.snapshot)

    async def _present(self, snapshot: Snapshot) -> None:
        """Build the view off the UI thread and show it, with the sort and thread chosen by
        the time it is shown (a key pressed meanwhile must not be undone by an older view)."""
        while True:
            thread, metric = self.thread, self.metric
            view = await asyncio.to_thread(build_view, snapshot, thread, metric)
            if (thread, metric) == (self.thread, self.metric):
                break
        self._show(view)

    async def _watch_child(self) -> None:
        assert self.child is not None
        code = await self.child.wait()
        self.program_state = "stopped" if self.child.stopped_by_view else f"exited with code {code}"
        await self.poll()  # the final capture is written before the program exits

    def _program_output(self, stream: str, line: str) -> None:
        self.query_one("#program-output", Log).write_line(
            line if stream == "stdout" else f"[stderr] {line}"
        )

    # --- showing ----------------------------------------------------------------------------

    def _show(self, view: View) -> None:
        profile = view.snapshot.profile
        if profile is None:
            self.problem = view.snapshot.error or "unreadable capture"
            return
        self.snapshot, self.problem = view.snapshot, ""
        self._show_timeline(view, profile)
        self._show_threads(view.threads)
        table = self.query_one("#lines", DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in view.lines:
            # Text, not str: a str cell is read as markup, and paths may hold "[" or "]"
            cells = [Text(cell, justify="right") for cell in row.cells[:_NUMBERS]]
            table.add_row(*cells, *map(Text, row.cells[_NUMBERS:]), key=row.key)
        if view.lines:
            table.move_cursor(row=min(cursor, len(view.lines) - 1))
        if view.snapshot.final:
            self._show_summary(profile)

    def _show_timeline(self, view: View, profile: Profile) -> None:
        self.query_one("#heap", Sparkline).data = view.heap
        self.query_one("#rss", Sparkline).data = view.rss
        t_ms = profile.timeline.t_ms
        span = f" over {int(t_ms[-1]) / 1000:.1f} s" if len(t_ms) else ""
        self.query_one("#heap-label", Static).update(
            f"heap{span}: {format_bytes(rows.heap_now(profile))} now, "
            f"peak {format_bytes(profile.totals.peak_bytes)}"
        )
        rss_now = int(profile.timeline.rss[-1]) if len(profile.timeline.rss) else 0
        self.query_one("#rss-label", Static).update(
            f"RSS {format_bytes(rss_now)} now, peak {format_bytes(profile.totals.rss_peak)}"
        )

    def _show_threads(self, threads: list[tuple[str, int]]) -> None:
        ids = [value for _, value in threads]
        if ids != self.thread_ids:
            self.thread_ids = ids
            select = self.query_one("#thread", Select)
            select.set_options((Text(name), value) for name, value in threads)  # not markup
            select.value = self.thread if self.thread in ids else rows.ALL_THREADS

    def _show_summary(self, profile: Profile) -> None:
        from memlens.reports import summary

        self.query_one("#summary-text", Static).update(summary.render(profile))

    def _show_sort(self) -> None:
        title = next(title for _, metric, title in rows.SORTS if metric == self.metric)
        keys = " ".join(key for key, _, _ in rows.SORTS)
        self.query_one("#sort", Static).update(f"sorted by [b]{title}[/b] ({keys})")

    def _show_status(self) -> None:
        profile = self.snapshot.profile if self.snapshot else None
        # the state first: on a narrow terminal the command line is what gets cut
        parts = [self._run_state()]
        if profile is not None:
            parts.append(f"peak {format_bytes(profile.totals.peak_bytes)}")
        if self.problem:
            parts.append(f"cannot read: {self.problem}")
        elif profile is None:
            parts.append("waiting for the first checkpoint")
        parts.append(" ".join(profile.meta.argv) if profile else str(self.follower.partial))
        self.query_one("#status", Static).update(" · ".join(parts))

    def _run_state(self) -> str:
        profile = self.snapshot.profile if self.snapshot else None
        if self.follower.done and profile is not None:
            ended = self.program_state if self.child else f"exit code {profile.meta.exit_code}"
            return f"finished after {profile.meta.duration_s:.1f} s, {ended} (s: summary)"
        if self.child is not None and self.program_state != "running":
            return f"program {self.program_state}, no complete capture"
        if self.snapshot is None or profile is None:
            return f"{self.program_state} {time.monotonic() - self.started:.1f} s"
        # the run's own clock (it may have started before the view)
        state = f"{self.program_state} {profile.meta.duration_s:.1f} s"
        quiet_s = (time.time_ns() - self.snapshot.written_ns) / 1e9
        return f"{state}, last checkpoint {quiet_s:.0f} s ago" if quiet_s >= QUIET_S else state

    # --- actions ----------------------------------------------------------------------------

    async def action_sort(self, metric: str) -> None:
        self.metric = metric
        self._show_sort()
        await self._rebuild()

    async def action_next_thread(self) -> None:
        ids = self.thread_ids
        following = ids[(ids.index(self.thread) + 1) % len(ids)] if self.thread in ids else ids[0]
        self.query_one("#thread", Select).value = following  # on_select_changed rebuilds

    async def on_select_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and event.value != self.thread:
            self.thread = event.value
            await self._rebuild()

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_summary(self) -> None:
        """The summary tab; before the end, the summary of the latest checkpoint (marked
        partial), so that a run that was killed still has one."""
        profile = self.snapshot.profile if self.snapshot else None
        if profile is not None and not self.follower.done:
            self._show_summary(profile)
        self.action_tab("summary")

    async def action_quit(self) -> None:
        if self.child is not None:
            self.query_one("#status", Static).update("stopping the program…")
            await self.child.stop()
        self.exit()
