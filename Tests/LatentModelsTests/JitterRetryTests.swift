import Foundation
import LatentCore
import LatentData
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The covariance family's jitter retry rules (CovarianceGaussian): non-finite input fails at once, a hopeless
/// matrix throws uncounted, and retries are counted once per factorization, training and evaluation apart.
final class JitterRetryTests: XCTestCase {
    /// A NaN or infinite A is reported as non-finite at once (not retried as if it were not positive definite),
    /// and a matrix that no raise below the ceiling can fix (A = 0, δ = 0: s = 0) throws without being counted.
    func testNonFiniteAndHopelessCovarianceThrowWithoutCounting() {
        let k = 3
        for bad in [Double.nan, .infinity, -.infinity] {
            let counter = FactorizationCounter()
            let posterior = CovarianceGaussian<Double>(latent: k, jitter: 1e-3, retries: counter)
            var row: [Double] = [0.1, 0.2, 0.3] + [0, 0.1, -0.1] + [0.2, 0.3, 0.1]
            row[2 * k + 1] = bad
            let q = Buffer<Double>(row)
            let scratch = Buffer<Double>(count: posterior.scratchPerRow), logDet = Buffer<Double>(count: 1)
            XCTAssertThrowsError(try posterior.prepare(parameters: q.pointer, rows: 1, scratch: scratch.pointer,
                                                       logDeterminant: logDet.pointer)) { error in
                XCTAssertEqual(error as? LinearAlgebraError, .nonFinite(order: k), "A holding \(bad)")
            }
            XCTAssertEqual(counter.value, 0)
        }
        let counter = FactorizationCounter()
        let posterior = CovarianceGaussian<Double>(latent: k, jitter: 0, retries: counter)
        // A = 0: e^d underflows to 0 on the diagonal, nothing below it.
        let q = Buffer<Double>([0, 0, 0] + [-1000, -1000, -1000] + [0, 0, 0])
        let scratch = Buffer<Double>(count: posterior.scratchPerRow), logDet = Buffer<Double>(count: 1)
        XCTAssertThrowsError(try posterior.prepare(parameters: q.pointer, rows: 1, scratch: scratch.pointer,
                                                   logDeterminant: logDet.pointer)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notPositiveDefinite(order: k, leadingMinor: 1))
        }
        XCTAssertEqual(counter.value, 0, "the final failing attempt is not a retry")
    }

    /// A covariance model whose encoder emits A = [[1, 0], [1, 0]] (A_11 = e^{−1000} = 0) for every input (last
    /// layer's weights zero):
    /// AAᵀ = [[1, 1], [1, 1]] is singular and δ = 1e-17 leaves it so, so every example needs one raise.
    func singularModel<T: BLASScalar>(_: T.Type) -> VariationalAutoencoder<T> {
        let configuration = ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 6, hidden: [4], latent: 2,
                                               activation: .elu, samples: 1, jitter: 1e-17)
        let model = VariationalAutoencoder<T>(configuration)
        model.initialize(seed: 1300)
        let p = model.store.parameters.pointer, last = model.encoder.layers.last!
        for i in last.weight.range { p[i] = 0 }
        for (i, v) in [0.1, -0.2, 0, -1000, 1].enumerated() { p[last.bias.offset + i] = T(v) }
        return model
    }

    func testTrainingAndEvaluationRetriesAreCountedApartOncePerExample() throws {
        let count = 5, d = 6, k = 2
        let binarized = uniform(count * d, seed: 1310, 0, 1).map { $0 < 0.5 ? 1.0 : 0 }
        let model = singularModel(Double.self)
        // Training: one step over the 5 examples counts 5, into the training counter only.
        let ws = StepWorkspace(model: model, capacity: count, samples: 1)
        for i in 0..<(count * d) { ws.x[i] = binarized[i] }
        for (i, v) in normals(count * k, seed: 1311).enumerated() { ws.noise[i] = v }
        _ = try Objective.evaluate(model: model, parameters: model.store.parameters.pointer, rows: count, samples: 1,
                                   workspace: ws, gradients: model.store.gradients.pointer, lossScale: 1)
        XCTAssertEqual(model.factorizationRetries.value, count)
        XCTAssertEqual(model.evaluationFactorizationRetries.value, 0)
        // IWAE evaluation with 1 sample per chunk re-factorizes each example 30 times: it still counts once each.
        let evaluator = try ImportanceBoundEvaluator(model: model, threads: 1, rowsPerWorker: 2, decoderRows: 2)
        XCTAssertEqual(evaluator.chunk, 1)
        let result = try evaluator.evaluate(binarized: binarized, count: count, sampleCounts: [3, 30])
        XCTAssertTrue(result.bounds.values.allSatisfy { $0.isFinite }, "\(result.bounds)")
        XCTAssertEqual(model.evaluationFactorizationRetries.value, count, "once per example, not per chunk")
        XCTAssertEqual(model.factorizationRetries.value, count, "evaluation leaves the training count alone")
    }

    /// The Float evaluators (one-sample NELBO, posterior statistics) count into the evaluation counter.
    func testFloatEvaluatorsCountIntoTheEvaluationCounter() throws {
        let count = 4, d = 6
        let binarized = uniform(count * d, seed: 1320, 0, 1).map { Float($0 < 0.5 ? 1 : 0) }
        let model = singularModel(Float.self)
        let evaluator = try Evaluator(model: model, threads: 1)
        let sums = evaluator.evaluate(binarized: binarized, count: count)
        XCTAssertTrue(sums.nelbo.isFinite, "\(sums)")
        XCTAssertEqual(model.evaluationFactorizationRetries.value, count)
        _ = try evaluator.posteriorStatistics(binarized: binarized, count: count)
        XCTAssertEqual(model.evaluationFactorizationRetries.value, 2 * count)
        XCTAssertEqual(model.factorizationRetries.value, 0)
    }
}
