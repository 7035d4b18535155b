import Foundation
import LatentCore
import LatentEvaluation
import LatentModels

/// One posterior family's row of `latent compare`.
public struct FamilyResult: Codable, Sendable {
    /// The posterior family, by its `PosteriorKind` raw value.
    public var posterior: String
    /// The test NELBO after the last epoch.
    public var nelbo: Double
    /// The test KL term after the last epoch.
    public var kl: Double
    /// The test reconstruction term after the last epoch.
    public var rec: Double
    /// −L_m, the importance-weighted bound with `iwaeSamples` samples on the same test set (absent when m = 0).
    public var iwae: Double?
    /// m of the `iwae` column; nil when no bound was computed.
    public var iwaeSamples: Int?
    /// Active units of the trained model on the test set (MATH.md §7).
    public var activeUnits: Int
    /// The mean absolute posterior correlation on the test set (MATH.md §7); 0 for the diagonal family.
    public var meanAbsCorrelation: Double
    /// Training examples per second over the whole run.
    public var samplesPerSecond: Double
    /// Mean wall-clock seconds of an epoch's training steps.
    public var secondsPerEpoch: Double
    /// Diagonal's samples/s over this family's: how many times as long training takes.
    public var costRatio: Double
    /// Cholesky factorizations retried with a raised δ during training (covariance posterior).
    public var factorizationRetries: Int
    /// The model's parameter count.
    public var parameters: Int
    /// Where this family's run was written (`base.out/<family>`).
    public var runDirectory: String

    enum CodingKeys: String, CodingKey {
        case posterior
        case nelbo
        case kl
        case rec
        case iwae
        case iwaeSamples = "iwae_samples"
        case activeUnits = "active_units"
        case meanAbsCorrelation = "mean_abs_correlation"
        case samplesPerSecond = "samples_per_second"
        case secondsPerEpoch = "seconds_per_epoch"
        case costRatio = "cost_ratio"
        case factorizationRetries = "factorization_retries"
        case parameters
        case runDirectory = "run_directory"
    }
}

/// Trains one model per posterior family with the same seed, data order and schedule, and evaluates each.
public enum Comparison {
    /// Runs every family in turn into `base.out/<family>`; `progress` receives each family's training progress.
    /// `iwaeSamples` m > 0 adds −L_m on the test set to each row. `shouldStop` is asked at each training step;
    /// `evaluating(true)` and `evaluating(false)` bracket each family's test-set evaluation, which has no step
    /// boundary to stop at (one IWAE batch may take minutes) and nothing to save: the family's run is complete.
    public static func run(
        families: [PosteriorKind], base: TrainingOptions, iwaeSamples: Int = 100,
        progress: (PosteriorKind, TrainingProgress) -> Void = { _, _ in }, shouldStop: () -> Bool = { false },
        evaluating: (Bool) -> Void = { _ in }
    ) throws -> [FamilyResult] {
        var results = [FamilyResult]()
        for family in families {
            var options = base
            options.configuration.posterior = family
            options.out = (base.out as NSString).appendingPathComponent(family.rawValue)
            let session = try TrainingSession(options: options)
            let final: EpochMetrics
            switch try session.run(progress: { progress(family, $0) }, shouldStop: shouldStop) {
            case let .finished(metrics): final = metrics
            case let .interrupted(step): throw TrainingError.interrupted(step: step, directory: options.out)
            }
            evaluating(true)
            defer { evaluating(false) }
            if shouldStop() { throw TrainingError.interrupted(step: session.trainer.step, directory: options.out) }
            let stats = try session.evaluator.posteriorStatistics(binarized: session.testBinarized,
                                                                  count: session.testCount)
            var bound: Double?
            if iwaeSamples > 0 {
                let result = try ImportanceBoundEvaluator(model: session.model, threads: options.threads)
                    .evaluate(binarized: session.testBinarized, count: session.testCount, sampleCounts: [iwaeSamples],
                              seed: options.seed)
                bound = result.bounds[iwaeSamples]
            }
            let trainSeconds = session.history.reduce(0) { $0 + $1.seconds }
            let trained = Double(session.trainer.step) * Double(options.batch)
            let examples = min(trained, Double(session.history.count * session.dataset.train.count))
            results.append(FamilyResult(
                posterior: family.rawValue, nelbo: final.testNELBO, kl: final.testKL, rec: final.testRec,
                iwae: bound, iwaeSamples: iwaeSamples > 0 ? iwaeSamples : nil, activeUnits: stats.activeUnits,
                meanAbsCorrelation: stats.meanAbsoluteCorrelation,
                samplesPerSecond: examples / trainSeconds,
                secondsPerEpoch: trainSeconds / Double(session.history.count), costRatio: 1,
                factorizationRetries: session.model.factorizationRetries.value,
                parameters: session.model.parameterCount, runDirectory: options.out))
        }
        if let diagonal = results.first(where: { $0.posterior == PosteriorKind.diagonal.rawValue }) {
            for i in results.indices { results[i].costRatio = diagonal.samplesPerSecond / results[i].samplesPerSecond }
        }
        return results
    }

    /// The Markdown table of `compare.md` (with an IWAE-m column when the rows have the bound).
    public static func markdown(_ results: [FamilyResult]) -> String {
        let m = results.first?.iwaeSamples
        let bound = m.map { " IWAE-\($0) |" } ?? ""
        var lines = [
            "| posterior | test NELBO | KL | Rec |\(bound) active units | mean abs corr | samples/s | s/epoch "
                + "| cost vs diagonal | jitter retries |",
            "|---|---:|---:|---:|" + (m == nil ? "" : "---:|") + "---:|---:|---:|---:|---:|---:|",
        ]
        for r in results {
            let iwae = m == nil ? "" : String(format: " %.2f |", r.iwae ?? .nan)
            lines.append(String(format: "| %@ | %.2f | %.2f | %.2f |", r.posterior, r.nelbo, r.kl, r.rec) + iwae
                + String(format: " %d | %.3f | %.0f | %.2f | %.2f× | %d |", r.activeUnits, r.meanAbsCorrelation,
                         r.samplesPerSecond, r.secondsPerEpoch, r.costRatio, r.factorizationRetries))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
