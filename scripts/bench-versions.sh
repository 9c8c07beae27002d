#!/usr/bin/env bash
# `make bench`: bench/run.py once per supported CPython found (each in .venv-X.Y with Memray's
# wheel for that version, sympy and pandas), then bench/compare.py side by side. To keep the
# whole run near 15 min on 2 cores it runs the four modes the budgets name (no tracemalloc) in
# 2 interleaved rounds (one round of all 12 workloads took 265-296 s per version with the 2 cores
# at load 15; unloaded the workloads run 3-5x faster); options after DEFAULT_PYTHON override
# these (--rounds 3 for steadier medians).
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
    "$python" bench/snapshot.py
    results+=("bench/results/$version/latest.json")
done
"$default_python" bench/compare.py "${results[@]}"
