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
# The examples, built and run briefly (release, as a user runs them).
swift build -c release --product train-vae
swift build -c release --product sample-from-checkpoint
example=$(mktemp -d)
.build/release/train-vae 50 "$example/run"
.build/release/sample-from-checkpoint "$example/run" "$example/samples.png"
rm -rf "$example"
# A package that depends on Latent by version builds and runs (no unsafe flags), and the plain release build runs on
# older x86-64 CPUs under qemu-user.
scripts/check-consumer.sh
scripts/check-portable.sh
# Every public symbol of the library modules has a doc comment (DocC's coverage report).
scripts/doc-coverage.sh
# Data parallelism over MPI (2 ranks on loopback, the release `latent`): CI installs Open MPI for them; elsewhere they
# run when it is installed. mpirun refuses root without --allow-run-as-root, which the tests pass.
if [ "${CI:-}" = true ]; then scripts/setup-mpi.sh; fi
if command -v mpirun >/dev/null; then
    swift build -c release --product latent
    LATENT_DISTRIBUTED=1 LATENT_EXECUTABLE="$PWD/.build/release/latent" \
        swift test --skip-build --disable-swift-testing --filter DistributedTests
else
    echo "distributed tests: not run (Open MPI not installed; scripts/setup-mpi.sh installs it)"
fi
# Every unit and CLI test (the distributed ones ran above, under mpirun, or said why not).
swift test --skip-build --disable-swift-testing --skip DistributedTests "$@"
