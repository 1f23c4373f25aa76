#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD/fuzz for SECONDS each, starting from its seed corpus in
# fuzz/corpus/NAME (copied to a scratch directory so the tree is not modified).
set -euo pipefail
build=${1:?build directory}
seconds=${2:-20}
shopt -s nullglob
count=0
for bin in "$build"/bin/fuzz_*; do
  [[ -x $bin && -f $bin ]] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  if [[ -d fuzz/corpus/$name ]]; then cp -r "fuzz/corpus/$name/." "$work/"; fi
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 "$work" \
    > "$build/$name.log" 2>&1 || { tail -n 60 "$build/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
  rm -rf "$work"
  count=$((count + 1))
done
echo "fuzz: $count target(s) ran clean"
