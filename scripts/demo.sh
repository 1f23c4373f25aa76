#!/usr/bin/env bash
# The main job, end to end, on the sim platform (a software simulation: INSECURE, for trying
# Chiron on a machine without TEE hardware). Run by `make demo` after the build.
#
#   owner: init, attest, upload Fashion-MNIST (train + test) encrypted; provider: registers its
#   CNN (the built-in "lenet" code); owner: trains it in the sandbox with live progress, gets the
#   validation and test accuracy and predictions drawn beside their labels, and writes the job's
#   HTML report; provider: the same job as facts only; both: audit chains verified; then a real
#   Intel TDX quote verified offline.
#
# DEMO_EPOCHS (default 1) sets the training epochs; DEMO_RECIPE (lenet, mlp or resnet; default
# lenet) the built-in code the provider registers.
# Exits non-zero as soon as any step fails.
set -euo pipefail
build=${1:-build}
bin=$build/bin
state=$build/demo
epochs=${DEMO_EPOCHS:-1}
recipe=${DEMO_RECIPE:-lenet}
fashion=/usr/share/datasets/fashion-mnist
rm -rf "$state"
mkdir -p "$state"

step() { printf '\n\033[1m==> [%3ds] %s\033[0m\n' "$SECONDS" "$*"; }

for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  [[ -f $fashion/$f ]] || { echo "demo: $fashion/$f is missing: apt-get install dataset-fashion-mnist"; exit 1; }
done

step "Starting chirond on the sim platform (INSECURE simulation) at 127.0.0.1 (free port)"
# chirond finds chiron-worker, the sandbox policy and the built-in recipes in the build tree.
policy_args=()
[[ -f $bin/sandbox-policy.txt ]] && policy_args=(--sandbox-policy "$bin/sandbox-policy.txt")
"$bin/chirond" --platform sim --listen 127.0.0.1:0 --state "$state/server" "${policy_args[@]}" \
  --port-file "$state/port" --write-sim-policy "$state/sim-policy.json" 2> "$state/chirond.log" &
server_pid=$!
trap 'kill -9 $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [[ -s $state/port ]] && break
  kill -0 $server_pid 2>/dev/null || { cat "$state/chirond.log"; echo "demo: chirond failed to start"; exit 1; }
  sleep 0.1
done
[[ -s $state/port ]] || { echo "demo: chirond did not listen in time"; exit 1; }
server=127.0.0.1:$(cat "$state/port")
echo "chirond is listening on $server; log in $state/chirond.log"

# The owner's and the provider's tools, each with its own profile (key, role, server, policy).
owner() { "$bin/chiron" --profile "$state/owner" "$@"; }
provider() { "$bin/chiron-operator" --profile "$state/provider" "$@"; }

step "Owner: creating a key and registering as a data owner"
owner init --name alice --server "$server" --policy "$state/sim-policy.json"

step "Owner: attesting the server (TLS 1.3, evidence checked against the policy, fresh nonce)"
owner attest --save "$state/attestation.json"

step "Owner: re-verifying the saved attestation offline"
"$bin/chiron" evidence verify "$state/attestation.json" --policy "$state/sim-policy.json" > /dev/null
echo "saved transcript verifies: $state/attestation.json"

step "Provider: creating a key and registering as the provider"
provider init --name acme-ml --server "$server" --policy "$state/sim-policy.json"

step "Owner: uploading Fashion-MNIST, encrypted on this machine (60,000 training images)"
owner dataset upload "$fashion/train-images-idx3-ubyte.gz" --name fmnist-train
step "Owner: uploading the Fashion-MNIST test set (10,000 images), encrypted"
owner dataset upload "$fashion/t10k-images-idx3-ubyte.gz" --name fmnist-test
owner dataset list

# A provider sees the facts of jobs that run its own recipes (the built-ins belong to nobody), so
# the provider registers its CNN: the built-in lenet's code, as any provider builds a recipe with
# chiron_recipe() (docs/guide-provider.md).
step "Provider: registering its CNN recipe ($recipe's code, built with chiron_recipe())"
provider recipe register "$build/recipes/chiron_recipe_$recipe.so" --name "acme-$recipe" \
  --version 1.0 --description "the $recipe CNN, registered by the provider"

step "Owner: the recipes on offer (public cards only; code and structure stay in the runtime)"
owner recipe list

step "Owner: training acme-$recipe for $epochs epoch(s) inside the sandbox (the runtime owns parameters and optimizer)"
owner train --dataset fmnist-train --recipe "acme-$recipe" --model fmnist-$recipe \
  --epochs "$epochs" --seed 1 | tee "$state/train.out"

step "Owner: scoring the model on the 10,000 test images (inside the runtime; aggregates only)"
owner model evaluate fmnist-$recipe --dataset fmnist-test | tee "$state/evaluate.out"

step "Owner: predictions for 6 test images (black box: classes and rounded probabilities)"
owner predict fmnist-$recipe --idx "$fashion/t10k-images-idx3-ubyte.gz" \
  --labels "$fashion/t10k-labels-idx1-ubyte.gz" --offset 100 --count 6 --top-k 3

job=$(grep -m1 -o 'job-[0-9a-f]*' "$state/train.out")
step "Owner: the job's report, a self-contained HTML page (claims, curves, test set, policy, audit)"
owner report "$job" --html "$state/report.html" --test-set fmnist-test

step "Provider: the same job as the provider sees it (facts only: no data, no metric; it shows running, with no outcome, until its time budget has run out, however early it ended)"
provider job facts

step "Owner and provider: verifying the audit chains"
owner audit --verify
provider audit --verify

testdata=../shared/testdata/attestation
if [[ -d $testdata ]]; then
  step "Verifying real hardware evidence offline: a production Intel TDX quote (as of 2023-07-01)"
  mrtd=6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb
  cat > "$state/tdx-policy.json" <<JSON
{"version": 1, "allowed_platforms": ["tdx"], "allowed_measurements": {"tdx": ["$mrtd"]},
 "tdx": {"accepted_tcb_statuses": ["UpToDate", "NotSupported"]}}
JSON
  "$bin/chiron" evidence verify "$testdata/tdx/tdx_prod_quote_SPR_E4.dat" \
    --policy "$state/tdx-policy.json" --collateral "$testdata/tdx" --at 2023-07-01 | head -n 8
fi

step "Stopping chirond (SIGTERM)"
kill -TERM $server_pid
wait $server_pid
trap - EXIT

validation=$(grep -m1 '^validation accuracy:' "$state/train.out" | awk '{print $3}')
test_accuracy=$(grep -m1 '^accuracy:' "$state/evaluate.out" | awk '{print $2}')
[[ -n $validation && -n $test_accuracy ]] || { echo "demo: no accuracy in the output"; exit 1; }
printf '\n\033[1mdemo: all steps passed in %d s: %s, %s epoch(s), validation accuracy %s, test accuracy %s\033[0m\n' \
  "$SECONDS" "$recipe" "$epochs" "$validation" "$test_accuracy"
