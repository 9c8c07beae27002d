"""Profiling a notebook's cells: the cell -> script mapping on its own, then memlens.profileNotebook
over the real server, the real tracker and the cells' own documents (vscode-notebook-cell: uris)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from test_server import command, messages_after

from memlens.lsp import cells
from memlens.lsp.handlers import path_of, plain, uri_of

on_a_loop = pytest.mark.asyncio(loop_scope="function")

CELLS = [
    "import os\n!pip list\nsmall = list(range(10))",
    "%time n = 10\nbig = bytearray(10 * 2**20)",
    "size = len(big)\nprint('size', size)",
]


def cell_uri(notebook: Path, number: int) -> str:
    return f"vscode-notebook-cell:{notebook}#W{number}sZmlsZQ%3D%3D"


# --- the mapping, on its own --------------------------------------------------------------------


def test_script_lines_map_back_to_their_cell_and_line() -> None:
    script = cells.build([cells.Cell(f"c{i}", text) for i, text in enumerate(CELLS)])
    lines = script.text.split("\n")
    assert lines[:7] == [
        "import os",
        "pass  # !pip list",
        "small = list(range(10))",
        "pass  # %time n = 10",
        "big = bytearray(10 * 2**20)",
        "size = len(big)",
        "print('size', size)",
    ]
    assert script.commented == [(1, 2, "!pip list"), (2, 1, "%time n = 10")]
    assert [(s.uri, s.number, s.start, s.lines) for s in script.spans] == [
        ("c0", 1, 1, 3),
        ("c1", 2, 4, 2),
        ("c2", 3, 6, 2),
    ]
    found = script.locate(5)
    assert found is not None and (found[0].uri, found[1]) == ("c1", 2)
    assert script.locate(8) is None
    assert script.where(7) == "cell 3, line 2"


def test_magics_keep_blocks_parsing_and_cell_magics_comment_their_cell() -> None:
    script = cells.build(
        [
            cells.Cell("a", "for i in range(2):\n    !echo hi\n"),
            cells.Cell("b", "%%bash\necho one\n\necho two"),
            cells.Cell("c", "%%time\nx = 1"),
        ]
    )
    assert script.text.split("\n")[:9] == [
        "for i in range(2):",
        "    pass  # !echo hi",
        "",
        "# %%bash",
        "# echo one",
        "",
        "# echo two",
        "pass  # %%time",
        "x = 1",
    ]
    assert cells.syntax_problem(script) is None
    assert script.commented == [(1, 2, "    !echo hi"), (2, 1, "%%bash"), (3, 1, "%%time")]


def test_a_syntax_error_names_its_cell_and_line() -> None:
    script = cells.build([cells.Cell("a", "x = 1"), cells.Cell("b", "y = 2\ndef f(:\n")])
    assert cells.syntax_problem(script) == "syntax error in cell 2, line 2: invalid syntax"


def test_tracebacks_name_the_cells() -> None:
    script = cells.build([cells.Cell("a", "x = 1"), cells.Cell("b", "y = 2\n1 / 0")])
    line = '  File "/private/nb.py", line 3, in <module>'
    assert cells.name_lines(line, "/private/nb.py", script) == "  cell 2, line 2, in <module>"
    stderr = [
        "Traceback (most recent call last):",
        line,
        "    1 / 0",
        "ZeroDivisionError: division by zero",
        "memlens: wrote /private/nb.msgpack (peak 8.0 KiB)",
    ]
    assert cells.exception_in(stderr, "/private/nb.py", script) == (
        "cell 2, line 2 raised ZeroDivisionError: division by zero"
    )
    assert cells.exception_in(["killed"], "/private/nb.py", script) is None


def test_cell_uris_are_their_own_file_names() -> None:
    uri = "vscode-notebook-cell:/home/u/nb.ipynb#W0sZmlsZQ%3D%3D"
    assert path_of(uri) == uri and uri_of(uri) == uri
    assert path_of("untitled:Untitled-1") is None


# --- over the server ----------------------------------------------------------------------------


def open_cells(client: LanguageClient, notebook: Path, texts: list[str]) -> list[dict[str, str]]:
    sent = []
    for number, text in enumerate(texts):
        uri = cell_uri(notebook, number)
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        sent.append({"uri": uri, "text": text})
    return sent


async def profile_notebook(client: LanguageClient, notebook: Path, sent: list[Any]) -> Any:
    return await command(
        client, "memlens.profileNotebook", {"notebookUri": notebook.as_uri(), "cells": sent}
    )


async def hints_of(client: LanguageClient, uri: str) -> dict[int, str]:
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=9, character=0)
            ),
        )
    )
    return {h.position.line: "".join(p.value for p in h.label) for h in hints or []}


async def lenses_of(client: LanguageClient, uri: str) -> list[tuple[int, str, Any]]:
    found = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    return [
        (lens.range.start.line, lens.command.title, plain(lens.command.arguments))
        for lens in found or []
        if lens.command is not None
    ]


@on_a_loop
async def test_profiling_a_notebook_shows_its_numbers_on_the_cells(
    client: LanguageClient, workspace: Path
) -> None:
    notebook = workspace / "nb.ipynb"
    sent = open_cells(client, notebook, CELLS)
    result = await profile_notebook(client, notebook, sent)
    assert (result["exitCode"], result["cancelled"], result["peakText"]) == (0, False, "10.0 MiB")
    first, second, third = (s["uri"] for s in sent)

    # cell 2, line 2 (0-based 1) allocated the 10 MiB; the magic above it did not shift it
    assert (await hints_of(client, second))[1] == "▲ 10.0 MiB · Σ 10.0 MiB"
    peak = client.diagnostics[second][0]
    assert (peak.range.start.line, peak.code) == (1, "peak")
    # the buffer, the bytearray object and (here) the module's globals growing for `big`
    assert re.fullmatch(
        r"charged to this line: 10\.0 MiB at peak \(\d allocations\) · 10\.0 MiB allocated",
        peak.message,
    )
    assert (0, "cell peak ▲ 10.0 MiB · Σ 10.0 MiB", [{"uri": second, "line": 0}]) in (
        await lenses_of(client, second)
    )
    # the run's lens on the first cell; the third only read `big`
    assert any(
        line == 0 and title.startswith("memlens: peak 10.0 MiB at ")
        for line, title, _ in await lenses_of(client, first)
    )
    assert not any(h.startswith("▲ 10") for h in (await hints_of(client, third)).values())

    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=second),
            position=types.Position(line=1, character=2),
        )
    )
    assert hover.contents.value.splitlines()[2].startswith("| peak | 10.0 MiB (")

    logged = [m.message for m in client.log_messages]
    assert "memlens: nb.ipynb cell 2, line 1 is IPython syntax, not run: %time n = 10" in logged
    assert "memlens: nb.ipynb cell 1, line 2 is IPython syntax, not run: !pip list" in logged
    assert any(line.endswith("size 10485760") for line in logged)  # cell 3 ran after cell 2


@on_a_loop
async def test_a_function_of_one_cell_called_from_another(
    client: LanguageClient, workspace: Path
) -> None:
    notebook = workspace / "nb.ipynb"
    sent = open_cells(
        client, notebook, ["def make(n):\n    return bytearray(n)", "x = make(4 * 2**20)"]
    )
    result = await profile_notebook(client, notebook, sent)
    assert result["peakText"] == "4.0 MiB"
    first, second = (s["uri"] for s in sent)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=second),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=1, character=0)
            ),
        )
    )
    (hint,) = hints
    assert "".join(p.value for p in hint.label) == "▲ 4.0 MiB · Σ 4.0 MiB"
    site = hint.label[0].location  # where it was allocated: cell 1's line 1 (0-based)
    assert (site.uri, site.range.start.line) == (first, 1)
    titles = {(line, title) for line, title, _ in await lenses_of(client, first)}
    assert (0, "▲ 4.0 MiB · Σ 4.0 MiB") in titles  # the function `make`
    assert not any(title.startswith("cell peak") for _, title in titles)  # `def` alone: hidden
    assert (0, "cell peak ▲ 4.0 MiB · Σ 4.0 MiB") in {
        (line, title) for line, title, _ in await lenses_of(client, second)
    }


@on_a_loop
async def test_a_syntax_error_names_the_cell(client: LanguageClient, workspace: Path) -> None:
    notebook = workspace / "nb.ipynb"
    sent = open_cells(client, notebook, ["x = 1", "y = 2\ndef f(:\n    pass"])
    shown, result = await messages_after(client, profile_notebook(client, notebook, sent))
    assert result is None
    assert shown == ["memlens: cannot profile nb.ipynb: syntax error in cell 2, line 2:"
                     " invalid syntax"]  # fmt: skip


@on_a_loop
async def test_an_exception_names_the_cell(client: LanguageClient, workspace: Path) -> None:
    notebook = workspace / "nb.ipynb"
    sent = open_cells(client, notebook, ["kept = bytearray(3 * 2**20)", "x = 1\n1 / 0"])
    shown, result = await messages_after(client, profile_notebook(client, notebook, sent))
    assert (result["exitCode"], result["peakText"]) == (1, "3.0 MiB")
    assert shown == ["memlens: nb.ipynb: cell 2, line 2 raised ZeroDivisionError: division by zero"]
    assert (await hints_of(client, sent[0]["uri"]))[0] == "▲ 3.0 MiB · Σ 3.0 MiB"
    logged = [m.message for m in client.log_messages]
    assert any(line.endswith("cell 2, line 2, in <module>") for line in logged)


@on_a_loop
async def test_a_notebook_without_code_cells(client: LanguageClient, workspace: Path) -> None:
    shown, result = await messages_after(
        client, profile_notebook(client, workspace / "empty.ipynb", [])
    )
    assert (shown, result) == (["memlens: cannot profile empty.ipynb: it has no code cells"], None)


@on_a_loop
async def test_a_notebook_outside_the_workspace_needs_confirmation(
    client: LanguageClient, workspace: Path
) -> None:
    notebook = workspace.parent / "elsewhere.ipynb"
    notebook.write_text("{}")
    sent = [{"uri": cell_uri(notebook, 0), "text": "print('ran')"}]
    with pytest.raises(JsonRpcException) as refused:
        await profile_notebook(client, notebook, sent)
    assert refused.value.data == {"needsConfirmation": True, "path": str(notebook)}
    result = await command(
        client,
        "memlens.profileNotebook",
        {"notebookUri": notebook.as_uri(), "cells": sent, "confirmed": True},
    )
    assert result["exitCode"] == 0
    assert any(m.message == "[elsewhere.ipynb] ran" for m in client.log_messages)


@on_a_loop
@pytest.mark.parametrize(
    ("cells_sent", "problem"),
    [
        (
            [{"uri": "file:///w/a.py", "text": "x = 1"}],
            "'file:///w/a.py' is not a notebook cell's uri",
        ),
        (["x = 1"], "'cells' must be a list of {uri, text} objects, not a list"),
        (
            [{"uri": "vscode-notebook-cell:/a#W0"}],
            "'cells' must be a list of {uri, text} objects, not a list",
        ),
    ],
)
async def test_cells_that_do_not_fit_are_refused(
    client: LanguageClient, workspace: Path, cells_sent: list[Any], problem: str
) -> None:
    with pytest.raises(JsonRpcException) as refused:
        await profile_notebook(client, workspace / "nb.ipynb", cells_sent)
    assert refused.value.code == -32602
    assert refused.value.message == f"invalid arguments for memlens.profileNotebook: {problem}"
