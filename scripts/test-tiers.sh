#!/usr/bin/env bash
# Run each test tier (a make target) in turn, keep going when one fails, and end with one summary:
# tier, result, time. Exits non-zero when any tier failed. Usage: test-tiers.sh TARGET...
set -uo pipefail
make_cmd=${MAKE:-make}
rows=()
failed=0
for tier in "$@"; do
  started=$(date +%s)
  if $make_cmd --no-print-directory "$tier"; then result=passed; else result=FAILED; failed=1; fi
  rows+=("$(printf '  %-18s %-7s %5d s' "$tier" "$result" $(( $(date +%s) - started )))")
done
echo
echo "memlens test summary"
printf '%s\n' "${rows[@]}"
exit $failed
