#!/usr/bin/env bash
# Portability of release binaries: a plain `swift build -c release` of `latent` must run on any x86-64 CPU. Runs a
# short training under qemu-user emulating older CPUs (Haswell: AVX2; Nehalem: SSE4.2, no AVX), installing
# Debian's qemu-user if it is missing.
#
#   scripts/check-portable.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" != x86_64 ]; then
    echo "check-portable: skipped: qemu-x86_64 emulates x86-64 CPUs, and this machine is $(uname -m)" >&2
    exit 0
fi
if ! command -v qemu-x86_64 >/dev/null; then
    echo "check-portable: installing qemu-user" >&2
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user >/dev/null
fi
swift build -c release --product latent 2>&1 | tail -n 1
latent=$(swift build -c release --show-bin-path)/latent
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for cpu in Haswell Nehalem; do
    echo "check-portable: latent train under qemu-x86_64 -cpu $cpu" >&2
    # A kernel forced through OPENBLAS_CORETYPE (this machine's environment sets Haswell) would be run on the
    # emulated CPU too; the check is of this binary and OpenBLAS's own choice, so the variable is not passed.
    env -u OPENBLAS_CORETYPE qemu-x86_64 -cpu "$cpu" "$latent" train --iterations 20 --train-limit 2000 --test-limit 200 --threads 2 \
        --out "$out/$cpu" 2>&1 | tail -n 1
done
echo "check-portable: the plain release build runs on Haswell and Nehalem" >&2
