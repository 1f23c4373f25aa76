#!/usr/bin/env bash
# Runs the benchmarks of BUILD by hand (`make bench`): each prints its figures and the ratio
# against a baseline measured in the same run (docs/testing.md lists them). A benchmark this
# build does not define (train_bench and predict_isolation_bench without libtorch) is skipped
# with a note; one that fails to build or run fails the script.
set -uo pipefail
build=${1:?build directory}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
for bench in crypto_bench attest_bench dataset_bench upload_bench load_bench train_bench \
             predict_isolation_bench covert_channel_bench; do
  if ! cmake --build "$build" --target "$bench" > "$log" 2>&1; then
    if grep -q "unknown target" "$log"; then
      echo "bench: $bench is not defined in this build, skipped"
    else
      cat "$log"
      echo "bench: $bench did not build"
      failed=1
    fi
    continue
  fi
  echo "== $bench"
  "$build/bin/$bench" || { echo "bench: $bench FAILED"; failed=1; }
done
# End to end: `chiron train` of one LeNet epoch against the same work in PyTorch (needs the
# libtorch build: the worker and the recipe).
if [[ -f $build/recipes/chiron_recipe_lenet.so && -x $build/bin/chirond ]]; then
  echo "== train_e2e"
  bash "$(dirname "$0")/../bench/train_e2e.sh" "$build" 3 || { echo "bench: train_e2e FAILED"; failed=1; }
fi
exit $failed
