import LatentCore
import LatentData
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining
import XCTest

/// Every training strategy against the reference step (`ReferenceStep`): the same loss, the same gradient up to the
/// order of the floating-point sums, and bit-identical results from run to run. A change to the model starts in the
/// reference step; these tests say what else must follow.
final class StrategyTests: XCTestCase {
    /// Receives a step's gradient into one flat buffer, checking that each parameter arrives exactly once.
    final class GradientCollector: GradientConsumer {
        var gradient: [Float]
        var visits: [Int]
        init(count: Int) {
            gradient = Array(repeating: .nan, count: count)
            visits = Array(repeating: 0, count: count)
        }
        func consume(parameters _: UnsafeMutablePointer<Float>, range: Range<Int>, gradient g: UnsafePointer<Float>) {
            for i in range {
                gradient[i] = g[i - range.lowerBound]
                visits[i] += 1
            }
        }
    }

    let configurations = [
        ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3),
        ModelConfiguration(model: .gmvae, posterior: .full, inputs: 16, hidden: [12], latent: 3, components: 4),
        ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 16, hidden: [20, 18], latent: 2, samples: 4),
        ModelConfiguration(model: .iwae, inputs: 16, hidden: [20], latent: 2, samples: 10, likelihood: .gaussian,
                           binarization: .none),
        ModelConfiguration(inputs: 36, hidden: [24], latent: 4, likelihood: .gaussian, binarization: .none),
        // The estimators of MATH.md §10: STL on the one-sample ELBO, DReG on IWAE with both priors.
        ModelConfiguration(inputs: 36, hidden: [24], latent: 4, estimator: .stl),
        ModelConfiguration(model: .iwae, posterior: .full, inputs: 16, hidden: [20, 18], latent: 3, samples: 5,
                           prior: .mixture, components: 4, estimator: .dreg),
        ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 16, hidden: [20], latent: 2, samples: 3,
                           estimator: .dreg),
        // k at the batched Cholesky's crossover: the reference's 9 rows make a group and a row, the strategies' blocks
        // of 3 to 5 rows none.
        ModelConfiguration(posterior: .covariance, inputs: 16, hidden: [12], latent: BatchedCholesky.crossoverOrder),
    ]

    func trainer(_ configuration: ModelConfiguration, _ parallelism: Trainer.Parallelism, threads: Int,
                 batch: Int = 9) throws -> Trainer {
        let side = Int(Double(configuration.inputs).squareRoot())
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let trainer = try Trainer(model: model, images: images(count: 30, side: side, seed: 5), batchSize: batch,
                              learningRate: 1e-3, seed: 31, threads: threads, parallelism: parallelism)
        trainer.beginEpoch(0)
        return trainer
    }

    /// The gradient and loss of batch 1 after one training step on batch 0.
    func secondGradient(_ trainer: Trainer) throws -> (gradient: [Float], loss: Double) {
        _ = try trainer.trainStep(batch: 0)
        let collector = GradientCollector(count: trainer.model.parameterCount)
        let sums = try trainer.gradient(batch: 1, into: collector)
        XCTAssertEqual(Set(collector.visits), [1], "every parameter's gradient arrives once")
        return (collector.gradient, sums.loss)
    }

    func testEveryStrategyComputesTheReferenceStep() throws {
        for configuration in configurations {
            let reference = try trainer(configuration, .reference, threads: 1)
            XCTAssertTrue(reference.strategy is ReferenceStep)
            let expected = try secondGradient(reference)
            let scale = expected.gradient.map(abs).max()!
            XCTAssertGreaterThan(scale, 0)
            for (parallelism, threads) in [(Trainer.Parallelism.data, 2), (.data, 3), (.tensor, 2), (.tensor, 3),
                                           (.blas, 2)] {
                let name = "\(configuration.model) \(configuration.likelihood) \(parallelism) \(threads) threads"
                let actual = try secondGradient(trainer(configuration, parallelism, threads: threads))
                XCTAssertEqual(actual.loss, expected.loss, accuracy: 1e-5 * abs(expected.loss), name)
                for view in reference.model.store.views {
                    let worst = view.range.map { abs(actual.gradient[$0] - expected.gradient[$0]) }.max()!
                    XCTAssertLessThan(worst, 1e-5 * scale, "\(name): \(view.name)")
                }
            }
        }
    }

    /// The reference step is the objective's straight-line pass, bit for bit.
    func testReferenceStepIsTheObjectivesStraightLinePass() throws {
        for configuration in configurations {
            let trainer = try trainer(configuration, .reference, threads: 1, batch: 30)
            let collector = GradientCollector(count: trainer.model.parameterCount)
            let sums = try trainer.gradient(batch: 0, into: collector)
            let step = trainer.strategy as! ReferenceStep
            // Its workspace still holds the batch's inputs and noise: run the objective over them again.
            let g = Buffer<Float>(count: trainer.model.parameterCount)
            let again = try Objective.evaluate(
                trainer.model.objective, model: trainer.model, parameters: trainer.model.store.parameters.pointer, rows: 30,
                samples: configuration.samples, workspace: step.workspace, gradients: g.pointer, lossScale: 1 / 30)
            XCTAssertEqual(sums, again, "\(configuration.model) \(configuration.likelihood) \(configuration.estimator)")
            XCTAssertEqual(collector.gradient.map(\.bitPattern), g.array.map(\.bitPattern))
        }
    }

    /// The same strategy and thread count give bit-identical parameters, moments and losses from run to run.
    func testEveryStrategyIsBitIdenticalRunToRun() throws {
        for configuration in configurations {
            for (parallelism, threads) in [(Trainer.Parallelism.reference, 1), (.data, 2), (.tensor, 3), (.blas, 2)] {
                func run() throws -> [UInt32] {
                    let t = try trainer(configuration, parallelism, threads: threads)
                    var losses: [Double] = []
                    for batch in 0..<3 { losses.append(try t.trainStep(batch: batch).loss) }
                    return t.model.store.parameters.array.map(\.bitPattern) + t.adam.secondMoment.array.map(\.bitPattern)
                        + losses.map { UInt32(truncatingIfNeeded: $0.bitPattern) }
                }
                XCTAssertEqual(try run(), try run(), "\(configuration.model) \(parallelism) \(threads) threads")
            }
        }
    }

    /// A batch index past the epoch is an error, not a trap or a silent zero.
    func testBatchPastTheEpochIsRefused() throws {
        let t = try trainer(configurations[0], .tensor, threads: 2)
        XCTAssertThrowsError(try t.trainStep(batch: t.stepsPerEpoch))
        XCTAssertThrowsError(try t.trainStep(batch: -1))
    }
}
