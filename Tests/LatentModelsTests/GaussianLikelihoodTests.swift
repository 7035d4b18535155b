import LatentCore
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining
import TestSupport
import XCTest

/// The Gaussian likelihood for intensities (MATH.md §9): its values by hand, and the gradient of whole objectives
/// that use it, every parameter group and the per-pixel log-variances included, by central differences in Double.
final class GaussianLikelihoodTests: XCTestCase {
    func testValuesByHandAndTheVarianceFloor() {
        let store = ParameterStore<Double>()
        let likelihood = GaussianLikelihood(inputs: 3, store: store)
        store.allocate()
        let s: [Double] = [0.3, -1.2, -40]  // the last below the floor
        for (i, v) in s.enumerated() { store.parameters[likelihood.logVariance.offset + i] = v }
        let a: [Double] = [0.5, -2, 3, 1, 0, -1], x: [Double] = [0.2, 0.9, 1, 0, 0.5, 0.25]
        var out = [Double](repeating: 0, count: 2), terms = [Double](repeating: 0, count: 3)
        var gradient = [Double](repeating: 0, count: 6)
        let scale: [Double] = [0.5, 2]
        likelihood.evaluate(parameters: store.parameters.pointer, outputs: a, targets: x, rows: 2, columns: 3,
                            negativeLogLikelihood: &out, gradient: &gradient, scale: scale, terms: &terms)
        for r in 0..<2 {
            var expected = 0.0
            for d in 0..<3 {
                let mean = 1 / (1 + exp(-a[r * 3 + d])), logVariance = max(s[d], -2 * log(255.0))
                let residual = x[r * 3 + d] - mean
                expected += 0.5 * (log(2 * Double.pi) + logVariance + residual * residual * exp(-logVariance))
                let dA = -residual * exp(-logVariance) * mean * (1 - mean)
                XCTAssertEqual(gradient[r * 3 + d], scale[r] * dA, accuracy: 1e-12 * max(1, abs(dA)))
            }
            XCTAssertEqual(out[r], expected, accuracy: 1e-12 * abs(expected))
        }
    }

    /// −L (the ELBO, or the m-sample bound) times 1/rows and its gradient, checked group by group.
    func check(_ configuration: ModelConfiguration, rows: Int, seed: UInt64) throws {
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: seed)
        let p = model.store.parameters.pointer
        for i in 0..<model.parameterCount { p[i] *= 2 }
        guard let gaussian = model.likelihood as? GaussianLikelihood else { return XCTFail("not Gaussian") }
        let s = uniform(configuration.inputs, seed: seed + 4, -1.5, 1)
        for (i, v) in s.enumerated() { p[gaussian.logVariance.offset + i] = v }
        p[gaussian.logVariance.offset] = -30  // floored: no gradient, and none numerically
        let m = configuration.samples, d = configuration.inputs, k = configuration.latent
        let ws = StepWorkspace(model: model, capacity: rows)
        for (i, v) in uniform(rows * d, seed: seed + 1, 0, 1).enumerated() { ws.x[i] = v }
        for (i, v) in normals(m * rows * k, seed: seed + 2).enumerated() { ws.noise[i] = v }
        let lossScale = 1 / Double(rows)
        let f: () -> Double = {
            lossScale * (try! Objective.evaluate(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                                 gradients: nil, lossScale: lossScale)).loss
        }
        let gradient = Buffer<Double>([Double](repeating: .nan, count: model.parameterCount))
        let sums = try Objective.evaluate(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                          gradients: gradient.pointer, lossScale: lossScale)
        XCTAssertEqual(sums.loss * lossScale, f(), accuracy: 1e-12 * abs(f()))
        XCTAssertTrue(model.store.views.contains { $0.name == "likelihood.logVariance" })
        for view in model.store.views {
            assertGradient(view.range.map { gradient[$0] }, numericalGradient(of: f, at: p, indices: Array(view.range)),
                           "\(configuration.model) \(view.name)")
        }
        XCTAssertEqual(gradient[gaussian.logVariance.offset], 0)
    }

    func testELBOGradientWithGaussianLikelihood() throws {
        try check(ModelConfiguration(inputs: 6, hidden: [5], latent: 2, likelihood: .gaussian, binarization: .none),
                  rows: 3, seed: 120)
    }

    func testIWAEGradientWithGaussianLikelihood() throws {
        try check(ModelConfiguration(model: .iwae, posterior: .full, inputs: 5, hidden: [4], latent: 2, samples: 3,
                                     likelihood: .gaussian, binarization: .none), rows: 2, seed: 130)
    }

    func testMixturePriorGradientWithGaussianLikelihood() throws {
        try check(ModelConfiguration(model: .gmvae, inputs: 5, hidden: [4], latent: 2, components: 3,
                                     likelihood: .gaussian, binarization: .none), rows: 2, seed: 140)
    }
}
