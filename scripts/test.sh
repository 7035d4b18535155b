#!/usr/bin/env bash
# The whole test suite: set up, build everything (the CLI tests run the built executables), run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# The release benchmark, for the test that the optimized training step allocates nothing.
swift build -c release --product latent-bench
# The IDX reader and the checkpoint loader under libFuzzer, 30 s each (scripts/fuzz.sh 300 for a longer run).
scripts/fuzz.sh 30
swift test --skip-build --disable-swift-testing "$@"
