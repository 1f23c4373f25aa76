#!/usr/bin/env bash
# One epoch of LeNet on Fashion-MNIST end to end, Chiron against PyTorch as a user runs it, timed
# as whole commands in the same run (docs/performance.md):
#   A: `chiron train --dataset fmnist --recipe lenet --epochs 1` against a local chirond (sim
#      platform): the job's queueing, dataset load and decryption, worker start, 54,000 training
#      images, the 6,000-image validation pass, the sealed checkpoint and model, the CLI's wait;
#   B: `/usr/bin/python3 bench/torch_baseline.py epoch`: the same work in PyTorch with its
#      defaults (interpreter and torch import, reading the gzip files, the split, one epoch, the
#      validation pass).
# The set-up (chirond start, owner init, attestation, encrypted upload) is not timed. A and B run
# in turn, A B A B ..., and the ratio B/A is taken pair by pair (>= 1: Chiron is as fast or
# faster); the median of the pairs is the figure (goal >= 0.95).
#
#   bench/train_e2e.sh [BUILD] [PAIRS]      (defaults: build 3)
#   THREADS=1 bench/train_e2e.sh ...        (threads of the worker and of PyTorch; default 2)
set -euo pipefail
build=${1:-build}
pairs=${2:-3}
threads=${THREADS:-2}
bin=$build/bin
here=$(cd "$(dirname "$0")" && pwd)
fashion=/usr/share/datasets/fashion-mnist
state=$(mktemp -d /tmp/train_e2e.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    { kill -9 "$server_pid"; wait "$server_pid"; } 2>/dev/null
  fi
  rm -rf "$state"
}
trap cleanup EXIT

policy_args=()
[[ -f $bin/sandbox-policy.txt ]] && policy_args=(--sandbox-policy "$bin/sandbox-policy.txt")
"$bin/chirond" --platform sim --listen 127.0.0.1:0 --state "$state/server" "${policy_args[@]}" \
  --worker-threads "$threads" --port-file "$state/port" \
  --write-sim-policy "$state/sim-policy.json" 2> "$state/chirond.log" &
server_pid=$!
for _ in $(seq 1 300); do
  [[ -s $state/port ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$state/chirond.log"; echo "train_e2e: chirond failed"; exit 1; }
  sleep 0.1
done
server=127.0.0.1:$(cat "$state/port")
owner() { "$bin/chiron" --profile "$state/owner" "$@"; }
# (The CLI warns on stderr that the sim platform protects nothing: it does, here.)
owner init --name bench --server "$server" --policy "$state/sim-policy.json" > /dev/null 2>&1
owner attest > /dev/null 2>&1
owner dataset upload "$fashion/train-images-idx3-ubyte.gz" --name fmnist > /dev/null 2>&1

now() { date +%s.%N; }
echo "train_e2e: one epoch of LeNet, Fashion-MNIST 54,000 train / 6,000 validation, batch 64," \
     "$threads thread(s); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %12s %12s %14s\n' pair "chiron (s)" "PyTorch (s)" "PyTorch/chiron"
ratios=()
for i in $(seq 1 "$pairs"); do
  start=$(now)
  owner train --dataset fmnist --recipe lenet --model "cnn-$i" --epochs 1 --seed "$i" --json \
    > "$state/chiron-$i.json" 2> "$state/chiron-$i.err" ||
    { cat "$state/chiron-$i.err"; echo "train_e2e: chiron train failed"; exit 1; }
  chiron_seconds=$(echo "$(now) - $start" | bc -l)
  start=$(now)
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT /usr/bin/python3 "$here/torch_baseline.py" epoch \
    --threads "$threads" --seed "$i" > "$state/torch-$i.txt"
  torch_seconds=$(echo "$(now) - $start" | bc -l)
  ratio=$(echo "$torch_seconds / $chiron_seconds" | bc -l)
  ratios+=("$ratio")
  printf '%-5s %12.2f %12.2f %14.3f\n' "$i" "$chiron_seconds" "$torch_seconds" "$ratio"
done
# The median (for an even count, the lower of the middle two: use an odd PAIRS).
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
printf 'median PyTorch/chiron over %d pairs: %.3f (goal >= 0.95); load average at end: %s\n' \
  "$pairs" "$median" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "last PyTorch run: $(tail -1 "$state/torch-$pairs.txt")"
