import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels

/// STL (m = 1) and DReG estimate the same gradient as the standard estimator (MATH.md §10): their expectations over
/// ε, taken exactly by Gauss–Hermite quadrature on a tiny model (k = 1, one example, m ≤ 2), agree to 1e-6. STL with
/// m > 1 is biased (its dropped score terms are weighted by w̃_s, which depends on z_s): the test shows that too.
final class EstimatorUnbiasednessTests: XCTestCase {
    /// A tiny Double model with tanh layers, so that every gradient is analytic in ε; larger-than-default weights and
    /// a spread mixture so that each estimator's terms are far from zero. The posterior's scale stays near 0.9: the
    /// normalized weights are a logistic function of a quadratic in ε whose curvature grows with |σ² − 1|, and
    /// the quadrature converges slowly when it is large.
    func makeModel(posterior: PosteriorKind, prior: PriorKind, samples: Int) throws -> VariationalAutoencoder<Double> {
        let configuration = ModelConfiguration(model: .iwae, posterior: posterior, inputs: 4, hidden: [3], latent: 1,
                                               activation: .tanh, samples: samples, prior: prior, components: 2)
        try configuration.validate()
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: 28)
        let p = model.store.parameters.pointer
        for (i, v) in uniform(model.parameterCount, seed: 281, -0.3, 0.3).enumerated() { p[i] = 1.5 * p[i] + v }
        let head = model.encoder.layers.last!
        for j in 0..<head.inputs { p[head.weight.offset + head.inputs + j] *= 0.2 }
        let scale = 0.9
        switch posterior {
        case .diagonal: p[head.bias.offset + 1] = 2 * log(scale)
        // The full and covariance families emit log L_11 and log A_11 (MATH.md §2).
        case .full, .covariance: p[head.bias.offset + 1] = log(scale)
        }
        if let mixture = model.mixture {
            p[mixture.means.offset] = -1
            p[mixture.means.offset + 1] = 0.8
            p[mixture.logVariances.offset] = -0.4
            p[mixture.logVariances.offset + 1] = 0.3
        }
        return model
    }

    /// E_ε[gradient] of one objective over the m-dimensional grid, and the largest per-point distance from
    /// `other` (when given), so a test can show the estimators differ draw by draw.
    func expectedGradient(_ objective: any TrainingObjective, model: VariationalAutoencoder<Double>, samples m: Int,
                          rule: GaussHermite) throws -> (mean: [Double], points: [[Double]]) {
        let ws = StepWorkspace(model: model, capacity: 1, samples: m)
        for (i, v) in [1.0, 0, 1, 1].enumerated() { ws.x[i] = v }
        var mean = [Double](repeating: 0, count: model.parameterCount)
        var points: [[Double]] = []
        let g = model.store.gradients
        try rule.forEachPoint(dimension: m) { eps, weight in
            for s in 0..<m { ws.noise[s] = eps[s] }
            _ = try Objective.evaluate(objective, model: model, parameters: model.store.parameters.pointer, rows: 1,
                                       samples: m, workspace: ws, gradients: g.pointer, lossScale: 1)
            for i in 0..<mean.count { mean[i] += weight * g[i] }
            points.append(g.array)
        }
        return (mean, points)
    }

    func check(posterior: PosteriorKind, prior: PriorKind, samples m: Int, file: StaticString = #filePath,
               line: UInt = #line) throws {
        let model = try makeModel(posterior: posterior, prior: prior, samples: m)
        let rule = GaussHermite(points: m == 1 ? 80 : 64)
        let label = "\(posterior)/\(prior) m=\(m)"
        let standard = try expectedGradient(ImportanceWeighted(estimator: .standard), model: model, samples: m,
                                            rule: rule)
        var others: [(String, any TrainingObjective)] = []
        if m == 1 { others.append(("stl", ImportanceWeighted(estimator: .stl))) }
        if m > 1 { others.append(("dreg", ImportanceWeighted(estimator: .dreg))) }
        if m == 1 && prior == .normal { others.append(("analytic-KL ELBO", ELBO())) }
        let encoder = model.encoder.layers.flatMap { [$0.weight.range, $0.bias.range] }.flatMap { $0 }
        XCTAssertGreaterThan(encoder.map { abs(standard.mean[$0]) }.max()!, 1e-3, "\(label): vacuous (gradient ≈ 0)",
                             file: file, line: line)
        for (name, objective) in others {
            let estimate = try expectedGradient(objective, model: model, samples: m, rule: rule)
            let error = scaledGradientError(analytic: estimate.mean, numerical: standard.mean)
            XCTAssertLessThan(error, 1e-6, "\(label): E[\(name)] vs E[standard]", file: file, line: line)
            // Not the same estimator: the encoder gradients differ at some quadrature point.
            let spread = zip(estimate.points, standard.points).map { a, b in encoder.map { abs(a[$0] - b[$0]) }.max()! }
            XCTAssertGreaterThan(spread.max()!, 1e-3, "\(label): \(name) equals standard pointwise", file: file, line: line)
        }
        if m > 1 {
            let stl = try expectedGradient(ImportanceWeighted(estimator: .stl), model: model, samples: m, rule: rule)
            let bias = scaledGradientError(analytic: stl.mean, numerical: standard.mean)
            XCTAssertGreaterThan(bias, 1e-2, "\(label): STL's bias for m > 1 vanished", file: file, line: line)
        }
    }

    func testDiagonalNormal() throws {
        for m in [1, 2] { try check(posterior: .diagonal, prior: .normal, samples: m) }
    }
    func testDiagonalMixture() throws {
        for m in [1, 2] { try check(posterior: .diagonal, prior: .mixture, samples: m) }
    }
    func testFullNormal() throws {
        for m in [1, 2] { try check(posterior: .full, prior: .normal, samples: m) }
    }
    func testFullMixture() throws {
        for m in [1, 2] { try check(posterior: .full, prior: .mixture, samples: m) }
    }
    func testCovarianceNormal() throws {
        for m in [1, 2] { try check(posterior: .covariance, prior: .normal, samples: m) }
    }
    func testCovarianceMixture() throws {
        for m in [1, 2] { try check(posterior: .covariance, prior: .mixture, samples: m) }
    }
}
