#!/usr/bin/env bash
# The tiers that touch the interpreter (native, plugin, reports, language server, attach) on every
# supported CPython other than the default one, each in its own .venv-X.Y with its own build.
# A version that is not installed is one visible "skipped" line, never a silent pass.
#   scripts/test-versions.sh DEFAULT_PYTHON [X.Y ...]
set -euo pipefail
cd "$(dirname "$0")/.."
default_python=$1
shift
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(3.10 3.11 3.12 3.13)
default_version=$("$default_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tiers=(tests/native tests/plugin tests/reports tests/types tests/lsp tests/attach tests/objects)
summary=()
status=0

for version in "${versions[@]}"; do
    if [[ $version == "$default_version" ]]; then
        summary+=("CPython $version: covered by test-python (the default interpreter)")
        continue
    fi
    interpreter=$(scripts/find-python.sh "$version")
    if [[ -z $interpreter ]]; then
        summary+=("skipped: no CPython $version")
        echo "skipped: no CPython $version (install it, e.g. pyenv install $version)"
        continue
    fi
    echo "=== CPython $version ($interpreter): ${tiers[*]}"
    scripts/python-venv.sh "$version" >/dev/null
    log=build/test-$version.log
    mkdir -p build
    if ".venv-$version/bin/python" -m pytest -q -m "not e2e" "${tiers[@]}" 2>&1 | tee "$log"; then
        summary+=("CPython $version: $(tail -n 1 "$log")")
    else
        summary+=("CPython $version: FAILED: $(tail -n 1 "$log")")
        status=1
    fi
done

echo
echo "=== per-version tiers"
printf '  %s\n' "${summary[@]}"
exit $status
