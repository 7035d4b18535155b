import ArgumentParser
import Foundation
import LatentData
import LatentModels

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint: NELBO, KL and Rec on the statically binarized test set.")

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Directory with the IDX files (default: the one the model was trained on).") var data: String?
    @Option(help: "Evaluate only the first N test images.") var limit: Int?
    @Option(help: "Worker threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be at least 1 (got \(limit))") }
        guard threads > 0 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }

    func run() throws {
        try reportingErrors {
            let saved = try Checkpoint.load(from: checkpoint)
            let model = VariationalAutoencoder<Float>(saved.configuration)
            model.load(saved)
            let dataset = try Dataset.load(directory: data ?? saved.state.data, expectedPixels: saved.configuration.inputs)
            let test = dataset.test.prefix(limit)
            let binarized = Binarization.staticBinarized(test, seed: TrainingSession.testBinarizationSeed, as: Float.self)
            let sums = Evaluator(model: model, threads: threads).evaluate(binarized: binarized, count: test.count)
            let n = Double(sums.examples)
            let result = EvaluationSummary(nelbo: sums.nelbo / n, kl: sums.kl / n, rec: sums.rec / n,
                                           examples: sums.examples)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print("| examples | NELBO | KL | Rec |")
                print("|---|---|---|---|")
                print(String(format: "| %d | %.2f | %.2f | %.2f |", result.examples, result.nelbo, result.kl, result.rec))
            }
        }
    }
}

/// The `--json` output of `latent eval`.
struct EvaluationSummary: Codable {
    var nelbo: Double
    var kl: Double
    var rec: Double
    var examples: Int
}
