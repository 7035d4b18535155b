import Foundation
import LatentCore
import LatentData
import LatentModels

// MARK: - The experiment

/// One line of the experiment's table: one parameter group under one estimator and sample count.
public struct GradientVarianceRow: Codable, Sendable, Equatable {
    /// The parameter group: "encoder" (φ) or "decoder" (θ).
    public var group: String
    /// The gradient estimator whose draws this row summarizes (MATH.md §6).
    public var estimator: GradientEstimator
    /// Importance samples m of the objective (1 for the score-function experiment's NELBO).
    public var samples: Int
    /// tr Cov of the N draws: Σ over the group's parameters of the per-parameter sample variance.
    public var variance: Double
    /// (1/N) Σ_draws ‖ĝ − g_ref‖² over the group.
    public var mse: Double
    /// variance / the variance of the experiment's first estimator (reparametrization, or standard) for the same
    /// group and m.
    public var ratio: Double
    /// The estimator's signal-to-noise ratio over the group (`SignalToNoise`).
    public var snr: SignalToNoise

    /// A row from its figures, taken as they are.
    public init(group: String, estimator: GradientEstimator, samples: Int = 1, variance: Double, mse: Double,
                ratio: Double, snr: SignalToNoise) {
        self.group = group
        self.estimator = estimator
        self.samples = samples
        self.variance = variance
        self.mse = mse
        self.ratio = ratio
        self.snr = snr
    }
}

/// What `latent grad-variance` reports; `--json` encodes exactly `{"groups": [...]}`.
public struct GradientVarianceReport: Codable, Sendable, Equatable {
    /// Per sample count (in the order asked), encoder rows first, then decoder; within a group, the estimators in
    /// the experiment's order.
    public var groups: [GradientVarianceRow]

    /// A report of these rows, in the order given.
    public init(groups: [GradientVarianceRow]) { self.groups = groups }

    /// The row of one group, estimator and sample count.
    public func row(group: String, estimator: GradientEstimator, samples: Int = 1) -> GradientVarianceRow? {
        groups.first { $0.group == group && $0.estimator == estimator && $0.samples == samples }
    }

    /// The rows as a Markdown table.
    public var markdown: String {
        let first = groups.first?.estimator.pathwise == nil ? "reparametrization" : "standard"
        var lines = ["| group | estimator | m | variance (tr Cov) | MSE vs reference | ratio to \(first) "
                     + "| SNR (mean over coordinates) | SNR (ratio of norms) |",
                     "|---|---|---:|---:|---:|---:|---:|---:|"]
        for row in groups {
            lines.append("| \(row.group) | \(row.estimator.rawValue) | \(row.samples) | "
                         + String(format: "%.4e | %.4e | %.4g | %.4g | %.4g |", row.variance, row.mse, row.ratio,
                                  row.snr.meanOverCoordinates, row.snr.ratioOfNorms))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The gradient-variance experiment of MATH.md §6 on one fixed minibatch.
///
/// With the same ε for the three estimators at draw i (common random numbers), N draws each give per group
/// (encoder, decoder) the trace of the covariance, the MSE against a reference gradient g_ref, and the ratio to the
/// reparametrization variance. g_ref is the mean of `referenceDraws` further reparametrization draws, by default
/// R = max(2000, 2N): the noise of g_ref adds tr Cov_reparametrization / R to every MSE, at most 0.05 % of the
/// reparametrization variance, well below the Monte Carlo error of the variances themselves (of order √(2/N), 4.5 %
/// at N = 1000), and the reference then costs less than the 3N draws of the experiment. The
/// baseline is the mean −log p(x_r|z) over `baselineSamples` draws made before the experiment. Draws, reference and
/// baseline use separate noise streams keyed by (seed, draw), so results do not depend on the thread count beyond
/// the order in which the workers' moments are merged.
public enum GradientVariance {
    /// Draws per example averaged into the baseline b_r.
    public static let defaultBaselineSamples = 10

    /// Most experiment draws N: 10⁶ minibatch gradients per estimator take hours, and the variances' relative
    /// Monte Carlo error √(2/N) is then 0.14 %; the bound also keeps 2N and the draw indices far from overflow.
    @usableFromInline package static let maximumDraws = 1_000_000

    /// Most reference draws: the default for the most experiment draws.
    @usableFromInline package static let maximumReferenceDraws = defaultReferenceDraws(draws: maximumDraws)

    /// Reparametrization draws averaged into g_ref for N experiment draws: max(2000, 2N), N capped at `maximumDraws`.
    @usableFromInline package static func defaultReferenceDraws(draws: Int) -> Int { max(2000, 2 * min(draws, maximumDraws)) }

    /// Throws unless 2 ≤ draws ≤ `maximumDraws` and 1 ≤ referenceDraws ≤ `maximumReferenceDraws`.
    @usableFromInline package static func checkDraws(_ draws: Int, referenceDraws: Int?) throws {
        guard draws >= 2 else { throw GradientVarianceError.invalidCount(flag: "--draws", value: draws, minimum: 2) }
        guard draws <= maximumDraws else {
            throw GradientVarianceError.tooManyDraws(flag: "--draws", value: draws, maximum: maximumDraws)
        }
        guard let referenceDraws else { return }
        guard referenceDraws >= 1 else {
            throw GradientVarianceError.invalidCount(flag: "--reference-draws", value: referenceDraws, minimum: 1)
        }
        guard referenceDraws <= maximumReferenceDraws else {
            throw GradientVarianceError.tooManyDraws(flag: "--reference-draws", value: referenceDraws,
                                                     maximum: maximumReferenceDraws)
        }
    }

    /// Throws unless the model is a diagonal-posterior model with the N(0, I) prior (the only kind the score
    /// function and the analytic KL gradient are implemented for).
    @usableFromInline package static func checkSupported(_ configuration: ModelConfiguration) throws {
        guard configuration.posterior == .diagonal else {
            throw GradientVarianceError.unsupportedPosterior(configuration.posterior)
        }
        guard configuration.prior == .normal else { throw GradientVarianceError.unsupportedPrior(configuration.model) }
    }

    /// Runs the experiment on the first `rows` images of `images` (each `inputs` values in {0, 1}) with `threads` workers.
    @usableFromInline package static func measure<T: BLASScalar>(
        model: VariationalAutoencoder<T>, images: [T], rows: Int, draws: Int, referenceDraws: Int? = nil,
        baselineSamples: Int = defaultBaselineSamples, seed: UInt64 = 0, threads: Int = 1
    ) throws -> GradientVarianceReport {
        try run(model: model, images: images, rows: rows, samples: nil, draws: draws,
                referenceDraws: referenceDraws ?? defaultReferenceDraws(draws: draws),
                baselineSamples: baselineSamples, seed: seed, threads: threads)
    }

    /// `measure` for Float models, specialized inside this module: a generic call from another module would run the
    /// element loops through witness tables (DESIGN.md § Swift performance traps).
    public static func measure(
        model: VariationalAutoencoder<Float>, images: [Float], rows: Int, draws: Int, referenceDraws: Int? = nil,
        baselineSamples: Int = defaultBaselineSamples, seed: UInt64 = 0, threads: Int = 1
    ) throws -> GradientVarianceReport {
        try run(model: model, images: images, rows: rows, samples: nil, draws: draws,
                referenceDraws: referenceDraws ?? defaultReferenceDraws(draws: draws),
                baselineSamples: baselineSamples, seed: seed, threads: threads)
    }

    /// DReG draws averaged into g_ref of the importance-weighted experiment: 2N (its draws cost m decoder rows each).
    package static func defaultImportanceWeightedReferenceDraws(draws: Int) -> Int { 2 * min(draws, maximumDraws) }

    /// The importance-weighted experiment (MATH.md §10): for each m of `samples`, N draws of the standard, STL and
    /// DReG gradients of the mean −L_m on the same ε, with g_ref the mean of `referenceDraws` DReG draws (unbiased
    /// like the standard gradient, and the least noisy for the encoder). Any posterior family and prior.
    package static func measureImportanceWeighted<T: BLASScalar>(
        model: VariationalAutoencoder<T>, images: [T], rows: Int, samples: [Int], draws: Int,
        referenceDraws: Int? = nil, seed: UInt64 = 0, threads: Int = 1
    ) throws -> GradientVarianceReport {
        var report = GradientVarianceReport(groups: [])
        for m in samples {
            report.groups += try run(
                model: model, images: images, rows: rows, samples: m, draws: draws,
                referenceDraws: referenceDraws ?? defaultImportanceWeightedReferenceDraws(draws: draws),
                baselineSamples: 0, seed: seed, threads: threads).groups
        }
        return report
    }

    /// `measureImportanceWeighted` for Float models, specialized inside this module.
    public static func measureImportanceWeighted(
        model: VariationalAutoencoder<Float>, images: [Float], rows: Int, samples: [Int], draws: Int,
        referenceDraws: Int? = nil, seed: UInt64 = 0, threads: Int = 1
    ) throws -> GradientVarianceReport {
        var report = GradientVarianceReport(groups: [])
        for m in samples {
            report.groups += try run(
                model: model, images: images, rows: rows, samples: m, draws: draws,
                referenceDraws: referenceDraws ?? defaultImportanceWeightedReferenceDraws(draws: draws),
                baselineSamples: 0, seed: seed, threads: threads).groups
        }
        return report
    }

    /// Independent noise streams of one experiment.
    enum NoiseStream: UInt64 {
        case experiment = 1, reference, baseline
    }

    /// ε for one draw of one stream: `count` standard normals keyed by (seed, stream, draw).
    static func fillNoise<T: BLASScalar>(_ out: UnsafeMutablePointer<T>, count: Int, seed: UInt64,
                                         stream: NoiseStream, draw: Int) {
        var rng = RandomStream(seed: seed, purpose: .sampling, step: stream.rawValue, index: UInt64(draw))
        rng.fillNormal(out, count: count)
    }

    /// Σ over a group of (g_i − reference_i)².
    static func squaredDistance<T: BLASScalar>(_ g: UnsafePointer<T>, _ reference: UnsafePointer<Double>,
                                               over group: ParameterGroup) -> Double {
        var total = 0.0
        for range in group.ranges {
            for i in range {
                let difference = Double(g[i]) - reference[i]
                total += difference * difference
            }
        }
        return total
    }

    /// One experiment: the score-function comparison (`samples` nil) or the importance-weighted one with m samples.
    static func run<T: BLASScalar>(
        model: VariationalAutoencoder<T>, images: [T], rows: Int, samples: Int?, draws: Int, referenceDraws: Int,
        baselineSamples: Int, seed: UInt64, threads: Int
    ) throws -> GradientVarianceReport {
        try checkDraws(draws, referenceDraws: referenceDraws)
        let estimators = samples == nil ? GradientEstimator.scoreFunctionComparison
            : GradientEstimator.importanceWeightedComparison
        let referenceEstimator: GradientEstimator = samples == nil ? .reparametrization : .dreg
        let workers = max(1, min(threads, draws))
        let states = try (0..<workers).map { _ in
            try GradientVarianceWorker(model: model, images: images, rows: rows, samples: samples,
                                       estimators: estimators.count)
        }
        let groups = [ParameterGroup.encoder(of: model), ParameterGroup.decoder(of: model)]
        let pool = try WorkerPool(size: workers)
        // The workers are the parallelism; BLAS threads inside them would oversubscribe the cores.
        if workers > 1 && BLASThreads.current != 1 { BLASThreads.set(1) }

        if samples == nil {
            // Every worker draws the same keyed baseline samples, so all hold the same b.
            pool.run { w in
                states[w].attempt { try states[w].draws.estimateBaseline(samples: baselineSamples, seed: seed) }
            }
            try throwFirstFailure(states)
        }

        pool.run { w in
            let state = states[w]
            for draw in Parallel.slice(referenceDraws, parts: workers, part: w) {
                fillNoise(state.noise.pointer, count: state.draws.noiseCount, seed: seed, stream: .reference, draw: draw)
                state.attempt {
                    try state.draws.draw(referenceEstimator, noise: state.noise.pointer, into: state.gradient.pointer)
                }
                state.accumulateReference()
            }
        }
        try throwFirstFailure(states)
        let parameterCount = model.parameterCount
        var reference = [Double](repeating: 0, count: parameterCount)
        for state in states { for i in 0..<parameterCount { reference[i] += state.referenceSum[i] } }
        for i in 0..<parameterCount { reference[i] /= Double(referenceDraws) }

        reference.withUnsafeBufferPointer { referencePointer in
            let ref = referencePointer.baseAddress!
            pool.run { w in
                let state = states[w]
                for draw in Parallel.slice(draws, parts: workers, part: w) {
                    fillNoise(state.noise.pointer, count: state.draws.noiseCount, seed: seed, stream: .experiment,
                              draw: draw)
                    for (e, estimator) in estimators.enumerated() {
                        state.attempt {
                            try state.draws.draw(estimator, noise: state.noise.pointer, into: state.gradient.pointer)
                        }
                        state.moments[e].add(state.gradient.pointer)
                        for (g, group) in groups.enumerated() {
                            state.squaredErrors[e][g] += squaredDistance(state.gradient.pointer, ref, over: group)
                        }
                    }
                }
            }
        }
        try throwFirstFailure(states)

        var report = GradientVarianceReport(groups: [])
        for (g, group) in groups.enumerated() {
            var variances = [Double]()
            for e in estimators.indices {
                var moments = GradientMoments(dimension: parameterCount)
                var squaredError = 0.0
                for state in states {
                    moments.merge(state.moments[e])
                    squaredError += state.squaredErrors[e][g]
                }
                variances.append(moments.traceOfCovariance(over: group))
                let row = GradientVarianceRow(group: group.name, estimator: estimators[e], samples: samples ?? 1,
                                              variance: variances[e], mse: squaredError / Double(draws),
                                              ratio: variances[e] / variances[0],
                                              snr: moments.signalToNoise(over: group))
                guard row.variance.isFinite, row.mse.isFinite, row.ratio.isFinite, row.snr.isFinite else {
                    throw GradientVarianceError.nonFinite(group: group.name, estimator: estimators[e])
                }
                report.groups.append(row)
            }
        }
        return report
    }

    private static func throwFirstFailure<T>(_ states: [GradientVarianceWorker<T>]) throws {
        if let failure = states.lazy.compactMap(\.failure).first { throw failure }
    }
}

/// What one worker of the experiment owns: its draws (workspace), gradient and noise buffers, its share of the
/// reference sum, and the moments and squared errors of its draws. Only that worker touches it inside a region.
private final class GradientVarianceWorker<T: BLASScalar>: @unchecked Sendable {
    let draws: GradientDraws<T>
    let gradient: Buffer<T>
    let noise: Buffer<T>
    var referenceSum: [Double]
    /// Per estimator, in the experiment's order.
    var moments: [GradientMoments]
    /// Per estimator and group: Σ_draws ‖ĝ − g_ref‖².
    var squaredErrors: [[Double]]
    var failure: (any Error)?

    init(model: VariationalAutoencoder<T>, images: [T], rows: Int, samples: Int?, estimators: Int) throws {
        draws = try GradientDraws(model: model, images: images, rows: rows, samples: samples)
        gradient = Buffer(count: model.parameterCount)
        noise = Buffer(count: draws.noiseCount)
        referenceSum = [Double](repeating: 0, count: model.parameterCount)
        moments = (0..<estimators).map { _ in GradientMoments(dimension: model.parameterCount) }
        squaredErrors = (0..<estimators).map { _ in [0, 0] }
    }

    /// Runs `body`, keeping the first error (a parallel region cannot throw).
    func attempt(_ body: () throws -> Void) {
        guard failure == nil else { return }
        do { try body() } catch { failure = error }
    }

    /// referenceSum += the current gradient.
    func accumulateReference() {
        let g = gradient.pointer
        referenceSum.withUnsafeMutableBufferPointer { sum in
            for i in 0..<sum.count { sum[i] += Double(g[i]) }
        }
    }
}
