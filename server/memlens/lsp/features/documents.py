"""Initialization, settings and edits: annotations move with their lines as the user types."""

from __future__ import annotations

from lsprotocol import types

from memlens.lsp.server import MemlensServer, uri_to_path


def register(server: MemlensServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: MemlensServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        ls.apply_settings(options.get("memlens", options) if isinstance(options, dict) else None)
        folders = params.workspace_folders or []
        roots = [uri_to_path(f.uri) for f in folders]
        if not roots and params.root_uri:
            roots = [uri_to_path(params.root_uri)]
        ls.roots = [r for r in roots if r]

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: MemlensServer, params: types.DidChangeConfigurationParams) -> None:
        raw = params.settings
        if isinstance(raw, dict) and "memlens" in raw:
            raw = raw["memlens"]
        before = ls.settings
        ls.apply_settings(raw if isinstance(raw, dict) else None)
        if ls.profile is not None and (
            before.include_libraries != ls.settings.include_libraries or before.diagnostics != ls.settings.diagnostics
        ):
            ls.annotations = ls.annotate(ls.profile)
            from memlens.lsp.features.diagnostics import schedule_publish

            schedule_publish(ls, final=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: MemlensServer, params: types.DidChangeTextDocumentParams) -> None:
        file = uri_to_path(params.text_document.uri)
        if file is None or ls.annotations is None or not ls.annotations.notes(file):
            return
        known = list(ls.annotations.notes(file))
        moved = ls.line_map(file)
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                moved.apply((r.start.line, r.start.character), (r.end.line, r.end.character), change.text, known)
            else:  # the whole text replaced: no line keeps its numbers for sure
                moved.apply((0, 0), (10**9, 0), "", known)
        from memlens.lsp.features.diagnostics import schedule_publish

        schedule_publish(ls, final=True, delay=0.2)
