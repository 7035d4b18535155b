#!/usr/bin/env bash
# The main job: set up, build in release mode, train the reference VAE on Fashion-MNIST for a few epochs, evaluate it
# (NELBO, KL, Rec, IWAE bounds, active units) and draw sample and reconstruction grids.
# Extra arguments go to `latent train` (e.g. scripts/run.sh --epochs 20).
# It builds the tuned configuration (LATENT_TUNED=1: -Ounchecked, compiled for this machine's CPU) in .build-tuned;
# a plain `swift build -c release` gives binaries that run on any x86-64 CPU (docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
LATENT_TUNED=1 swift build -c release --product latent --scratch-path .build-tuned
latent=.build-tuned/release/latent
out=runs/main
"$latent" train --epochs 3 --out "$out" "$@"
echo
echo "test-set evaluation of $out/checkpoint (static binarization, 10 000 images; IWAE on the first 1 000):"
"$latent" eval --checkpoint "$out"
"$latent" eval --checkpoint "$out" --limit 1000 --iw 1,10,100
"$latent" sample --checkpoint "$out" --count 100 --out "$out/samples.png"
"$latent" reconstruct --checkpoint "$out" --count 16 --out "$out/recon.png"
echo "wrote $out/{checkpoint,metrics.jsonl,options.json,samples.png,recon.png}"
