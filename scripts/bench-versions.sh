#!/usr/bin/env bash
# `make bench`: bench/run.py once per supported CPython found (each in .venv-X.Y with Memray's
# wheel for that version, sympy and pandas), then bench/compare.py side by side. To keep the
# whole run near 15 min on 2 cores it runs the four modes the budgets name (no tracemalloc) in
# 2 interleaved rounds; options given after DEFAULT_PYTHON override these.
#   scripts/bench-versions.sh DEFAULT_PYTHON [bench/run.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
default_python=$1
shift
results=()
for version in 3.10 3.11 3.12 3.13; do
    if [[ -z $(scripts/find-python.sh "$version") ]]; then
        echo "skipped: no CPython $version"
        continue
    fi
    python=$(scripts/python-venv.sh "$version" dev,bench)
    echo "=== CPython $version"
    "$python" bench/run.py --results "bench/results/$version" \
        --rounds 2 --modes memlens,memlens-fast,memray,memray-py "$@"
    results+=("bench/results/$version/latest.json")
done
"$default_python" bench/compare.py "${results[@]}"
