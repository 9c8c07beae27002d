"""The language server as a real subprocess over stdio, driven by pytest-lsp's client."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(FIXTURES / "alloc.py", root / "alloc.py")
    return root


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "memlens.lsp"]))
async def client(lsp_client: LanguageClient, workspace: Path, request: pytest.FixtureRequest):
    updates: list[dict] = []
    lsp_client.memlens_updates = updates  # type: ignore[attr-defined]
    # What reached the client, in order: "final", "live", "codeLens/refresh", "inlayHint/refresh"
    events: list[str] = []
    lsp_client.memlens_events = events  # type: ignore[attr-defined]

    @lsp_client.feature("memlens/didUpdate")
    def did_update(_client: LanguageClient, params: object) -> None:
        update = params._asdict() if hasattr(params, "_asdict") else params
        updates.append(update)  # type: ignore[arg-type]
        events.append("final" if update["final"] else "live")  # type: ignore[index]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(_client: LanguageClient, params: None) -> None:
        events.append("codeLens/refresh")

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_hint_refresh(_client: LanguageClient, params: None) -> None:
        events.append("inlayHint/refresh")

    marker = request.node.get_closest_marker("settings")
    settings = marker.args[0] if marker else {}
    capabilities = client_capabilities("visual-studio-code")
    # pytest-lsp's VS Code snapshot predates inlay hints; vscode-languageclient 11 (the
    # extension's client) declares their refresh.
    assert capabilities.workspace is not None
    capabilities.workspace.inlay_hint = types.InlayHintWorkspaceClientCapabilities(
        refresh_support=True
    )
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={"memlens": settings},
        )
    )
    yield
    await lsp_client.shutdown_session()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(dict): initializationOptions.memlens for the server"
    )
