"""What every feature's handlers share: the server as features see it (`Host`), arguments in,
results out (`guarded`), and places in files as LSP locations and protocol frames.

Features import this module, the session and the protocol; never the server module (which
imports them) nor each other (tests/lsp/test_imports.py checks).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from memlens.lsp import cells, protocol
from memlens.lsp.loads import CaptureLoads
from memlens.lsp.session import Session


class Job(Protocol):
    """Work the server must stop before it exits: a profiled script, an attached process."""

    done: asyncio.Event  # set once it has ended
    task: asyncio.Task[Any] | None  # what answers for it: awaited (bounded) at shutdown

    def stop(self) -> None:
        """End it now (blocking, bounded): kill the script, detach from the process."""


class Host(LanguageServer):
    """The memlens server as its features see it: what they may use, implemented by
    server.MemlensServer (which features never import)."""

    session: Session
    private_dir: Path  # mode 0700: our captures
    capture_loads: CaptureLoads
    running: Job | None  # the profile in progress
    attached: Job | None  # the process followed
    publish_task: asyncio.Task[None] | None  # a debounced publish (views.publish_soon)
    published: set[str]  # the uris that have our diagnostics
    # shows the session in every view (diagnostics, then memlens/didUpdate): set by diagnostics
    publisher: Callable[[bool], asyncio.Task[None]]
    # runs a script as memlens.profile does (set by commands; the notebook feature runs its own)
    run_profile: Callable[..., Awaitable[protocol.ProfileResult | None]]
    # other features' code lenses of a document, and diagnostics by file (test_lens: its tests)
    lens_sources: list[Callable[[Host, str], list[types.CodeLens]]]
    diagnostic_sources: list[Callable[[Host], dict[str, list[types.Diagnostic]]]]

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        raise NotImplementedError

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        raise NotImplementedError

    def publish(self, *, final: bool) -> asyncio.Task[None]:
        raise NotImplementedError

    def refresh_views(self) -> None:
        raise NotImplementedError

    def apply_settings(self, raw: Any) -> None:
        raise NotImplementedError

    def stop_jobs(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError


def path_of(uri: str) -> str | None:
    """The file name a document has in profiles: a `file:` uri's path, a notebook cell's uri
    itself (cells.remap names frames so); None for untitled buffers and the like."""
    if cells.is_cell(uri):
        return uri
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return unquote(parsed.path)


def uri_of(file: str) -> str:
    return file if cells.is_cell(file) else Path(file).as_uri()


def openable(file: str) -> bool:
    """Whether a frame's file is one the editor can open: a real path or a notebook's cell (not
    `<frozen ...>`, `<string>`)."""
    return file.startswith("/") or cells.is_cell(file)


def frame_location(session: Session, file: str, line: int) -> types.Location:
    """A recorded (file, 1-based line) as a location, following edits of that file."""
    position = types.Position(line=session.shown_line(file, line), character=0)
    return types.Location(uri=uri_of(file), range=types.Range(start=position, end=position))


def frame(session: Session, function: str, file: str, line: int) -> protocol.Frame:
    """A recorded frame as the protocol sends it (a real file gets a uri and its line now)."""
    if not openable(file):
        return protocol.Frame(uri=None, line=line - 1, function=function, file=file)
    return protocol.Frame(
        uri=uri_of(file), line=session.shown_line(file, line), function=function, file=file
    )


def needs_confirmation(script: str) -> JsonRpcException:
    """The refusal to run a file outside the workspace folders until the user says so."""
    real = os.path.realpath(script)
    return JsonRpcException(
        code=types.LSPErrorCodes.RequestFailed,
        message=(
            f"memlens: {real} is outside the workspace folders; profiling runs it."
            " Profile it only if you trust it (the request must say confirmed: true)."
        ),
        data={"needsConfirmation": True, "path": real},
    )


def file_to_run(server: Host, uri: str, confirmed: bool, test: str | None = None) -> str | None:
    """The file a profile request runs (a script, or the file of `test`), or None when it cannot
    be run and the user has been told why. A NUL is a bad request; a file outside the workspace
    folders runs only once the user has confirmed."""
    file = path_of(uri)
    if file is None or cells.is_cell(file):
        of = "" if test is None else "a test of "
        why = "it is a notebook cell: use Profile notebook" if file else "save the file first"
        server.show(f"cannot profile {of}{uri}: {why}")
        return None
    if "\0" in file or (test is not None and "\0" in test):
        what = "the uri" if test is None else "the uri or the test"
        raise protocol.ParamsError(f"{what} contains a NUL character")
    if not os.path.isfile(file):
        server.show(f"{'script' if test is None else 'test file'} not found: {file}")
        return None
    if not confirmed and server.session.outside_workspace(file):
        raise needs_confirmation(file)
    return file


async def stop_running(server: Host) -> None:
    """The newest profile request wins: the one in progress is stopped, and has ended."""
    previous = server.running
    if previous is not None:
        previous.stop()
        await previous.done.wait()


def plain(value: Any) -> Any:
    """Client arguments as plain dicts and lists (custom params may arrive as namedtuples)."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _command_argument(args: tuple[Any, ...]) -> Any:
    """workspace/executeCommand: its one object argument, or None."""
    if len(args) > 1:
        raise protocol.ParamsError(f"expected one object as the argument, got {len(args)} values")
    return plain(args[0]) if args else None


def _request_params(args: tuple[Any, ...]) -> Any:
    return plain(args[0])


Handler = Callable[[Any, Any], Awaitable[Any] | Any]


def guarded(method: protocol.Method, handler: Handler) -> Callable[..., Awaitable[Any]]:
    """A handler for pygls: arguments that do not fit get InvalidParams (-32602) naming the
    problem; the result goes out with the wire's names."""
    argument = _command_argument if method.kind == "command" else _request_params

    async def run(ls: Any, *args: Any) -> Any:  # no forward refs: pygls reads the hints
        try:
            result = handler(ls, argument(args))
            result = await result if asyncio.iscoroutine(result) else result
        except protocol.ParamsError as error:
            raise JsonRpcInvalidParams(f"invalid arguments for {method.name}: {error}") from None
        return protocol.wire(result)

    return run


def register(server: Host, *handlers: tuple[protocol.Method, Handler]) -> None:
    """Register memlens' own commands and requests, each declared in protocol.METHODS."""
    for method, handler in handlers:
        register_as = server.command if method.kind == "command" else server.feature
        register_as(method.name)(guarded(method, handler))
