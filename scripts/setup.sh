#!/usr/bin/env bash
# Installs what Latent needs and is missing: BLAS/LAPACK, zlib, libpng, pkg-config and Fashion-MNIST (Debian packages).
set -euo pipefail
packages=(libopenblas-dev liblapacke-dev zlib1g-dev libpng-dev pkg-config dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
    echo "setup: swift is not on PATH; install the Swift toolchain (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
