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

    @lsp_client.feature("memlens/didUpdate")
    def did_update(_client: LanguageClient, params: object) -> None:
        updates.append(params._asdict() if hasattr(params, "_asdict") else params)  # type: ignore[arg-type]

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(_client: LanguageClient, params: None) -> None:
        return None

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_hint_refresh(_client: LanguageClient, params: None) -> None:
        return None

    marker = request.node.get_closest_marker("settings")
    settings = marker.args[0] if marker else {}
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
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
