"""`memlens serve [--tcp HOST:PORT]`: the language server (stdio by default)."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from memlens.lsp.server import main as serve

    return serve(argv)
