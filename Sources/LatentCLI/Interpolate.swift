import ArgumentParser
import Foundation
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG of decoded straight lines in latent space between the posterior means of test image pairs.",
        discussion: "Row p walks from μ of test image 2p to μ of test image 2p+1 in --steps equal steps, ends included.")

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Output PNG file.") var out: String = "interp.png"
    @Option(help: "Number of image pairs (rows).") var pairs: Int = 8
    @Option(help: "Points per line, both ends included (columns).") var steps: Int = 10
    @Option(help: "Directory with the IDX files (default: the one the model was trained on).") var data: String?

    func validate() throws {
        guard pairs > 0 else { throw ValidationError("--pairs must be at least 1 (got \(pairs))") }
        guard steps >= 2 else { throw ValidationError("--steps must be at least 2 (got \(steps))") }
        try asValidationError { try Generation.checkInterpolation(pairs: pairs, steps: steps) }
    }

    func run() throws {
        try reportingErrors {
            let (model, saved) = try loadTrainedModel(checkpoint)
            let test = try loadTestImages(saved, data: data)
            let image = try Generation.interpolationGrid(model, testImages: test, pairs: pairs, steps: steps)
            try PNGWriter.write(image, to: out)
            printError("wrote \(out) (\(image.width)×\(image.height), \(pairs) lines of \(steps) steps)")
        }
    }
}
