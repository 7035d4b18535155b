import Foundation
import LatentCore
import LatentData
import LatentModels

/// The figures `latent eval` reports (its `--json` keys): NELBO, KL, Rec, IWAE-m bounds as positive negative
/// log-likelihoods in nats (keyed by m), and the number of active units.
public struct EvaluationReport: Codable, Sendable {
    /// Mean one-sample NELBO = Rec + KL per example, in nats (MATH.md §3, §7).
    public var nelbo: Double
    /// Mean KL(q(z|x) ‖ p(z)) per example: analytic under N(0, I), the Monte Carlo estimate under the mixture.
    public var kl: Double
    /// Mean reconstruction term −log p(x|z) per example.
    public var rec: Double
    /// The number of test examples evaluated.
    public var examples: Int
    /// How many noise draws (seeds seed, seed + 1, …) the NELBO, KL and Rec are averaged over.
    public var repeats: Int
    /// −L_m, the negative IWAE-m bound in nats, keyed by m as text (MATH.md §4); empty when no m was asked for.
    public var iwae: [String: Double]
    /// The number of latent units whose posterior mean varies over the examples by more than 0.01 (MATH.md §7).
    public var activeUnits: Int
    /// The throughput of the streamed IWAE evaluation; nil when no IWAE bound was computed.
    public var decoderSamplesPerSecond: Double?

    /// The same figures as a Markdown table.
    public var markdown: String {
        let ms = iwae.keys.compactMap(Int.init).sorted()
        var header = "| examples | NELBO | KL | Rec |"
        var rule = "|---:|---:|---:|---:|"
        var row = String(format: "| %d | %.2f | %.2f | %.2f |", examples, nelbo, kl, rec)
        for m in ms {
            header += " IWAE-\(m) |"
            rule += "---:|"
            row += String(format: " %.2f |", iwae[String(m)]!)
        }
        header += " active units |"
        rule += "---:|"
        row += " \(activeUnits) |"
        return [header, rule, row].joined(separator: "\n") + "\n"
    }

    enum CodingKeys: String, CodingKey {
        case nelbo
        case kl
        case rec
        case examples
        case repeats
        case iwae
        case activeUnits = "active_units"
        case decoderSamplesPerSecond = "decoder_samples_per_second"
    }
}

/// Why an evaluation cannot run on the given data or give a finite figure, and what to do about it.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// `--preset cs236` needs 10 test images of every class, and class `label` has only `images`.
    case cs236ClassTooSmall(label: Int, images: Int)
    /// `term` (e.g. "test NELBO", "posterior factorization during IWAE evaluation") is not finite.
    case nonFinite(term: String)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .cs236ClassTooSmall(label, images):
            return "--preset cs236 scores the first \(EvaluationProtocol.cs236ImagesPerClass) test images of each of "
                + "the \(EvaluationProtocol.cs236Classes) classes, but class \(label) has only \(images); use the "
                + "full Fashion-MNIST test set (--data), or evaluate without --preset"
        case let .nonFinite(term):
            return "non-finite \(term): the model's parameters give no finite value on these images; check the "
                + "checkpoint, or raise --jitter for --posterior covariance"
        }
    }
}

/// How a trained model is evaluated: the one-sample NELBO (averaged over `repeats` noise draws), the streamed
/// IWAE bounds, and active units (MATH.md §7).
public enum EvaluationProtocol {
    /// Classes and images per class of CS236's fixed test subset.
    public static let cs236Classes = 10, cs236ImagesPerClass = 10

    /// CS236's fixed test subset: the first 10 test images of each class, in class order; throws when a class has
    /// fewer, since the preset's figures are only comparable on exactly those 100 images.
    @usableFromInline package static func cs236Subset(testLabels labels: [UInt8]) throws -> [Int] {
        try (0..<cs236Classes).flatMap { c -> [Int] in
            let members = labels.indices.filter { labels[$0] == UInt8(c) }
            guard members.count >= cs236ImagesPerClass else {
                throw EvaluationError.cs236ClassTooSmall(label: c, images: members.count)
            }
            return Array(members.prefix(cs236ImagesPerClass))
        }
    }

    /// Evaluates `model` on `count` test inputs (count × inputs values, already binarized or not): the NELBO, KL and
    /// Rec averaged over `repeats` noise draws, the active units, and the streamed IWAE-m bound for each m of
    /// `sampleCounts`. `progress` receives one-line status messages during the IWAE evaluation.
    public static func run(
        model: VariationalAutoencoder<Float>, binarized: [Float], count: Int, repeats: Int, sampleCounts: [Int],
        seed: UInt64, threads: Int, progress: (String) -> Void = { _ in }
    ) throws -> EvaluationReport {
        let evaluator = try Evaluator(model: model, threads: threads)
        var sums = TermSums()
        for r in 0..<repeats {
            sums = sums + evaluator.evaluate(binarized: binarized, count: count, seed: seed &+ UInt64(r))
        }
        let n = Double(sums.examples)
        guard sums.nelbo.isFinite else { throw EvaluationError.nonFinite(term: "test NELBO") }
        let stats = try evaluator.posteriorStatistics(binarized: binarized, count: count)
        var report = EvaluationReport(nelbo: sums.nelbo / n, kl: sums.kl / n, rec: sums.rec / n, examples: count,
                                      repeats: repeats, iwae: [:], activeUnits: stats.activeUnits)
        if !sampleCounts.isEmpty {
            let bound = try ImportanceBoundEvaluator(model: model, threads: threads, pool: evaluator.pool)
                .evaluate(binarized: binarized, count: count, sampleCounts: sampleCounts, seed: seed) { done, rate in
                    let eta = Double(count - done) * Double(sampleCounts.max() ?? 1) / max(rate, 1e-9)
                    progress(String(format: "IWAE-%d: %d/%d examples  %.0f decoder samples/s  ETA %.0fs",
                                    sampleCounts.max() ?? 1, done, count, rate, eta))
                }
            for (m, value) in bound.bounds { report.iwae[String(m)] = value }
            report.decoderSamplesPerSecond = bound.decoderSamplesPerSecond
        }
        return report
    }
}
