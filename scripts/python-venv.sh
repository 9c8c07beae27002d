#!/usr/bin/env bash
# Makes .venv-X.Y: CPython X.Y with memlens installed editable and its dev tools (plus EXTRAS),
# rebuilt when pyproject.toml changes; otherwise only the native module is rebuilt
# (incrementally). Prints the venv's python. Fails if CPython X.Y is not installed.
#   scripts/python-venv.sh X.Y [EXTRAS]      e.g.  scripts/python-venv.sh 3.12 dev,bench
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1
extras=${2:-dev}
interpreter=$(scripts/find-python.sh "$version")
[[ -n $interpreter ]] || { echo "no CPython $version here" >&2; exit 1; }
venv=.venv-$version
build_tools=$(sed -n 's/^BUILD_TOOLS *:= *//p' Makefile)
wanted="$(sha1sum pyproject.toml | cut -c1-40) $extras"
{
    if [[ ! -f $venv/.memlens-deps || $(cat "$venv/.memlens-deps") != "$wanted" ]]; then
        rm -rf "$venv"
        "$interpreter" -m venv "$venv"
        "$venv/bin/python" -m pip install -q $build_tools
        "$venv/bin/python" -m pip install -q --no-build-isolation -e ".[$extras]"
        echo "$wanted" >"$venv/.memlens-deps"
    else
        # scikit-build-core keeps build/<wheel tag>: only what changed is compiled.
        "$venv/bin/python" -m pip install -q --no-build-isolation --no-deps -e .
    fi
} >&2
echo "$venv/bin/python"
