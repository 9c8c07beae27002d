"""The memlens language server: state on a LanguageServer subclass, features in features/*.

`memlens serve` (stdio, or --tcp HOST:PORT) and `python -m memlens.lsp` start it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from memlens import __version__
from memlens.lsp import private_dirs, transport
from memlens.lsp.annotations import Annotations, LineMap, LineNote, user_code_filter
from memlens.lsp.dispatch import MemlensProtocol
from memlens.lsp.loads import CaptureLoads
from memlens.lsp.settings import Settings, parse
from memlens.model import Profile
from memlens.units import format_bytes

logger = logging.getLogger("memlens.lsp")


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
        super().__init__("memlens", __version__, protocol_cls=MemlensProtocol)
        self.settings = Settings()
        self.roots: list[str] = []
        self.profile: Profile | None = None
        self.annotations: Annotations | None = None
        self.script: str | None = None  # the profiled file
        self.capture_path: Path | None = None  # our private copy, removed when replaced
        self.line_maps: dict[str, LineMap] = {}  # file -> where its annotated lines are now
        self.published: set[str] = set()  # uris that have our diagnostics
        self.private_dir = private_dirs.create()  # mode 0700
        self.running: Any = None  # the profile in progress (commands.ProfileJob)
        self.publish_task: asyncio.Task[None] | None = None
        self._summary: tuple[Profile, dict[str, Any]] | None = None
        self.exit_code = 0
        self.capture_loads = CaptureLoads()

    # --- the connection -----------------------------------------------------------------------

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve over stdio with memlens' own framing (transport.py) and checks (dispatch.py)."""
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        reader = transport.StdinChunks((stdin or sys.stdin.buffer).fileno())
        self._serve(lambda: transport.serve(reader, self._receive))

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one client over TCP, then exit."""

        async def listen() -> str:
            ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            async def connection(reader: asyncio.StreamReader, writer: Any) -> None:
                self.protocol.set_writer(writer)
                try:
                    reason = await transport.serve(
                        lambda: reader.read(transport.CHUNK), self._receive
                    )
                except SystemExit as exiting:  # `exit`: asyncio would log it from a callback
                    self.exited(exiting)
                    reason = "the client sent exit"
                if not ended.done():
                    ended.set_result(reason)

            async with await asyncio.start_server(connection, host, port):
                return await ended

        self._serve(listen)

    def _receive(self, message: transport.Message) -> None:
        cast(MemlensProtocol, self.protocol).receive(message)

    def _serve(self, main: Callable[[], Coroutine[Any, Any, str]]) -> None:
        self._stop_event = threading.Event()
        try:
            reason = asyncio.run(main())
            logger.warning("memlens: %s; the server exits", reason)
        except SystemExit as exiting:  # the `exit` notification
            self.exited(exiting)
        finally:
            self.shutdown()

    def exited(self, exiting: SystemExit) -> None:
        """pygls ends the server with sys.exit: 0 after `shutdown`, else 1 (as LSP says)."""
        self.exit_code = exiting.code if isinstance(exiting.code, int) else 0

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' out-of-band errors: logged, never a popup (one per bad message adds up)."""
        if source is FeatureRequestError:  # already in the response, and logged
            return
        logger.warning("memlens: %s", getattr(error, "message", None) or error)

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
        """The per-line picture. CPU work: a loaded profile gets it in a thread; a settings change
        (include_libraries) rebuilds it on the loop."""
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

    def outside_workspace(self, path: str) -> bool:
        """Whether a file lies outside every workspace folder (after `..` and symlinks)."""
        real = os.path.realpath(path)
        for root in self.roots:
            top = os.path.realpath(root)
            if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
                return False
        return True

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
        test_lens,
    )

    server = MemlensServer()
    features = (documents, diagnostics, code_lens, inlay_hints, hover, commands, requests)
    for feature in (*features, test_lens):
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
    logging.basicConfig(format="%(message)s", level=logging.WARNING)  # stderr: the client's log
    for stale in private_dirs.remove_stale():
        logger.warning("memlens: removed %s, left behind by a server that is gone", stale)
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
    return server.exit_code
