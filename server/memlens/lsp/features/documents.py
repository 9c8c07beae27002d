"""Document and workspace events: settings, workspace roots, moving annotations with edits, and
the shutdown that lets running work answer first."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from memlens.lsp import handlers, views
from memlens.lsp.handlers import Host


def _memlens_section(options: Any) -> Any:
    if isinstance(options, dict):
        return options.get("memlens")
    return None


def _paths(uris: list[str]) -> list[str]:
    return [p for p in (handlers.path_of(uri) for uri in uris) if p and "\0" not in p]


def did_change_configuration(ls: Host, params: types.DidChangeConfigurationParams) -> None:
    section = _memlens_section(params.settings)
    if section is None:
        return
    session = ls.session
    before = session.settings
    ls.apply_settings(section)
    if session.profile is None:
        return
    if before.include_libraries != session.settings.include_libraries:
        session.annotations = session.annotate(session.profile)
    ls.publish_task = ls.publish(final=ls.running is None)
    ls.refresh_views()  # hints and lenses follow their settings too


def did_change(ls: Host, params: types.DidChangeTextDocumentParams) -> None:
    session = ls.session
    file = handlers.path_of(params.text_document.uri)
    if file is None or session.annotations is None or file not in session.annotations.by_file:
        return
    known = list(session.annotations.notes(file))
    line_map = session.line_map(file)
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            r = change.range
            line_map.apply(
                (r.start.line, r.start.character), (r.end.line, r.end.character), change.text, known
            )
        else:  # the whole text replaced: nothing can be placed any more
            line_map.forget(known)
    views.publish_soon(ls)


def register(server: Host) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: Host, params: types.InitializeParams) -> None:
        roots = [f.uri for f in params.workspace_folders or []] or (
            [params.root_uri] if params.root_uri else []
        )
        ls.session.roots = _paths(roots)
        ls.apply_settings(_memlens_section(params.initialization_options))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(ls: Host, params: types.DidChangeWorkspaceFoldersParams) -> None:
        removed = set(_paths([f.uri for f in params.event.removed]))
        kept = [root for root in ls.session.roots if root not in removed]
        added = _paths([f.uri for f in params.event.added])
        ls.session.roots = kept + [p for p in added if p not in kept]

    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: Host, params: None) -> None:
        # Let a running profile answer (cancelled) and an attached process be detached, before
        # pygls cancels the pending requests.
        jobs = [job for job in (ls.running, ls.attached) if job is not None]
        await asyncio.to_thread(ls.stop_jobs)
        tasks = [job.task for job in jobs if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        ls.cleanup()
