import ArgumentParser
import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

/// Comma-separated sample counts for `--iw`.
struct SampleCounts: ExpressibleByArgument {
    var values: [Int]
    init?(argument: String) {
        guard let values = commaSeparated(argument, { Int($0) }) else { return nil }
        self.values = values
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint: NELBO, KL, Rec, IWAE-m bounds and active units on the static test set.")

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Directory with the IDX files (default: the one the model was trained on).") var data: String?
    @Option(parsing: .unconditional, help: "Evaluate only the first N test images.") var limit: Int?
    @Option(parsing: .unconditional,
            help: "IWAE bounds to estimate, e.g. 1,10,100,1000,5000 (streamed: memory does not grow with m).")
    var iw: SampleCounts?
    @Option(help: "cs236: the homework's fixed 100-image (10 per class) subset, NELBO over 100 repeats, IWAE-1,10,100,1000.")
    var preset: Preset?
    @Option(parsing: .unconditional, help: "Seed of the evaluation noise.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Worker threads, at most \(WorkerPool.maximumSize).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be at least 1 (got \(limit))") }
        try validateThreads(threads)
        if let bad = iw?.values.first(where: { $0 < 1 }) {
            throw ValidationError("--iw sample counts must be at least 1 (got \(bad)), e.g. --iw 1,10,100")
        }
        if let twice = firstRepeated(iw?.values ?? []) {
            throw ValidationError("--iw lists \(twice) twice; name each bound once")
        }
    }

    func run() throws {
        try reportingErrors {
            if let warning = TrainingFlags.oversubscriptionWarning(threads: threads) { printError(warning) }
            let (model, saved) = try loadTrainedModel(checkpoint)
            let dataset = try Dataset.load(directory: data ?? saved.state.data, expectedPixels: saved.configuration.inputs)
            let all = Binarization.evaluationInputs(dataset.test, mode: model.configuration.binarization,
                                                    seed: TrainingSession.testBinarizationSeed, as: Float.self)
            var indices = Array(0..<dataset.test.count)
            var repeats = 1
            var sampleCounts = iw?.values ?? []
            if preset == .cs236 {
                indices = try EvaluationProtocol.cs236Subset(testLabels: dataset.testLabels)
                repeats = 100
                if iw == nil { sampleCounts = [1, 10, 100, 1000] }
            }
            if let limit { indices = Array(indices.prefix(limit)) }
            let d = saved.configuration.inputs
            var binarized = [Float]()
            binarized.reserveCapacity(indices.count * d)
            for i in indices { binarized += all[(i * d)..<((i + 1) * d)] }
            let bar = ProgressLine()
            let report = try EvaluationProtocol.run(
                model: model, binarized: binarized, count: indices.count, repeats: repeats, sampleCounts: sampleCounts,
                seed: seed, threads: threads) { bar.update($0, final: false) }
            bar.finish()
            if let throughput = report.decoderSamplesPerSecond {
                printError(String(format: "IWAE: %.0f decoder samples/s", throughput))
            }
            try printReport(report, markdown: report.markdown, json: json)
        }
    }
}
