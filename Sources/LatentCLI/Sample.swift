import ArgumentParser
import Foundation
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw z from the prior and write a PNG grid of the decoder means (sigmoid of the logits).")

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Number of samples (laid out in a near-square grid).") var count: Int = 100
    @Option(help: "Output PNG file.") var out: String = "samples.png"
    @Option(help: "Seed of the prior draws.") var seed: UInt64 = 0

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be at least 1 (got \(count))") }
        try asValidationError { try Generation.checkSampleCount(count) }
    }

    func run() throws {
        try reportingErrors {
            let (model, _) = try loadTrainedModel(checkpoint)
            let image = try Generation.sampleGrid(model, count: count, seed: seed)
            try PNGWriter.write(image, to: out)
            printError("wrote \(out) (\(image.width)×\(image.height), \(count) samples)")
        }
    }
}

/// The Float model stored in a run directory (or checkpoint file), with its checkpoint.
func loadTrainedModel(_ path: String) throws -> (VariationalAutoencoder<Float>, Checkpoint) {
    let saved = try Checkpoint.load(from: path)
    let model = VariationalAutoencoder<Float>(saved.configuration)
    model.load(saved)
    return (model, saved)
}

/// The test images of the dataset a checkpoint was trained on (or of `--data`), checked against the model's inputs.
func loadTestImages(_ saved: Checkpoint, data: String?) throws -> ImageSet {
    try Dataset.load(directory: data ?? saved.state.data, expectedPixels: saved.configuration.inputs).test
}
