import Foundation
import LatentCore
import LatentData
import LatentModels

// MARK: - Estimators, groups, errors

/// The gradient estimators that `latent grad-variance` compares (MATH.md §6, §10); the raw values are the `--json`
/// names.
///
/// The first three estimate the gradient of the mean NELBO (1/B) Σ_r [Rec_r + KL_r] of one fixed minibatch, with the
/// analytic KL (MATH.md §3); the last three that of the mean −L_m (MATH.md §4) with m samples — the losses the trainer
/// minimizes, with that sign.
public enum GradientEstimator: String, CaseIterable, Codable, Sendable {
    /// Pathwise: the gradient of the one-sample NELBO through z = μ + σ ⊙ ε, exactly what `ELBO.evaluate` computes.
    case reparametrization
    /// REINFORCE for E_q[−log p(x|z)]: (−log p(x|z)) ∇φ log q(z|x) at the sampled z, plus the exact ∇φ KL.
    case scoreFunction = "score_function"
    /// REINFORCE with a per-example baseline b subtracted from −log p(x|z); b is fixed before the draws, so unbiased.
    case scoreFunctionBaseline = "score_function_baseline"
    /// The importance-weighted bound's training gradients of MATH.md §10, by `ImportanceWeighted`.
    case standard, stl, dreg

    /// The estimators of the score-function experiment (MATH.md §6), the pathwise one first.
    package static let scoreFunctionComparison: [GradientEstimator] = [.reparametrization, .scoreFunction,
                                                                      .scoreFunctionBaseline]
    /// The estimators of the signal-to-noise experiment over m (MATH.md §10), the standard one first.
    package static let importanceWeightedComparison: [GradientEstimator] = [.standard, .stl, .dreg]

    /// The training estimator this one is, for the importance-weighted estimators (nil for the others).
    package var pathwise: PathwiseEstimator? {
        switch self {
        case .standard: return .standard
        case .stl: return .stl
        case .dreg: return .dreg
        case .reparametrization, .scoreFunction, .scoreFunctionBaseline: return nil
        }
    }
}

/// A named set of parameter ranges of one model whose gradient is summarized together (encoder φ, decoder θ).
@usableFromInline package struct ParameterGroup: Sendable, Equatable {
    @usableFromInline package let name: String
    @usableFromInline package let ranges: [Range<Int>]

    @usableFromInline package init(name: String, ranges: [Range<Int>]) {
        self.name = name
        self.ranges = ranges
    }

    /// Number of parameters in the group.
    @usableFromInline package var count: Int { ranges.reduce(0) { $0 + $1.count } }

    /// Every weight and bias of the encoder: the variational parameters φ.
    @usableFromInline package static func encoder(of model: VariationalAutoencoder<some BLASScalar>) -> ParameterGroup {
        ParameterGroup(name: "encoder", ranges: model.encoder.layers.flatMap { [$0.weight.range, $0.bias.range] })
    }

    /// Every weight and bias of the decoder: the generative parameters θ.
    @usableFromInline package static func decoder(of model: VariationalAutoencoder<some BLASScalar>) -> ParameterGroup {
        ParameterGroup(name: "decoder", ranges: model.decoder.layers.flatMap { [$0.weight.range, $0.bias.range] })
    }
}

/// Why the gradient-variance experiment could not run, and what to do about it.
public enum GradientVarianceError: Error, CustomStringConvertible, Equatable {
    /// The score function is implemented for the diagonal family only.
    case unsupportedPosterior(PosteriorKind)
    /// A mixture prior has no analytic KL, so the objective of MATH.md §3 with an exact KL gradient does not exist.
    case unsupportedPrior(ModelKind)
    /// The minibatch must hold between 1 and the `available` test images.
    case invalidBatch(requested: Int, available: Int)
    /// A count (`flag`, e.g. `--draws`) is below its `minimum`.
    case invalidCount(flag: String, value: Int, minimum: Int)
    /// A number of gradient draws (`flag`) is above the `maximum` the experiment allows.
    case tooManyDraws(flag: String, value: Int, maximum: Int)
    /// The variance (or MSE, or ratio) of this group under this estimator is not finite.
    case nonFinite(group: String, estimator: GradientEstimator)
    /// An importance sample count outside 1…`maximum`.
    case invalidSamples(Int, maximum: Int)
    /// A score-function estimator asked for with importance samples, or an importance-weighted one without.
    case estimatorNeedsSamples(GradientEstimator)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .unsupportedPosterior(posterior):
            return "grad-variance supports --posterior diagonal models; this checkpoint has \(posterior.rawValue)"
        case let .unsupportedPrior(model):
            return "grad-variance supports models with the N(0, I) prior; this checkpoint is a \(model.rawValue) with "
                + "a mixture prior, whose KL has no closed form; use a --model vae checkpoint"
        case let .invalidBatch(requested, available):
            return "--batch must be between 1 and the \(available) test images available (got \(requested))"
        case let .invalidCount(flag, value, minimum):
            return "\(flag) must be at least \(minimum) (got \(value))"
        case let .tooManyDraws(flag, value, maximum):
            return "\(flag) must be at most \(maximum) (got \(value)); each draw is a full gradient of the "
                + "minibatch, and \(maximum) already take hours"
        case let .nonFinite(group, estimator):
            return "the \(estimator.rawValue) gradient variance of the \(group) is not finite for this checkpoint "
                + "(or the reparametrization variance is 0); check the model with `latent eval`"
        case let .invalidSamples(value, maximum):
            return "--samples must list sample counts between 1 and \(maximum) (got \(value))"
        case let .estimatorNeedsSamples(estimator):
            return estimator.pathwise == nil
                ? "the \(estimator.rawValue) estimator is measured without --samples (one sample, analytic KL)"
                : "the \(estimator.rawValue) estimator needs --samples (the importance-weighted bound's m)"
        }
    }
}

// MARK: - Single draws

/// Independent gradient estimates of one fixed minibatch's loss (gradients of the loss, as the trainer minimizes it):
/// of the mean NELBO by the estimators of MATH.md §6, for a model with the diagonal posterior and the N(0, I) prior;
/// or, given `samples` m, of the mean −L_m by the estimators of MATH.md §10, for any model.
///
/// The minibatch and the parameters stay fixed; each draw takes its noise ε (rows × latent) from the caller, so the
/// estimators can be compared on the same ε. A draw overwrites every encoder and decoder entry of the flat gradient
/// buffer it is given. One instance per thread: the workspace is reused by every draw.
@usableFromInline package final class GradientDraws<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package let model: VariationalAutoencoder<T>
    /// The minibatch size B.
    @usableFromInline package let rows: Int
    /// Per example, the b_r that `.scoreFunctionBaseline` subtracts from −log p(x_r|z_r); zero until
    /// `estimateBaseline`.
    package let baseline: Buffer<T>
    /// Importance samples m of the §10 estimators; nil for the score-function experiment (one sample, analytic KL).
    package let samples: Int?
    let family: DiagonalGaussian<T>?
    let workspace: StepWorkspace<T>

    /// Copies the first `rows` images (each `inputs` values in {0, 1}) of `images` as the fixed minibatch.
    package init(model: VariationalAutoencoder<T>, images: [T], rows: Int, samples: Int? = nil) throws {
        if let samples {
            guard (1...ModelConfiguration.samplesLimit).contains(samples) else {
                throw GradientVarianceError.invalidSamples(samples, maximum: ModelConfiguration.samplesLimit)
            }
            family = nil
        } else {
            try GradientVariance.checkSupported(model.configuration)
            guard case let .diagonal(family) = model.posterior else {
                throw GradientVarianceError.unsupportedPosterior(model.configuration.posterior)
            }
            self.family = family
        }
        let d = model.configuration.inputs
        guard rows >= 1, images.count >= rows * d else {
            throw GradientVarianceError.invalidBatch(requested: rows, available: images.count / d)
        }
        self.model = model
        self.rows = rows
        self.samples = samples
        baseline = Buffer(count: rows)
        workspace = StepWorkspace(model: model, capacity: rows, samples: samples ?? 1)
        for i in 0..<(rows * d) { workspace.x[i] = images[i] }
    }

    /// Values of ε one draw reads: samples × rows × latent, row-major.
    package var noiseCount: Int { (samples ?? 1) * rows * model.configuration.latent }

    /// Sets b_r = (1/S) Σ_s −log p(x_r|z_s), z_s ~ q(z|x_r), from `samples` draws keyed by `seed` on a noise stream of
    /// its own, so the baseline is independent of every experiment draw and the estimator stays unbiased.
    @usableFromInline package func estimateBaseline(samples: Int, seed: UInt64) throws {
        guard samples >= 1 else {
            throw GradientVarianceError.invalidCount(flag: "baseline samples", value: samples, minimum: 1)
        }
        let ws = workspace
        let parameters = UnsafePointer(model.store.parameters.pointer)
        var sums = [Double](repeating: 0, count: rows)
        for sample in 0..<samples {
            GradientVariance.fillNoise(ws.noise.pointer, count: noiseCount, seed: seed, stream: .baseline, draw: sample)
            _ = try ELBO.evaluate(model: model, parameters: parameters, rows: rows, workspace: ws, gradients: nil,
                                  lossScale: 1)
            for r in 0..<rows { sums[r] += Double(ws.rec[r]) }
        }
        for r in 0..<rows { baseline[r] = T(sums[r] / Double(samples)) }
    }

    /// One estimate of ∇ (1/B) Σ_r NELBO_r with noise ε (`noiseCount` values) into `gradients` (the model's flat layout).
    @usableFromInline package func draw(_ estimator: GradientEstimator, noise: UnsafePointer<T>,
                     into gradients: UnsafeMutablePointer<T>) throws {
        let ws = workspace
        ws.noise.pointer.update(from: noise, count: noiseCount)
        let parameters = UnsafePointer(model.store.parameters.pointer)
        guard (estimator.pathwise != nil) == (samples != nil) else {
            throw GradientVarianceError.estimatorNeedsSamples(estimator)
        }
        if let pathwise = estimator.pathwise, let m = samples {
            _ = try ImportanceWeighted.evaluate(model: model, parameters: parameters, rows: rows, samples: m,
                                                workspace: ws, gradients: gradients, lossScale: 1 / T(rows),
                                                estimator: pathwise)
            return
        }
        switch estimator {
        case .reparametrization:
            _ = try ELBO.evaluate(model: model, parameters: parameters, rows: rows, workspace: ws,
                                  gradients: gradients, lossScale: 1 / T(rows))
        case .scoreFunction:
            scoreFunction(parameters: parameters, subtractBaseline: false, into: gradients)
        case .scoreFunctionBaseline:
            scoreFunction(parameters: parameters, subtractBaseline: true, into: gradients)
        case .standard, .stl, .dreg:
            break
        }
    }

    /// The score-function estimate (MATH.md §6) for the ε already in the workspace:
    ///
    ///     ∇θ: (1/B) Σ_r ∇θ −log p(x_r|z_r)                                  (the decoder has no other estimator)
    ///     ∇φ: (1/B) Σ_r [ (−log p(x_r|z_r) − b_r) ∇φ log q(z_r|x_r) + ∇φ KL_r ]
    ///
    /// with z_r sampled but not differentiated through. At fixed z, for the diagonal family (s = log σ²),
    /// ∂ log q/∂μ = (z − μ)/σ² and ∂ log q/∂s = ½((z − μ)²/σ² − 1); with ∂KL/∂μ = μ and ∂KL/∂s = ½(σ² − 1) these give
    /// the encoder's output gradient row by row, and one encoder backward over the batch gives ∇φ.
    func scoreFunction(parameters p: UnsafePointer<T>, subtractBaseline: Bool, into gradients: UnsafeMutablePointer<T>) {
        guard let family else { return }
        let ws = workspace
        let k = model.configuration.latent, d = model.configuration.inputs
        let scale = 1 / T(rows)
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        let q = UnsafePointer(ws.encoder.output)
        family.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer, logDeterminant: ws.logDeterminant.pointer)
        family.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: 1, rows: rows,
                      z: ws.z.pointer)
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: rows, workspace: ws.decoder)
        for r in 0..<rows { ws.rowScale[r] = scale }
        model.likelihood.evaluate(
            parameters: p, outputs: ws.decoder.output, targets: ws.x.pointer, rows: rows, columns: d,
            negativeLogLikelihood: ws.rec.pointer, gradient: ws.decoder.outputGradient, scale: ws.rowScale.pointer,
            terms: ws.terms.pointer)
        model.decoder.backward(parameters: p, gradients: gradients, input: ws.z.pointer, rows: rows,
                               workspace: ws.decoder, inputGradient: nil, accumulate: false)
        let outputGradient = ws.encoder.outputGradient
        for r in 0..<rows {
            let mu = q + r * 2 * k, sigma = ws.scratch.pointer + r * k, z = ws.z.pointer + r * k
            let dMu = outputGradient + r * 2 * k, dLogVariance = dMu + k
            let reconstruction = ws.rec[r] - (subtractBaseline ? baseline[r] : 0)
            let weight = scale * reconstruction
            for i in 0..<k {
                let variance = sigma[i] * sigma[i]
                let deviation = z[i] - mu[i]
                dMu[i] = weight * deviation / variance + scale * mu[i]
                dLogVariance[i] = weight * (deviation * deviation / variance - 1) / 2 + scale * (variance - 1) / 2
            }
        }
        model.encoder.backward(parameters: p, gradients: gradients, input: ws.x.pointer, rows: rows,
                               workspace: ws.encoder, inputGradient: nil, accumulate: false)
    }
}

// MARK: - Moments of the draws

/// Running per-coordinate mean and sum of squared deviations of gradient draws, in Double: Welford's update, and
/// Chan et al.'s pairwise combination to merge the moments of several workers.
///
/// The sample variance of coordinate i is M2_i / (n − 1); the trace of the covariance of a parameter group is the sum
/// of those over the group (MATH.md §6).
@usableFromInline package struct GradientMoments: Sendable {
    @usableFromInline package private(set) var count = 0
    @usableFromInline package private(set) var mean: [Double]
    /// M2_i = Σ_draws (g_i − mean_i)².
    @usableFromInline package private(set) var squaredDeviations: [Double]

    @usableFromInline package init(dimension: Int) {
        mean = [Double](repeating: 0, count: dimension)
        squaredDeviations = [Double](repeating: 0, count: dimension)
    }

    @usableFromInline package var dimension: Int { mean.count }

    /// Adds one draw g (`dimension` values): δ = g − mean, mean += δ/n, M2 += δ (g − mean).
    @usableFromInline package mutating func add<T: BLASScalar>(_ g: UnsafePointer<T>) {
        count += 1
        let inverse = 1 / Double(count)
        mean.withUnsafeMutableBufferPointer { m in
            squaredDeviations.withUnsafeMutableBufferPointer { s in
                for i in 0..<m.count {
                    let x = Double(g[i])
                    let delta = x - m[i]
                    m[i] += delta * inverse
                    s[i] += delta * (x - m[i])
                }
            }
        }
    }

    /// Merges another set of moments over the same coordinates: with n = a + b and δ = mean_b − mean_a,
    /// mean = mean_a + δ b/n and M2 = M2_a + M2_b + δ² a b/n.
    @usableFromInline package mutating func merge(_ other: GradientMoments) {
        precondition(other.dimension == dimension, "GradientMoments.merge: dimensions differ")
        guard other.count > 0 else { return }
        guard count > 0 else {
            self = other
            return
        }
        let a = Double(count), b = Double(other.count), n = a + b
        for i in 0..<dimension {
            let delta = other.mean[i] - mean[i]
            mean[i] += delta * b / n
            squaredDeviations[i] += other.squaredDeviations[i] + delta * delta * a * b / n
        }
        count += other.count
    }

    /// The sample variance (denominator n − 1) of coordinate i; 0 with fewer than two draws.
    @usableFromInline package func variance(at i: Int) -> Double {
        count < 2 ? 0 : squaredDeviations[i] / Double(count - 1)
    }

    /// tr Cov over a group: the sum of its coordinates' sample variances.
    @usableFromInline package func traceOfCovariance(over group: ParameterGroup) -> Double {
        guard count >= 2 else { return 0 }
        var total = 0.0
        for range in group.ranges { for i in range { total += squaredDeviations[i] } }
        return total / Double(count - 1)
    }
}

