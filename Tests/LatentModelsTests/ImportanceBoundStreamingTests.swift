import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The streamed IWAE evaluation (running log-sum-exp, rescaled when a new maximum arrives) against a direct
/// log-sum-exp over all samples computed here, in Double, for several chunk sizes: equal to 1e-12.
final class ImportanceBoundStreamingTests: XCTestCase {
    /// The noise, log-weights and −L_m of every example computed at once (all `largest` samples in one pass), then
    /// −L_m = −(max + log Σ exp(w − max) − log m) over the first m log-weights, averaged over examples.
    func directBounds(model: VariationalAutoencoder<Double>, binarized: [Double], count: Int, sampleCounts: [Int],
                      seed: UInt64) throws -> [Int: Double] {
        let d = model.configuration.inputs, k = model.configuration.latent, largest = sampleCounts.max()!
        let ws = StepWorkspace(model: model, capacity: 1, samples: largest)
        var totals = [Int: Double]()
        for i in 0..<count {
            for t in 0..<d { ws.x[t] = binarized[i * d + t] }
            // The evaluator's stream for example i, one sample of k values at a time.
            var rng = RandomStream(seed: seed, purpose: .evaluation, step: 1, index: UInt64(i))
            for s in 0..<largest { rng.fillNormal(ws.noise.pointer + s * k, count: k) }
            _ = try ImportanceWeighted.evaluate(model: model, parameters: model.store.parameters.pointer, rows: 1,
                                                samples: largest, workspace: ws, gradients: nil, lossScale: 1)
            let w = (0..<largest).map { ws.logWeights[$0] }
            for m in sampleCounts {
                let top = w[0..<m].max()!
                let sum = w[0..<m].reduce(0.0) { $0 + Foundation.exp($1 - top) }
                totals[m, default: 0] -= top + Foundation.log(sum) - Foundation.log(Double(m))
            }
        }
        return totals.mapValues { $0 / Double(count) }
    }

    func testStreamedBoundsEqualDirectLogSumExpAtEveryChunkSize() throws {
        let cases: [(PosteriorKind, PriorKind)] = [(.diagonal, .normal), (.covariance, .normal), (.full, .mixture)]
        for (n, (posterior, prior)) in cases.enumerated() {
            let configuration = ModelConfiguration(model: .iwae, posterior: posterior, inputs: 8, hidden: [6],
                                                   latent: 3, activation: .elu, samples: 2, prior: prior,
                                                   components: 3)
            let model = VariationalAutoencoder<Double>(configuration)
            model.initialize(seed: 1100 + UInt64(n))
            // Larger weights than the default initialization, so that the log-weights spread over several nats and
            // new maxima keep arriving late in the stream.
            let p = model.store.parameters.pointer
            for i in 0..<model.parameterCount { p[i] *= 3 }
            let count = 7, rowsPerWorker = 4, seed: UInt64 = 1200
            let binarized = uniform(count * configuration.inputs, seed: 1110 + UInt64(n), 0, 1).map { $0 < 0.4 ? 1.0 : 0 }
            let sampleCounts = [1, 10, 120]
            let direct = try directBounds(model: model, binarized: binarized, count: count,
                                          sampleCounts: sampleCounts, seed: seed)
            for chunk in [1, 7, 50, 120] {
                let evaluator = try ImportanceBoundEvaluator(model: model, threads: 1, rowsPerWorker: rowsPerWorker,
                                                         decoderRows: chunk * rowsPerWorker)
                XCTAssertEqual(evaluator.chunk, chunk)
                let streamed = try evaluator.evaluate(binarized: binarized, count: count, sampleCounts: sampleCounts,
                                                      seed: seed)
                for m in sampleCounts {
                    let s = try XCTUnwrap(streamed.bounds[m]), e = try XCTUnwrap(direct[m])
                    XCTAssertLessThan(relativeError(s, e), 1e-12,
                                      "\(posterior)/\(prior) chunk \(chunk): −L_\(m) streamed \(s) vs direct \(e)")
                }
            }
        }
    }
}
