"""The plugin's tests run pytest in a fresh process (pytester) so the tracker starts clean."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # pytester is usually enabled with `pytest_plugins = ["pytester"]`, but pytest refuses that
    # outside the rootdir's conftest, and this directory is collected late by `pytest tests`.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
