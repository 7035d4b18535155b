import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// Active units and the mean absolute posterior correlation (PosteriorStatistics) against a brute-force computation
/// here: Σ = AAᵀ + δI (covariance, A lower triangular) or diag(σ²) from the encoder outputs, formed in Double without
/// any factorization.
final class PosteriorStatisticsTests: XCTestCase {
    func check(posterior: PosteriorKind, seed: UInt64) throws {
        let k = 3, d = 8, count = 23
        let configuration = ModelConfiguration(model: .vae, posterior: posterior, inputs: d, hidden: [6], latent: k,
                                               activation: .tanh, jitter: 0.05)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: seed)
        // Unit 0's mean varies strongly across inputs (active), unit 2's barely (inactive), unit 1 in between; the
        // covariance head gets large entries so that the correlations are far from 0.
        let p = model.store.parameters.pointer, last = model.encoder.layers.last!
        let hidden = last.inputs
        for (u, scale) in [(0, 4.0), (1, 2.5), (2, 0.01)] {
            for h in 0..<hidden { p[last.weight.offset + u * hidden + h] *= Float(scale) }
        }
        if posterior == .covariance {
            // Large entries of A below the diagonal, of both signs: correlations of both signs.
            for (i, v) in [1.5, -1.5, 1.2].enumerated() { p[last.bias.offset + 2 * k + i] += Float(v) }
        }
        let binarized = uniform(count * d, seed: seed + 1, 0, 1).map { Float($0 < 0.5 ? 1 : 0) }
        // Batches of 10 over 2 workers: the statistics must combine partial sums correctly.
        let stats = try Evaluator(model: model, threads: 2, batchSize: 10)
            .posteriorStatistics(binarized: binarized, count: count)

        // The encoder outputs, then everything else in Double by the definitions.
        let workspace = MLPWorkspace<Float>(model.encoder, capacity: count)
        binarized.withUnsafeBufferPointer { x in
            model.encoder.forward(parameters: UnsafePointer(p), input: x.baseAddress!, rows: count, workspace: workspace)
        }
        let width = configuration.posteriorParameterCount
        let outputs = (0..<(count * width)).map { Double(workspace.output[$0]) }
        var means = [[Double]](), correlations = [Double]()
        for r in 0..<count {
            let row = Array(outputs[(r * width)..<((r + 1) * width)])
            means.append(Array(row[0..<k]))
            var sigma = [Double](repeating: 0, count: k * k)
            switch posterior {
            case .diagonal:
                // The diagonal family's second half is s = log σ² (MATH.md §2).
                for i in 0..<k { sigma[i * k + i] = Foundation.exp(row[k + i]) }
            case .covariance:
                sigma = covarianceByHand(.covariance, row: row, latent: k, jitter: Double(Float(configuration.jitter)))
            case .full:
                XCTFail("not covered here")
            }
            var total = 0.0
            for a in 0..<k {
                for b in 0..<a { total += abs(sigma[a * k + b]) / (sigma[a * k + a] * sigma[b * k + b]).squareRoot() }
            }
            correlations.append(total / Double(k * (k - 1) / 2))
        }
        let variances = (0..<k).map { u -> Double in
            let mean = means.reduce(0) { $0 + $1[u] } / Double(count)
            return means.reduce(0) { $0 + ($1[u] - mean) * ($1[u] - mean) } / Double(count)
        }
        let threshold = PosteriorStatistics.activityThreshold
        // The count is only meaningful if no variance sits at the threshold.
        XCTAssertTrue(variances.allSatisfy { abs($0 - threshold) > 0.2 * threshold }, "\(variances)")
        let expectedActive = variances.filter { $0 > threshold }.count
        XCTAssertTrue(expectedActive > 0 && expectedActive < k, "\(posterior): a mixed case \(variances)")
        XCTAssertEqual(stats.examples, count)
        XCTAssertEqual(stats.activeUnits, expectedActive, "\(posterior): variances \(variances)")
        XCTAssertEqual(stats.unitVariances.count, k)
        for u in 0..<k {
            XCTAssertEqual(stats.unitVariances[u], variances[u], accuracy: 1e-5 * max(variances[u], 1e-3),
                           "\(posterior): unit \(u)")
        }
        let expectedCorrelation = correlations.reduce(0, +) / Double(count)
        if posterior == .covariance { XCTAssertGreaterThan(expectedCorrelation, 0.1) }
        XCTAssertEqual(stats.meanAbsoluteCorrelation, expectedCorrelation, accuracy: 1e-5,
                       "\(posterior): mean |corr|")
    }

    func testCovarianceStatisticsMatchBruteForce() throws { try check(posterior: .covariance, seed: 1400) }

    func testDiagonalStatisticsMatchBruteForce() throws { try check(posterior: .diagonal, seed: 1410) }
}
