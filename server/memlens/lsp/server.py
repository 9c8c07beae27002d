"""The memlens language server: state on a LanguageServer subclass, features in features/*.

`memlens serve` (stdio, or --tcp HOST:PORT) and `python -m memlens.lsp` start it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from memlens import __version__
from memlens.lsp.annotations import Annotations, LineMap, LineNote, user_code_filter
from memlens.lsp.settings import Settings, parse
from memlens.model import Profile
from memlens.units import format_bytes


def uri_to_path(uri: str) -> str | None:
    """The file path of a `file:` uri; None for untitled buffers, notebook cells and the like."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return unquote(parsed.path)


def path_to_uri(path: str) -> str:
    return Path(path).as_uri()


class MemlensServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("memlens", __version__)
        self.settings = Settings()
        self.roots: list[str] = []
        self.profile: Profile | None = None
        self.annotations: Annotations | None = None
        self.script: str | None = None  # the profiled file
        self.capture_path: Path | None = None  # our private copy, removed when replaced
        self.line_maps: dict[str, LineMap] = {}  # file -> where its annotated lines are now
        self.published: set[str] = set()  # uris that have our diagnostics
        self.private_dir = Path(tempfile.mkdtemp(prefix="memlens-"))  # mode 0700
        self.running: Any = None  # the profile in progress (commands.ProfileJob)
        self.publish_task: asyncio.Task[None] | None = None
        self._summary: tuple[Profile, dict[str, Any]] | None = None

    # --- settings ---------------------------------------------------------------------------

    def apply_settings(self, raw: Any) -> None:
        self.settings, problems = parse(raw)
        for problem in problems:
            self.show(problem, types.MessageType.Warning)

    # --- messages to the user -----------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"memlens: {message}"))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # --- the loaded profile -------------------------------------------------------------------

    def set_profile(
        self, profile: Profile | None, annotations: Annotations | None, script: str | None
    ) -> None:
        self.profile, self.annotations, self.script = profile, annotations, script
        self.line_maps.clear()

    def annotate(self, profile: Profile) -> Annotations:
        """The per-line picture (CPU work: call it in a thread)."""
        is_user = user_code_filter(self.roots, self.settings.include_libraries)
        return Annotations(profile, is_user)

    def line_map(self, file: str) -> LineMap:
        return self.line_maps.setdefault(file, LineMap())

    def current_notes(self, file: str) -> dict[int, LineNote]:
        """The annotated lines of a file by their current 0-based line (edited lines left out)."""
        if self.annotations is None:
            return {}
        moved = self.line_maps.get(file)
        notes = self.annotations.notes(file)
        if moved is None:
            return {line - 1: note for line, note in notes.items()}
        result: dict[int, LineNote] = {}
        for line, note in notes.items():
            now = moved.current(line)
            if now is not None:
                result[now] = note
        return result

    def frame_location(self, file: str, line: int) -> types.Location:
        """A recorded (file, 1-based line) as a location, following edits of that file."""
        moved = self.line_maps.get(file)
        now = moved.current(line) if moved else line - 1
        now = line - 1 if now is None else now
        position = types.Position(line=max(now, 0), character=0)
        return types.Location(
            uri=path_to_uri(file), range=types.Range(start=position, end=position)
        )

    def frame_dict(self, function: str, file: str, line: int) -> dict[str, Any]:
        location = self.frame_location(file, line) if file.startswith("/") else None
        return {
            "uri": location.uri if location else None,
            "line": location.range.start.line if location else line - 1,
            "function": function,
            "file": file,
        }

    def current_line(self, file: str, line: int) -> int | None:
        """Where a recorded (1-based) line of a file is now (0-based); None once edited."""
        moved = self.line_maps.get(file)
        return moved.current(line) if moved else line - 1

    def recorded_line(self, file: str, current: int) -> int | None:
        """The recorded (1-based) line now shown at a current 0-based line."""
        note = self.current_notes(file).get(current)
        return note.line if note else (current + 1 if file not in self.line_maps else None)

    def path_of(self, uri: str) -> str | None:
        return uri_to_path(uri)

    def uri_of(self, file: str) -> str:
        return path_to_uri(file)

    def summary(self) -> dict[str, Any] | None:
        """The summary of the shown profile (built once per profile)."""
        profile = self.profile
        if profile is None:
            return None
        cached = self._summary
        if cached is not None and cached[0] is profile:
            return cached[1]
        from memlens.reports import summary

        built = summary.build(profile)
        self._summary = (profile, built)
        return built

    def replace_capture(self, path: Path | None) -> None:
        """Our private capture of the shown profile; the one it replaces is removed."""
        if self.capture_path is not None and self.capture_path != path:
            self.capture_path.unlink(missing_ok=True)
        self.capture_path = path

    def refresh_views(self) -> None:
        """Ask the client to fetch code lenses and inlay hints again (when it can)."""
        workspace = self.client_capabilities.workspace if self.client_capabilities else None
        if workspace is None:
            return
        if workspace.code_lens and workspace.code_lens.refresh_support:
            self.protocol.send_request(types.WORKSPACE_CODE_LENS_REFRESH, None)
        if workspace.inlay_hint and workspace.inlay_hint.refresh_support:
            self.protocol.send_request(types.WORKSPACE_INLAY_HINT_REFRESH, None)

    def peak_text(self) -> str:
        return format_bytes(self.profile.totals.peak_bytes) if self.profile else ""

    def cleanup(self) -> None:
        """At exit: stop a running profile, remove our private captures."""
        if self.running is not None:
            self.running.kill()
        shutil.rmtree(self.private_dir, ignore_errors=True)


def create_server() -> MemlensServer:
    from memlens.lsp.features import (
        code_lens,
        commands,
        diagnostics,
        documents,
        hover,
        inlay_hints,
        requests,
    )

    server = MemlensServer()
    for feature in (documents, diagnostics, code_lens, inlay_hints, hover, commands, requests):
        feature.register(server)
    from memlens.lsp.features import attach  # attaching to a running process

    attach.register(server)
    return server


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="memlens serve", description="the memlens language server"
    )
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    options = parser.parse_args(argv)
    server = create_server()

    # Stopped with SIGTERM: clean up and leave at once (a thread blocked reading stdin would
    # hold up a normal exit).
    def on_terminate(*_: object) -> None:
        server.cleanup()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_terminate)
    try:
        if options.tcp:
            host, _, port = options.tcp.rpartition(":")
            if not port.isdigit():
                parser.error(f"--tcp wants HOST:PORT, not {options.tcp!r}")
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            server.start_io()
    finally:
        server.cleanup()
    return 0
