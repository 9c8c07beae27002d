"""Profile a Jupyter notebook: memlens.profileNotebook, and each cell's totals as a code lens.

The extension sends the notebook's code cells in order, `{notebookUri, cells: [{uri, text}],
confirmed?}`. The server writes them as one script in a private directory of the run
(lsp/cells.py: IPython lines commented out and logged, one script line per cell line), runs it as
memlens.profile runs a file (`server.run_profile`: checkpoints, progress, cancelling, the newest
run wins) and shows the profile on the cells' documents (`vscode-notebook-cell:` uris): hints,
lenses, diagnostics and hover work on them as on files. The run's lens goes on the first cell,
and every cell with memory gets `cell peak ▲ … · Σ …` on its line 1 (its module-level code,
the functions it calls included; hidden below memlens.hideBelowShare, as a function's lens).

A notebook with no code cells, a cell that does not parse (named: "cell 2, line 3") or an
exception in a cell (named likewise) is one message; the script's traceback in the log names the
cells too. The cells run with the notebook's directory as the working directory (as Jupyter
does) unless memlens.cwd says otherwise; a saved notebook outside the workspace folders needs
confirmed: true, as a script does.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from memlens.lsp import cells, handlers, noise, protocol, runner
from memlens.lsp.handlers import Host
from memlens.model import Profile
from memlens.units import format_bytes

LIVE_TITLE = "cell ▲ Σ when the run ends"


def _name(notebook_uri: str) -> str:
    return Path(unquote(urlparse(notebook_uri).path)).name or notebook_uri


def _run(server: Host, notebook: str | None, work: Path, script: Path) -> runner.Run:
    settings, roots = server.session.settings, server.session.roots
    home = os.path.dirname(notebook) if notebook else (roots[0] if roots else str(work))
    return runner.Run(
        interpreter=settings.python,
        script=str(script),
        args=[],
        capture=server.private_dir / f"{script.stem}-{uuid.uuid4().hex[:8]}.msgpack",
        cwd=settings.cwd or home,
        env={**os.environ, **settings.env},
        python_allocators=settings.python_allocators,
        follow_fork=settings.follow_fork,
        temporary_allocation_threshold=settings.temporary_allocation_threshold,
    )


def _checked(server: Host, params: protocol.ProfileNotebookParams) -> cells.NotebookScript | None:
    """The cells as one script, or None when they cannot run (the user has been told why)."""
    name = _name(params.notebook_uri)
    if not params.cells:
        server.show(f"cannot profile {name}: it has no code cells")
        return None
    for cell in params.cells:
        if not cells.is_cell(cell.uri):
            raise protocol.ParamsError(f"{cell.uri!r} is not a notebook cell's uri")
    notebook = handlers.path_of(params.notebook_uri)
    if notebook is not None and "\0" in notebook:
        raise protocol.ParamsError("the notebook uri contains a NUL character")
    if notebook and not params.confirmed and server.session.outside_workspace(notebook):
        raise handlers.needs_confirmation(notebook)
    script = cells.build([cells.Cell(c.uri, c.text) for c in params.cells])
    problem = cells.syntax_problem(script)
    if problem is not None:
        server.show(f"cannot profile {name}: {problem}")
        return None
    for number, line, text in script.commented:
        server.log(
            f"memlens: {name} cell {number}, line {line} is IPython syntax,"
            f" not run: {text.strip()}",
            types.MessageType.Info,
        )
    return script


async def profile_notebook(server: Host, raw: Any) -> protocol.ProfileResult | None:
    params = protocol.parse(protocol.ProfileNotebookParams, raw)
    script = _checked(server, params)
    if script is None:
        return None
    notebook = handlers.path_of(params.notebook_uri)
    name = _name(params.notebook_uri)
    work = server.private_dir / f"notebook-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    path = work / f"{Path(name).stem or 'notebook'}.py"
    path.write_text(script.text)
    script_file = str(path)
    run = _run(server, notebook, work, path)

    def remap(profile: Profile) -> Profile:
        return cells.remap(profile, script_file, script)

    def exception(exit_code: int) -> str | None:
        raised = cells.exception_in(run.stderr_tail, script_file, script)
        return f"{name}: {raised}" if raised else None

    try:
        return await server.run_profile(
            server,
            run,
            script.spans[0].uri,
            name,
            remap=remap,
            explain=lambda line: cells.name_lines(line, script_file, script),
            exit_problem=exception,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cell_lenses(server: Host, uri: str) -> list[types.CodeLens]:
    """`cell peak ▲ … · Σ …` on the cell's line 1: its module-level code's inclusive numbers."""
    session = server.session
    if not cells.is_cell(uri) or session.profile is None or session.annotations is None:
        return []
    line = session.current_line(uri, 1)
    module = [f for f in session.profile.lines.functions_in_file(uri) if f.function == "<module>"]
    if line is None or not module or noise.quiet_function(session, module[0]):
        return []
    usage = module[0].inclusive
    title = f"cell peak ▲ {format_bytes(usage.peak_bytes)} · Σ {format_bytes(usage.alloc_bytes)}"
    command = types.Command(
        title=LIVE_TITLE if session.live else title,  # as a function's lens (code_lens.py)
        command=protocol.SHOW_PEAK_STACK,
        arguments=[{"uri": uri, "line": line}],
        tooltip="inclusive: the cell's module-level code, the functions it calls included",
    )
    position = types.Position(line=line, character=0)
    return [types.CodeLens(range=types.Range(start=position, end=position), command=command)]


def register(server: Host) -> None:
    handlers.register(server, (protocol.PROFILE_NOTEBOOK, profile_notebook))
    server.lens_sources.append(cell_lenses)
