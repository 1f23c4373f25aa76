#!/usr/bin/env bash
# Installs, from Debian 12 packages only, everything Chiron needs to build, test and demo.
# Idempotent: does nothing when every package is already present. Run as root (or via sudo).
# `--demo`: only what `make demo` builds and runs (no clang, chromium or Python packages).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # trusted runtime, client and shared code
  libssl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev libseccomp-dev nlohmann-json3-dev libcli11-dev zlib1g-dev libpng-dev
  # tests and benchmarks (configuring the tree needs them, the demo too)
  libgtest-dev libgmock-dev libbenchmark-dev
  # sandboxed worker (the only part that links libtorch) and real data
  libtorch-dev libopenblas0-openmp dataset-fashion-mnist
)
[[ ${1:-} == --demo ]] || packages+=(
  # fuzzing (clang's libFuzzer) and formatting
  clang-14 lld-14 libclang-rt-14-dev clang-format
  # browser test of the owner's report
  chromium
  # the Python owner client and its test (python3-cryptography parses the RA-TLS certificate);
  # PyTorch as users run it, the baseline of the benches
  python3-grpcio python3-numpy python3-cryptography python3-torch
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
  echo "install-deps: this takes minutes (libtorch and its dependencies are about 550 MB)"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libtorch runs Linear layers ~10x slower on the reference BLAS and the pthread OpenBLAS fights
# its OpenMP threads (see ../shared/NOTES.md): select OpenBLAS's OpenMP variant.
alt=libblas.so.3-x86_64-linux-gnu
want=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
if [[ -e $want ]] && [[ $(readlink -f /etc/alternatives/$alt 2>/dev/null) != "$want" ]]; then
  if [[ $(id -u) -eq 0 ]]; then update-alternatives --quiet --set "$alt" "$want"; else sudo update-alternatives --quiet --set "$alt" "$want"; fi
fi
alt=liblapack.so.3-x86_64-linux-gnu
want=/usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3
if [[ -e $want ]] && [[ $(readlink -f /etc/alternatives/$alt 2>/dev/null) != "$want" ]]; then
  if [[ $(id -u) -eq 0 ]]; then update-alternatives --quiet --set "$alt" "$want"; else sudo update-alternatives --quiet --set "$alt" "$want"; fi
fi
exit 0
