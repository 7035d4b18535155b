// Loads a trained model from a run directory and writes a grid of samples from its prior as a PNG.
//
//   swift run -c release sample-from-checkpoint [RUN_DIRECTORY] [OUT.png]    default: runs/example, samples.png
import Foundation
import LatentData
import LatentEvaluation
import LatentModels
import LatentTraining

let arguments = CommandLine.arguments.dropFirst()
let run = arguments.first ?? "runs/example"
let out = arguments.dropFirst().first ?? "samples.png"

do {
    let checkpoint = try Checkpoint.load(from: run)
    let model = VariationalAutoencoder<Float>(checkpoint.configuration)
    model.load(checkpoint)
    // z ~ p(z), then the decoder's mean image of each z.
    let grid = try Generation.sampleGrid(model, count: 64, seed: 0)
    try PNGWriter.write(grid, to: out)
    print("wrote \(out): 64 samples of the \(checkpoint.configuration.model) in \(run)")
} catch {
    print("error: \(error)")
    exit(1)
}
