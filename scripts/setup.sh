#!/usr/bin/env bash
# Installs what Latent needs and is missing: BLAS/LAPACK, zlib, libpng, pkg-config and Fashion-MNIST (Debian packages).
set -euo pipefail
packages=(libopenblas-dev liblapacke-dev zlib1g-dev libpng-dev pkg-config dataset-fashion-mnist)
"$(dirname "$0")/install-packages.sh" setup "${packages[@]}"
if ! command -v swift >/dev/null; then
    echo "setup: swift is not on PATH; install the Swift toolchain (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
