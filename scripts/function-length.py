"""Fail when a Python function is longer than 60 lines (make lint); the TypeScript side has
ESLint's max-lines-per-function. A function may be longer only with a `# long: <why>` comment on
its `def` line, so the exception and its reason are read where the code is.

Usage: python scripts/function-length.py DIR...
"""

from __future__ import annotations

import ast
import pathlib
import sys

LIMIT = 60
# tests/e2e/workspace is the sample project the e2e editor opens (broken.py does not parse on
# purpose); node_modules is not ours.
SKIP_DIRS = ("tests/e2e/workspace/",)
SKIP_PARTS = {"node_modules", ".venv"}


def skipped(path: pathlib.Path) -> bool:
    return bool(SKIP_PARTS.intersection(path.parts)) or path.as_posix().startswith(SKIP_DIRS)


def long_functions(path: pathlib.Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as error:
        return [f"{path}:{error.lineno}: does not parse: {error.msg}"]
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > LIMIT and "# long:" not in lines[node.lineno - 1]:
            found.append(f"{path}:{node.lineno}: {node.name} is {length} lines (limit {LIMIT})")
    return found


def main(roots: list[str]) -> int:
    found = [
        problem
        for root in roots
        for path in sorted(pathlib.Path(root).rglob("*.py"))
        if not skipped(path)
        for problem in long_functions(path)
    ]
    print("\n".join(found) if found else f"no function over {LIMIT} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
