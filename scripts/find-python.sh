#!/usr/bin/env bash
# Prints the path of a CPython X.Y interpreter, or nothing: pyenv's newest X.Y.*, else python X.Y
# on PATH. Usage: scripts/find-python.sh 3.12
set -euo pipefail
version=$1
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for candidate in $(ls -d "$root/versions/$version".* 2>/dev/null | sort -V -r); do
        # Only plain CPython X.Y.Z (not 3.13.0t free-threaded, not X.Y-dev).
        if [[ $(basename "$candidate") =~ ^$version\.[0-9]+$ && -x $candidate/bin/python$version ]]; then
            echo "$candidate/bin/python$version"
            exit 0
        fi
    done
fi
if command -v "python$version" >/dev/null 2>&1; then
    path=$(command -v "python$version")
    # A pyenv shim for a version that is not selected fails when run: check it.
    if "$path" -c pass >/dev/null 2>&1; then
        echo "$path"
    fi
fi
