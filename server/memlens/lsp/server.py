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
from typing import Any, cast

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter

from memlens import __version__
from memlens.lsp import private_dirs, transport
from memlens.lsp.dispatch import MemlensProtocol
from memlens.lsp.handlers import Host, Job
from memlens.lsp.loads import CaptureLoads
from memlens.lsp.session import Session
from memlens.lsp.settings import parse

logger = logging.getLogger("memlens.lsp")


def _no_views(final: bool) -> asyncio.Task[None]:
    raise RuntimeError("no diagnostics feature registered")


class MemlensServer(Host):
    """The LSP side of memlens: the connection, messages to the user, and the jobs to stop at
    exit. What is shown lives in `session`; the features (features/*) implement the rest and
    see this class only as handlers.Host."""

    def __init__(self) -> None:
        super().__init__("memlens", __version__, protocol_cls=MemlensProtocol)
        self.session = Session()
        self.private_dir = private_dirs.create()  # mode 0700
        self.capture_loads = CaptureLoads()
        self.running: Job | None = None  # the profile in progress
        self.attached: Job | None = None  # the process followed (memlens.attach)
        self.publish_task: asyncio.Task[None] | None = None
        self.published: set[str] = set()  # uris that have our diagnostics
        self.publisher: Callable[[bool], asyncio.Task[None]] = _no_views
        self.lens_sources: list[Callable[[Host, str], list[types.CodeLens]]] = []
        self.diagnostic_sources: list[Callable[[Host], dict[str, list[types.Diagnostic]]]] = []
        self.exit_code = 0

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
        self.session.settings, problems = parse(raw)
        for problem in problems:
            self.show(problem, types.MessageType.Warning)

    # --- messages to the user -----------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"memlens: {message}"))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # --- the views ----------------------------------------------------------------------------

    def publish(self, *, final: bool) -> asyncio.Task[None]:
        return self.publisher(final)

    def refresh_views(self) -> None:
        """Ask the client to fetch code lenses and inlay hints again (when it can)."""
        workspace = self.client_capabilities.workspace if self.client_capabilities else None
        if workspace is None:
            return
        if workspace.code_lens and workspace.code_lens.refresh_support:
            self.protocol.send_request(types.WORKSPACE_CODE_LENS_REFRESH, None)
        if workspace.inlay_hint and workspace.inlay_hint.refresh_support:
            self.protocol.send_request(types.WORKSPACE_INLAY_HINT_REFRESH, None)

    # --- the end ------------------------------------------------------------------------------

    def stop_jobs(self) -> None:
        """Stop a running profile and detach an attached process (blocking, bounded)."""
        for job in (self.running, self.attached):
            if job is not None:
                job.stop()

    def cleanup(self) -> None:
        """At shutdown and exit: stop the jobs, remove our private captures."""
        self.stop_jobs()
        shutil.rmtree(self.private_dir, ignore_errors=True)


def create_server() -> MemlensServer:
    from memlens.lsp.features import (
        attach,
        code_lens,
        commands,
        diagnostics,
        documents,
        hover,
        inlay_hints,
        notebook,
        requests,
        snapshot,
        test_lens,
    )

    server = MemlensServer()
    features = (documents, diagnostics, code_lens, inlay_hints, hover, commands, requests, attach)
    for feature in (*features, snapshot, test_lens, notebook):
        feature.register(server)
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
