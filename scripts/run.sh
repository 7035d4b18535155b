#!/usr/bin/env bash
# The main job: set up, build in release mode, train the reference VAE on Fashion-MNIST, evaluate, print the tables.
# Extra arguments go to `latent train` (e.g. scripts/run.sh --epochs 20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product latent >/dev/null
out=runs/main
.build/release/latent train --epochs 3 --out "$out" "$@"
echo
echo "test-set evaluation of $out/checkpoint:"
.build/release/latent eval --checkpoint "$out"
