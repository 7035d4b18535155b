import Foundation
import LatentCore
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The gradient estimators of MATH.md §6 on a tiny Double model: unbiased against an exact (Gauss–Hermite) expected
/// gradient, the score function noisier than the pathwise one, the pathwise draw identical to `ELBO.evaluate`, and the
/// moments against a two-pass computation.
final class GradientVarianceTests: XCTestCase {
    /// tanh keeps the integrand analytic, so tensor-product Gauss–Hermite quadrature converges to machine precision.
    let configuration = ModelConfiguration(inputs: 6, hidden: [5], latent: 2, activation: .tanh)
    let rows = 3

    /// The tiny model with every parameter uniform in ±1 and a batch of random binary images.
    func tinyModel(_ c: ModelConfiguration? = nil, seed: UInt64 = 1) -> (VariationalAutoencoder<Double>, [Double]) {
        let model = VariationalAutoencoder<Double>(c ?? configuration)
        var rng = RandomStream(seed: seed, purpose: .initialization)
        for i in 0..<model.parameterCount { model.store.parameters[i] = rng.uniform() * 2 - 1 }
        let images = (0..<(rows * model.configuration.inputs)).map { _ in rng.bernoulli(0.5) ? 1.0 : 0.0 }
        return (model, images)
    }

    func normals(_ count: Int, seed: UInt64, draw: Int) -> [Double] {
        var rng = RandomStream(seed: seed, purpose: .noise, index: UInt64(draw))
        return (0..<count).map { _ in rng.normal() }
    }

    /// Nodes and weights with E_{ε~N(0,1)}[f(ε)] ≈ Σ_i w_i f(x_i) (`GaussHermite`).
    func gaussHermite(_ n: Int) -> (nodes: [Double], weights: [Double]) {
        let rule = GaussHermite(points: n)
        return (rule.nodes, rule.weights)
    }

    /// E_ε[∇ (1/B) Σ_r NELBO_r] by tensor-product quadrature over the 2-D ε of each row. The batch gradient is a sum
    /// of per-row terms that depend on that row's ε only, so giving every row the same node and summing the weighted
    /// gradients over the grid yields Σ_r E[g_r] exactly (up to the quadrature error).
    func exactGradient(_ model: VariationalAutoencoder<Double>, images: [Double], nodes n: Int) throws -> [Double] {
        let (x, w) = gaussHermite(n)
        let ws = StepWorkspace(model: model, capacity: rows, samples: 1)
        for i in 0..<(rows * configuration.inputs) { ws.x[i] = images[i] }
        let g = Buffer<Double>(count: model.parameterCount)
        var expected = [Double](repeating: 0, count: model.parameterCount)
        for a in 0..<n {
            for b in 0..<n {
                for r in 0..<rows {
                    ws.noise[2 * r] = x[a]
                    ws.noise[2 * r + 1] = x[b]
                }
                _ = try ELBO.evaluate(model: model, parameters: model.store.parameters.pointer, rows: rows,
                                      workspace: ws, gradients: g.pointer, lossScale: 1 / Double(rows))
                for i in 0..<model.parameterCount { expected[i] += w[a] * w[b] * g[i] }
            }
        }
        return expected
    }

    func testGaussHermiteIntegratesGaussianMoments() {
        let (x, w) = gaussHermite(24)
        let moment: (Int) -> Double = { p in zip(x, w).reduce(0) { $0 + $1.1 * pow($1.0, Double(p)) } }
        XCTAssertEqual(moment(0), 1, accuracy: 1e-13)
        XCTAssertEqual(moment(1), 0, accuracy: 1e-13)
        XCTAssertEqual(moment(2), 1, accuracy: 1e-12)
        XCTAssertEqual(moment(4), 3, accuracy: 1e-11)
        XCTAssertEqual(moment(8), 105, accuracy: 1e-9)
    }

    /// The largest per-coordinate z-score |mean − expected| / standard error of a mean over draws. (A chi-square sum
    /// of these z² is no sharper test here: the gradient coordinates are strongly correlated, so Σz²/n spreads far
    /// wider than 1 ± √(2/n) even for an unbiased estimator.)
    func largestZScore(_ moments: GradientMoments, against expected: [Double]) -> Double {
        var largest = 0.0
        for i in 0..<expected.count {
            let standardError = (moments.variance(at: i) / Double(moments.count)).squareRoot()
            largest = max(largest, abs(moments.mean[i] - expected[i]) / standardError)
        }
        return largest
    }

    // MARK: - Unbiasedness

    func testAllEstimatorsAreUnbiasedAgainstTheExactExpectedGradient() throws {
        let (model, images) = tinyModel()
        let exact = try exactGradient(model, images: images, nodes: 64)
        let coarser = try exactGradient(model, images: images, nodes: 48)

        let draws = try GradientDraws(model: model, images: images, rows: rows)
        try draws.estimateBaseline(samples: 10, seed: 5)
        let count = 20_000, n = model.parameterCount
        let g = Buffer<Double>(count: n)
        var moments: [GradientEstimator: GradientMoments] = [:]
        for (e, estimator) in GradientEstimator.scoreFunctionComparison.enumerated() {
            var m = GradientMoments(dimension: n)
            for draw in 0..<count {
                let noise = normals(draws.noiseCount, seed: 100 + UInt64(e), draw: draw)
                try draws.draw(estimator, noise: noise, into: g.pointer)
                m.add(g.pointer)
            }
            moments[estimator] = m
            XCTAssertLessThan(largestZScore(m, against: exact), 5, "\(estimator): max |z| against the exact gradient")
        }

        // The quadrature is "exact" at this resolution: its error (64 vs 48 nodes per dimension) is a small fraction
        // of the Monte Carlo standard error of every coordinate, even the pathwise estimator's.
        let reparametrization = try XCTUnwrap(moments[.reparametrization])
        for i in 0..<n {
            let standardError = (reparametrization.variance(at: i) / Double(count)).squareRoot()
            XCTAssertLessThan(abs(exact[i] - coarser[i]), 0.05 * standardError, "quadrature error at \(i)")
        }

        // The estimators against each other (independent noise): z of the difference of the means.
        for estimator in [GradientEstimator.scoreFunction, .scoreFunctionBaseline] {
            let other = try XCTUnwrap(moments[estimator])
            var largest = 0.0
            for i in 0..<n {
                let standardError = ((reparametrization.variance(at: i) + other.variance(at: i)) / Double(count))
                    .squareRoot()
                largest = max(largest, abs(other.mean[i] - reparametrization.mean[i]) / standardError)
            }
            XCTAssertLessThan(largest, 5, "\(estimator) vs reparametrization: max |z|")
        }
    }

    // MARK: - Variance

    func testScoreFunctionIsNoisierThanThePathwiseGradientForTheEncoder() throws {
        let (model, images) = tinyModel()
        let report = try GradientVariance.measure(model: model, images: images, rows: rows, draws: 2000,
                                                  referenceDraws: 4000, seed: 3)
        XCTAssertEqual(report.groups.map(\.group), ["encoder", "encoder", "encoder", "decoder", "decoder", "decoder"])
        XCTAssertEqual(report.groups.map(\.estimator), GradientEstimator.scoreFunctionComparison + GradientEstimator.scoreFunctionComparison)
        let encoder = try XCTUnwrap(report.row(group: "encoder", estimator: .scoreFunction))
        XCTAssertGreaterThan(encoder.ratio, 1, "score function / reparametrization variance of the encoder")
        XCTAssertGreaterThan(encoder.variance, try XCTUnwrap(report.row(group: "encoder", estimator: .reparametrization)).variance)
        for row in report.groups {
            if row.estimator == .reparametrization { XCTAssertEqual(row.ratio, 1) }
            // The decoder gradient is the same ∇θ log p(x|z) in every estimator, on the same ε.
            if row.group == "decoder" { XCTAssertEqual(row.ratio, 1, "\(row.estimator)") }
            // Unbiased estimators: MSE = (N−1)/N · variance + ‖mean − g_ref‖², i.e. about the variance.
            XCTAssertEqual(row.mse / row.variance, 1, accuracy: 0.1, "\(row.group) \(row.estimator)")
        }
    }

    func testWorkerCountChangesOnlyTheSummationOrder() throws {
        let (model, images) = tinyModel(seed: 2)
        let one = try GradientVariance.measure(model: model, images: images, rows: rows, draws: 50, referenceDraws: 60,
                                               seed: 9, threads: 1)
        let two = try GradientVariance.measure(model: model, images: images, rows: rows, draws: 50, referenceDraws: 60,
                                               seed: 9, threads: 2)
        for (a, b) in zip(one.groups, two.groups) {
            XCTAssertEqual(a.variance, b.variance, accuracy: 1e-12 * a.variance)
            XCTAssertEqual(a.mse, b.mse, accuracy: 1e-12 * a.mse)
        }
    }

    // MARK: - Single draws

    func testReparametrizationDrawIsExactlyELBOEvaluate() throws {
        let (model, images) = tinyModel()
        let draws = try GradientDraws(model: model, images: images, rows: rows)
        let noise = normals(draws.noiseCount, seed: 4, draw: 0)
        let drawn = Buffer<Double>(count: model.parameterCount)
        try draws.draw(.reparametrization, noise: noise, into: drawn.pointer)

        let ws = StepWorkspace(model: model, capacity: rows, samples: 1)
        for i in 0..<images.count { ws.x[i] = images[i] }
        for i in 0..<noise.count { ws.noise[i] = noise[i] }
        let evaluated = Buffer<Double>(count: model.parameterCount)
        _ = try ELBO.evaluate(model: model, parameters: model.store.parameters.pointer, rows: rows, workspace: ws,
                              gradients: evaluated.pointer, lossScale: 1 / Double(rows))
        XCTAssertEqual(drawn.array, evaluated.array)
    }

    func testScoreFunctionSharesTheDecoderGradientAndNotTheEncoderOne() throws {
        let (model, images) = tinyModel()
        let draws = try GradientDraws(model: model, images: images, rows: rows)
        try draws.estimateBaseline(samples: 10, seed: 5)
        let noise = normals(draws.noiseCount, seed: 6, draw: 0)
        let gradients = GradientEstimator.scoreFunctionComparison.map { _ in Buffer<Double>(count: model.parameterCount) }
        for (estimator, g) in zip(GradientEstimator.scoreFunctionComparison, gradients) {
            try draws.draw(estimator, noise: noise, into: g.pointer)
        }
        let decoder = ParameterGroup.decoder(of: model).ranges.flatMap { $0 }
        let encoder = ParameterGroup.encoder(of: model).ranges.flatMap { $0 }
        XCTAssertEqual(decoder.count + encoder.count, model.parameterCount)
        for g in gradients.dropFirst() {
            XCTAssertEqual(decoder.map { g[$0] }, decoder.map { gradients[0][$0] })
            XCTAssertNotEqual(encoder.map { g[$0] }, encoder.map { gradients[0][$0] })
        }
    }

    /// With the baseline set to the draw's own −log p(x|z), the score term vanishes and the encoder gradient is the
    /// analytic KL gradient alone: ∂KL/∂μ = μ, ∂KL/∂s = ½(σ² − 1), each over B, backpropagated through the encoder.
    func testScoreFunctionWithAPerfectBaselineIsTheKLGradient() throws {
        let (model, images) = tinyModel()
        let draws = try GradientDraws(model: model, images: images, rows: rows)
        let noise = normals(draws.noiseCount, seed: 8, draw: 0)
        let g = Buffer<Double>(count: model.parameterCount)
        try draws.draw(.scoreFunction, noise: noise, into: g.pointer)
        for r in 0..<rows { draws.baseline[r] = draws.workspace.rec[r] }
        try draws.draw(.scoreFunctionBaseline, noise: noise, into: g.pointer)

        // The KL-only gradient through ELBO's own posterior backward (dz = 0), with an independent workspace.
        let ws = StepWorkspace(model: model, capacity: rows, samples: 1)
        for i in 0..<images.count { ws.x[i] = images[i] }
        let p = model.store.parameters.pointer
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        try model.posterior.prepare(parameters: ws.encoder.output, rows: rows, scratch: ws.scratch.pointer,
                                    logDeterminant: ws.logDeterminant.pointer)
        model.posterior.backward(parameters: ws.encoder.output, scratch: ws.scratch.pointer, noise: ws.noise.pointer,
                                 samples: 1, rows: rows, dz: ws.dz.pointer, dLogDeterminant: ws.dLogDeterminant.pointer,
                                 klWeight: 1 / Double(rows), dParameters: ws.encoder.outputGradient)
        let expected = Buffer<Double>(count: model.parameterCount)
        model.encoder.backward(parameters: p, gradients: expected.pointer, input: ws.x.pointer, rows: rows,
                               workspace: ws.encoder, inputGradient: nil, accumulate: false)
        for range in ParameterGroup.encoder(of: model).ranges {
            for i in range { XCTAssertEqual(g[i], expected[i], accuracy: 1e-15 * max(1, abs(expected[i])), "\(i)") }
        }
    }

    // MARK: - Moments

    func testMomentsMatchATwoPassComputationAndMergeInAnyGrouping() {
        let dimension = 4, count = 37
        var rng = RandomStream(seed: 11, purpose: .sampling)
        let samples = (0..<count).map { _ in (0..<dimension).map { i in 1e3 + Double(i) + rng.normal() } }
        var whole = GradientMoments(dimension: dimension)
        var parts = [GradientMoments(dimension: dimension), GradientMoments(dimension: dimension),
                     GradientMoments(dimension: dimension)]
        for (n, sample) in samples.enumerated() {
            sample.withUnsafeBufferPointer { whole.add($0.baseAddress!) }
            sample.withUnsafeBufferPointer { parts[n < 5 ? 0 : (n < 30 ? 1 : 2)].add($0.baseAddress!) }
        }
        var merged = GradientMoments(dimension: dimension)
        for part in parts { merged.merge(part) }
        merged.merge(GradientMoments(dimension: dimension))
        for i in 0..<dimension {
            let mean = samples.reduce(0) { $0 + $1[i] } / Double(count)
            let variance = samples.reduce(0) { $0 + ($1[i] - mean) * ($1[i] - mean) } / Double(count - 1)
            for m in [whole, merged] {
                XCTAssertEqual(m.count, count)
                XCTAssertEqual(m.mean[i], mean, accuracy: 1e-12 * mean)
                XCTAssertEqual(m.variance(at: i), variance, accuracy: 1e-10 * variance)
            }
        }
        let group = ParameterGroup(name: "some", ranges: [0..<1, 2..<4])
        XCTAssertEqual(whole.traceOfCovariance(over: group),
                       whole.variance(at: 0) + whole.variance(at: 2) + whole.variance(at: 3), accuracy: 1e-12)
    }

    // MARK: - Refusals

    func testRefusesDensePosteriorsAndTheMixturePrior() {
        for posterior in [PosteriorKind.full, .covariance] {
            var c = configuration
            c.posterior = posterior
            let (model, images) = tinyModel(c)
            XCTAssertThrowsError(try GradientDraws(model: model, images: images, rows: rows)) { error in
                XCTAssertEqual(error as? GradientVarianceError, .unsupportedPosterior(posterior))
                XCTAssertEqual("\(error)",
                               "grad-variance supports --posterior diagonal models; this checkpoint has \(posterior)")
            }
        }
        var mixture = configuration
        mixture.model = .gmvae
        mixture.prior = .mixture
        mixture.components = 3
        let (model, images) = tinyModel(mixture)
        XCTAssertThrowsError(try GradientVariance.measure(model: model, images: images, rows: rows, draws: 10)) {
            XCTAssertEqual($0 as? GradientVarianceError, .unsupportedPrior(.gmvae))
        }
    }

    func testRejectsTooFewDrawsAndTooLargeABatch() {
        let (model, images) = tinyModel()
        XCTAssertThrowsError(try GradientVariance.measure(model: model, images: images, rows: rows, draws: 1)) {
            XCTAssertEqual($0 as? GradientVarianceError, .invalidCount(flag: "--draws", value: 1, minimum: 2))
        }
        let most = GradientVariance.maximumDraws
        XCTAssertThrowsError(try GradientVariance.measure(model: model, images: images, rows: rows, draws: most + 1)) {
            XCTAssertEqual($0 as? GradientVarianceError, .tooManyDraws(flag: "--draws", value: most + 1, maximum: most))
        }
        XCTAssertThrowsError(try GradientVariance.checkDraws(.max, referenceDraws: nil)) {
            XCTAssertTrue("\($0)".hasPrefix("--draws must be at most 1000000 (got \(Int.max))"), "\($0)")
        }
        XCTAssertThrowsError(try GradientVariance.checkDraws(10, referenceDraws: .max)) {
            XCTAssertEqual($0 as? GradientVarianceError,
                           .tooManyDraws(flag: "--reference-draws", value: .max, maximum: 2 * most))
        }
        XCTAssertNoThrow(try GradientVariance.checkDraws(most, referenceDraws: 2 * most))
        XCTAssertEqual(GradientVariance.defaultReferenceDraws(draws: most), GradientVariance.maximumReferenceDraws)
        XCTAssertEqual(GradientVariance.defaultReferenceDraws(draws: .max), 2 * most, "no overflow in 2N")
        XCTAssertThrowsError(try GradientDraws(model: model, images: images, rows: rows + 1)) {
            XCTAssertEqual($0 as? GradientVarianceError, .invalidBatch(requested: rows + 1, available: rows))
        }
    }
}
