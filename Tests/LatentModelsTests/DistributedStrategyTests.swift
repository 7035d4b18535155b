import LatentCore
import LatentData
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining
import TestSupport
import XCTest

/// `DistributedStrategy` with ranks as threads (`ThreadedRanks`): every rank's summed gradient is the one-process
/// reference step's on the whole global batch (draws keyed by the global row, the loss over the global batch), up to
/// the order of the sums, and every rank gets the same bits, so the parameters stay identical after Adam.
final class DistributedStrategyTests: XCTestCase {
    let configurations = [
        ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3),
        ModelConfiguration(model: .gmvae, posterior: .full, inputs: 16, hidden: [12], latent: 3, components: 4),
        ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 16, hidden: [20, 18], latent: 2, samples: 4),
        ModelConfiguration(inputs: 36, hidden: [24], latent: 4, likelihood: .gaussian, binarization: .none),
    ]

    /// A trainer on 30 images with batch 9 (its ranks' shares: 5 + 4, or 3 + 3 + 3).
    func trainer(_ configuration: ModelConfiguration, _ parallelism: Trainer.Parallelism, threads: Int,
                 communicator: (any Communicator)?) throws -> Trainer {
        let side = Int(Double(configuration.inputs).squareRoot())
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let trainer = try Trainer(model: model, images: images(count: 30, side: side, seed: 5), batchSize: 9,
                              learningRate: 1e-3, seed: 31, threads: threads, parallelism: parallelism,
                              communicator: communicator)
        trainer.beginEpoch(0)
        return trainer
    }

    /// The gradient and loss of batch 1 after one training step on batch 0.
    func secondGradient(_ trainer: Trainer) throws -> (gradient: [Float], loss: Double, examples: Int) {
        _ = try trainer.trainStep(batch: 0)
        let collector = StrategyTests.GradientCollector(count: trainer.model.parameterCount)
        let sums = try trainer.gradient(batch: 1, into: collector)
        XCTAssertEqual(Set(collector.visits), [1], "every parameter's gradient arrives once")
        return (collector.gradient, sums.loss, sums.examples)
    }

    func testRanksComputeTheGlobalBatchsReferenceStepAndAgreeBitForBit() throws {
        for configuration in configurations {
            let expected = try secondGradient(trainer(configuration, .reference, threads: 1, communicator: nil))
            let scale = expected.gradient.map(abs).max()!
            for (ranks, parallelism, threads) in [(2, Trainer.Parallelism.reference, 1), (3, .reference, 1),
                                                   (2, .data, 2)] {
                let name = "\(configuration.model) \(configuration.likelihood) \(ranks) ranks × \(parallelism)"
                final class Results: @unchecked Sendable { var values: [(gradient: [Float], loss: Double, examples: Int)?] = [] }
                let results = Results()
                results.values = Array(repeating: nil, count: ranks)
                ThreadedRanks(size: ranks).run { rank, communicator in
                    results.values[rank] = try? self.secondGradient(
                        self.trainer(configuration, parallelism, threads: threads, communicator: communicator))
                }
                let first = try XCTUnwrap(results.values[0], name)
                XCTAssertEqual(first.examples, 9, name)
                XCTAssertEqual(first.loss, expected.loss, accuracy: 1e-5 * abs(expected.loss), name)
                let worst = zip(first.gradient, expected.gradient).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5 * scale, name)
                for rank in 1..<ranks {
                    let other = try XCTUnwrap(results.values[rank], name)
                    XCTAssertEqual(other.gradient.map(\.bitPattern), first.gradient.map(\.bitPattern),
                                   "\(name): rank \(rank)'s sum differs from rank 0's")
                    XCTAssertEqual(other.loss, first.loss, name)
                }
            }
        }
    }

    /// A batch smaller than the ranks: the ranks without rows add zeros.
    func testRanksWithoutRowsAddNothing() throws {
        let configuration = configurations[0]
        let side = Int(Double(configuration.inputs).squareRoot())
        func make(_ communicator: (any Communicator)?) throws -> Trainer {
            let model = VariationalAutoencoder<Float>(configuration)
            model.initialize(seed: 3)
            let t = try Trainer(model: model, images: images(count: 2, side: side, seed: 5), batchSize: 2,
                            learningRate: 1e-3, seed: 31, threads: 1, communicator: communicator)
            t.beginEpoch(0)
            return t
        }
        let collector = StrategyTests.GradientCollector(count: try make(nil).model.parameterCount)
        let expected = try make(nil).gradient(batch: 0, into: collector)
        final class Box: @unchecked Sendable { var loss = [Double](repeating: .nan, count: 3); var g: [Float] = [] }
        let box = Box()
        ThreadedRanks(size: 3).run { rank, communicator in
            let c = StrategyTests.GradientCollector(count: collector.gradient.count)
            box.loss[rank] = (try? make(communicator).gradient(batch: 0, into: c))?.loss ?? .nan
            if rank == 2 { box.g = c.gradient }
        }
        XCTAssertEqual(box.loss[2], expected.loss, accuracy: 1e-5 * abs(expected.loss))
        let scale = collector.gradient.map(abs).max()!
        XCTAssertLessThan(zip(box.g, collector.gradient).map { abs($0 - $1) }.max()!, 1e-5 * scale)
    }
}
