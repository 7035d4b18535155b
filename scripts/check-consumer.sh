#!/usr/bin/env bash
# Proof of adoption: clones this repository into a temporary directory, tags the clone, and builds and runs a consumer
# package that depends on it by version (`.package(url: "file://…", from: …)`), in debug and release. SwiftPM refuses
# a versioned dependency whose targets carry unsafe build flags, so this fails if any library target does.
#
#   scripts/check-consumer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$PWD" "$work/latent"
git -C "$work/latent" tag 9.9.0
mkdir -p "$work/app/Sources/App"
cat > "$work/app/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "App",
    dependencies: [.package(url: "file://$work/latent", from: "9.9.0")],
    targets: [
        .executableTarget(name: "App", dependencies: [
            .product(name: "LatentModels", package: "latent"),
            .product(name: "LatentEvaluation", package: "latent"),
            .product(name: "LatentTraining", package: "latent"),
        ]),
    ]
)
SWIFT
cat > "$work/app/Sources/App/main.swift" <<'SWIFT'
import LatentData
import LatentEvaluation
import LatentModels
import LatentTraining

// A tiny model on synthetic images: one training step, the test NELBO and an IWAE bound through the public API.
let configuration = ModelConfiguration(model: .vae, inputs: 16, hidden: [8], latent: 2)
try configuration.validate()
let model = VariationalAutoencoder<Float>(configuration)
model.initialize(seed: 1)
let pixels = (0..<(64 * 16)).map { UInt8(($0 * 37) % 256) }
let images = ImageSet(count: 64, rows: 4, columns: 4, pixels: pixels)
let trainer = try Trainer(model: model, images: images, batchSize: 16, learningRate: 1e-3, seed: 0, threads: 1)
trainer.beginEpoch(0)
let sums = try trainer.trainStep(batch: 0)
let inputs = Binarization.evaluationInputs(images, mode: .dynamic, seed: 0, as: Float.self)
let test = try Evaluator(model: model, threads: 1).evaluate(binarized: inputs, count: 64)
let bounds = try ImportanceBoundEvaluator(model: model, threads: 1).evaluate(binarized: inputs, count: 8,
                                                                              sampleCounts: [10])
print("consumer: step loss \(sums.loss / Double(sums.examples)), test NELBO \(test.nelbo / Double(test.examples)), "
      + "-L_10 \(bounds.bounds[10]!)")
SWIFT
for configuration in debug release; do
    echo "check-consumer: building the consumer package ($configuration)" >&2
    (cd "$work/app" && swift build -c "$configuration" 2>&1 | tail -n 3 && swift run -c "$configuration" --skip-build App)
done
echo "check-consumer: a package depending on Latent by version builds and runs in debug and release" >&2
