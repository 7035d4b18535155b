import ArgumentParser
import Foundation
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG of test images (statically binarized) each beside its reconstruction at z = μ(x).")

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Number of test images (the first N of the test set).") var count: Int = 16
    @Option(help: "Output PNG file.") var out: String = "recon.png"
    @Option(help: "Directory with the IDX files (default: the one the model was trained on).") var data: String?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be at least 1 (got \(count))") }
        try asValidationError { try Generation.checkReconstructionCount(count) }
    }

    func run() throws {
        try reportingErrors {
            let (model, saved) = try loadTrainedModel(checkpoint)
            let test = try loadTestImages(saved, data: data)
            let image = try Generation.reconstructionGrid(model, testImages: test, count: count)
            try PNGWriter.write(image, to: out)
            printError("wrote \(out) (\(image.width)×\(image.height), \(count) images and their reconstructions)")
        }
    }
}
