import ArgumentParser
import Foundation
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct LatentMap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latent-map",
        abstract: "Write a PNG of the decoded manifold of a model with --latent 2 over a grid of z in [-r, r]².",
        discussion: "Columns run z₁ from -r to r, rows run z₂ from r (top) to -r (bottom).")

    @Option(help: "Run directory (or checkpoint file) written by `latent train --latent 2`.") var checkpoint: String
    @Option(help: "Output PNG file.") var out: String = "map.png"
    @Option(help: "Grid points per axis.") var grid: Int = 20
    @Option(help: "Half-width r of the square [-r, r]² of latent codes.") var range: Double = 3

    func validate() throws {
        guard grid > 0 else { throw ValidationError("--grid must be at least 1 (got \(grid))") }
        try asValidationError { try Generation.checkLatentMap(side: grid) }
        try requireFinite(range, "--range")
        guard range > 0 else { throw ValidationError("--range must be positive (got \(range))") }
    }

    func run() throws {
        try reportingErrors {
            let (model, _) = try loadTrainedModel(checkpoint)
            let image = try Generation.latentMap(model, side: grid, range: range)
            try PNGWriter.write(image, to: out)
            printError("wrote \(out) (\(image.width)×\(image.height), \(grid)×\(grid) grid over [-\(range), \(range)]²)")
        }
    }
}
