#!/usr/bin/env bash
# The main job, end to end, on the sim platform (a software simulation: INSECURE, for trying
# Chiron on a machine without TEE hardware). Run by `make demo` after the build.
# Exits non-zero as soon as any step fails.
set -euo pipefail
build=${1:-build}
bin=$build/bin
state=$build/demo
rm -rf "$state"
mkdir -p "$state"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting chirond on the sim platform (INSECURE simulation) at 127.0.0.1 (free port)"
"$bin/chirond" --platform sim --listen 127.0.0.1:0 --state "$state/server" \
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

step "Owner: attesting the server (TLS 1.3, evidence checked against the policy, fresh nonce)"
"$bin/chiron" attest --server "$server" --policy "$state/sim-policy.json" --save "$state/attestation.json"

step "Owner: re-verifying the saved attestation offline"
"$bin/chiron" evidence verify "$state/attestation.json" --policy "$state/sim-policy.json" > /dev/null
echo "saved transcript verifies: $state/attestation.json"

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
echo "demo: all steps passed"
