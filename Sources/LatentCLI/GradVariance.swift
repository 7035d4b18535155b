import ArgumentParser
import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

struct GradVariance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad-variance",
        abstract: "Compare gradient estimators on one test minibatch: trace of the covariance, MSE, variance ratio and "
            + "signal-to-noise ratio per parameter group.",
        discussion: """
            Without --samples: reparametrization, score function and score function with a baseline, on the mean \
            NELBO over the minibatch (the training loss) with the analytic KL; the reference gradient is the mean of \
            --reference-draws reparametrization draws, the baseline the mean −log p(x|z) of 10 draws per example \
            made before the experiment; diagonal-posterior models with the N(0, I) prior only. With --samples \
            1,10,100: the standard, stl and dreg training gradients of the importance-weighted bound −L_m for each m \
            (any posterior and prior); the reference is the mean of --reference-draws dreg draws (default 2 × \
            --draws). The minibatch is the first --batch statically binarized test images.
            """)

    @Option(help: "Run directory (or checkpoint file) written by `latent train`.") var checkpoint: String
    @Option(help: "Independent gradient draws N per estimator.") var draws: Int = 1000
    @Option(help: "Minibatch size B: the first B statically binarized test images.") var batch: Int = 100
    @Option(help: ArgumentHelp("Importance sample counts m, e.g. 1,10,100: measure the standard, stl and dreg "
        + "gradients of −L_m instead of the score-function comparison."))
    var samples: IntegerList?
    @Option(help: "Reparametrization draws averaged into the reference gradient (default: max(2000, 2 × draws)).")
    var referenceDraws: Int?
    @Option(help: "Seed of the noise (draws, reference and baseline).") var seed: UInt64 = 0
    @Option(help: "Directory with the IDX files (default: the one the model was trained on).") var data: String?
    @Option(help: "Worker threads, at most \(WorkerPool.maximumSize).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print one JSON object {\"groups\": [...]} instead of a table.") var json = false

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        if let samples = samples?.values {
            let limit = ModelConfiguration.samplesLimit
            if let bad = samples.first(where: { !(1...limit).contains($0) }) {
                throw ValidationError("--samples must list sample counts between 1 and \(limit) (got \(bad))")
            }
            if let twice = firstRepeated(samples) {
                throw ValidationError("--samples lists \(twice) twice; name each sample count once")
            }
        }
        try asValidationError { try GradientVariance.checkDraws(draws, referenceDraws: referenceDraws) }
        try validateThreads(threads)
    }

    func run() throws {
        try reportingErrors {
            if let warning = TrainingFlags.oversubscriptionWarning(threads: threads) { printError(warning) }
            let saved = try Checkpoint.load(from: checkpoint)
            if samples == nil { try GradientVariance.checkSupported(saved.configuration) }
            let model = VariationalAutoencoder<Float>(saved.configuration)
            model.load(saved)
            let test = try loadTestImages(saved, data: data)
            guard batch <= test.count else {
                throw GradientVarianceError.invalidBatch(requested: batch, available: test.count)
            }
            let images = Binarization.evaluationInputs(test.prefix(batch), mode: model.configuration.binarization,
                                                       seed: TrainingSession.testBinarizationSeed, as: Float.self)
            if let samples = samples?.values {
                let references = referenceDraws ?? GradientVariance.defaultImportanceWeightedReferenceDraws(draws: draws)
                printError("grad-variance: batch \(batch), m = \(samples.map(String.init).joined(separator: ", ")), "
                           + "\(draws) draws per estimator, reference = mean of \(references) dreg draws, "
                           + "\(threads) threads")
                let start = Date()
                let report = try GradientVariance.measureImportanceWeighted(
                    model: model, images: images, rows: batch, samples: samples, draws: draws,
                    referenceDraws: references, seed: seed, threads: threads)
                printError(String(format: "grad-variance: %.1f s", Date().timeIntervalSince(start)))
                return try printReport(report, markdown: report.markdown, json: json)
            }
            let references = referenceDraws ?? GradientVariance.defaultReferenceDraws(draws: draws)
            printError("grad-variance: batch \(batch), \(draws) draws per estimator, reference = mean of "
                       + "\(references) reparametrization draws, baseline = mean −log p(x|z) of "
                       + "\(GradientVariance.defaultBaselineSamples) draws per example, \(threads) threads")
            let start = Date()
            let report = try GradientVariance.measure(
                model: model, images: images, rows: batch, draws: draws, referenceDraws: references, seed: seed,
                threads: threads)
            printError(String(format: "grad-variance: %.1f s", Date().timeIntervalSince(start)))
            try printReport(report, markdown: report.markdown, json: json)
        }
    }
}
