"""Document and workspace events: settings, workspace roots, and moving annotations with edits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from memlens.lsp.features import diagnostics

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def _memlens_section(options: Any) -> Any:
    if isinstance(options, dict):
        return options.get("memlens")
    return None


def register(server: MemlensServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: MemlensServer, params: types.InitializeParams) -> None:
        roots = [f.uri for f in params.workspace_folders or []] or (
            [params.root_uri] if params.root_uri else []
        )
        ls.roots = [p for p in (ls.path_of(uri) for uri in roots) if p and "\0" not in p]
        ls.apply_settings(_memlens_section(params.initialization_options))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(
        ls: MemlensServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        removed = {ls.path_of(f.uri) for f in params.event.removed}
        added = [ls.path_of(f.uri) for f in params.event.added]
        kept = [root for root in ls.roots if root not in removed]
        ls.roots = kept + [p for p in added if p and "\0" not in p and p not in kept]

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: MemlensServer, params: types.DidChangeConfigurationParams
    ) -> None:
        section = _memlens_section(params.settings)
        if section is None:
            return
        before = ls.settings
        ls.apply_settings(section)
        if ls.profile is not None and before.include_libraries != ls.settings.include_libraries:
            ls.annotations = ls.annotate(ls.profile)
        if ls.profile is not None:
            ls.publish_task = diagnostics.publish(ls, final=ls.running is None)
            ls.refresh_views()  # hints and lenses follow their settings too

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: MemlensServer, params: types.DidChangeTextDocumentParams) -> None:
        file = ls.path_of(params.text_document.uri)
        if file is None or ls.annotations is None or file not in ls.annotations.by_file:
            return
        known = list(ls.annotations.notes(file))
        line_map = ls.line_map(file)
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                line_map.apply(
                    (r.start.line, r.start.character),
                    (r.end.line, r.end.character),
                    change.text,
                    known,
                )
            else:  # the whole text replaced: nothing can be placed any more
                line_map.forget(known)
        diagnostics.schedule(ls)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: MemlensServer, params: None) -> None:
        # Let a running profile answer (cancelled) before pygls cancels the pending requests.
        job = ls.running
        ls.cleanup()
        if job is not None and job.task is not None:
            await asyncio.wait([job.task], timeout=5)
