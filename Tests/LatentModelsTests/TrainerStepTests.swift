import LatentCore
import LatentData
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining
import XCTest

/// The data-parallel step (activations per worker slice, weight gradients per block of output rows from every
/// slice) computes the gradient of the whole minibatch: after one step, Adam's first moment is (1 − β₁) times the
/// gradient that one `Objective.evaluate` over the whole batch, in one workspace, gives for the same draws.
final class TrainerStepTests: XCTestCase {
    func testStepGradientIsTheWholeBatchGradientForAnyWorkerCount() throws {
        let configuration = ModelConfiguration(inputs: 9, hidden: [6, 5], latent: 2)
        for threads in [1, 2, 3, 7] { try check(configuration, threads: threads) }
    }

    /// Layers wide enough to be split into several blocks of region 2's queue (≥ 64 outputs).
    func testStepGradientWithLayersSplitIntoBlocks() throws {
        let configuration = ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3)
        for threads in [2, 3] { try check(configuration, threads: threads, batch: 9) }
    }

    /// Region 1's queue: when the other workers are late, the first takes every slice, and the step (parameters,
    /// moments, term sums) is bit-identical to the one the workers compute together.
    func testOneWorkerTakingEverySliceComputesTheSameStep() throws {
        let data = images(count: 30, side: 10, seed: 5)
        func train(lateWorkers: Bool) throws -> (parameters: [Float], moments: [Float], losses: [Double]) {
            let model = VariationalAutoencoder<Float>(ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3))
            model.initialize(seed: 3)
            let trainer = try Trainer(model: model, images: data, batchSize: 9, learningRate: 1e-3, seed: 31, threads: 3,
                                  parallelism: .data)
            if lateWorkers {
                (trainer.strategy as! DataParallelStep).regions.pass.body = { step, part in
                    if part == 0 { step.pass(part: 0) }
                }
            }
            trainer.beginEpoch(0)
            let losses = try (0..<3).map { try trainer.trainStep(batch: $0).loss }
            return (model.store.parameters.array, trainer.adam.secondMoment.array, losses)
        }
        let together = try train(lateWorkers: false), alone = try train(lateWorkers: true)
        XCTAssertEqual(together.losses, alone.losses)
        XCTAssertEqual(together.parameters, alone.parameters)
        XCTAssertEqual(together.moments, alone.moments)
    }

    /// Region 2's queue covers every output row of every layer exactly once, splits only where a block keeps
    /// ≥ 32 rows, and puts the largest GEMMs first.
    func testUpdateQueueCoversEveryLayerOnceLargestFirst() {
        let model = VariationalAutoencoder<Float>(ModelConfiguration(inputs: 784, hidden: [300, 300], latent: 10))
        let tasks = model.encoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: false) }
            + model.decoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: true) }
        for workers in [1, 2, 3, 8] {
            let queue = UpdateBlock.queue(tasks, workers: workers)
            for (i, task) in tasks.enumerated() {
                let blocks = queue.filter { $0.task == i }.map(\.outputs).sorted { $0.lowerBound < $1.lowerBound }
                XCTAssertEqual(blocks.first?.lowerBound, 0)
                XCTAssertEqual(blocks.last?.upperBound, task.layer.outputs)
                for (a, b) in zip(blocks, blocks.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual(blocks.count, workers == 1 ? 1 : 2 * workers)
                if blocks.count > 1 { XCTAssertTrue(blocks.allSatisfy { $0.count >= 32 }, "\(workers) workers") }
            }
            let work = queue.map { $0.outputs.count * tasks[$0.task].layer.inputs }
            XCTAssertEqual(work, work.sorted(by: >), "\(workers) workers")
        }
        XCTAssertEqual(UpdateBlock.queue(tasks, workers: 2).count, 4 + 4 + 1 + 4 + 4 + 4)
    }

    func testStepGradientWithMixturePriorAndImportanceSamples() throws {
        let gmvae = ModelConfiguration(model: .gmvae, posterior: .full, inputs: 9, hidden: [6], latent: 2,
                                       components: 3)
        let iwae = ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 9, hidden: [6], latent: 2,
                                      samples: 3)
        for configuration in [gmvae, iwae] {
            for threads in [1, 2, 3] { try check(configuration, threads: threads) }
        }
    }
}

/// The step checks' helpers, shared with `TensorParallelTests`.
extension XCTestCase {
    func images(count: Int, side: Int, seed: UInt64) -> ImageSet {
        var rng = RandomStream(seed: seed, purpose: .sampling)
        let pixels = (0..<(count * side * side)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return ImageSet(count: count, rows: side, columns: side, pixels: pixels)
    }

    /// The whole-batch gradient of step 0, batch 0, drawn exactly as the trainer draws it.
    func referenceGradient(_ model: VariationalAutoencoder<Float>, images: ImageSet, batch: Int, seed: UInt64) throws
        -> [Float] {
        let d = model.configuration.inputs, k = model.configuration.latent, m = model.configuration.samples
        let order = Trainer.permutation(count: images.count, seed: seed, epoch: 0)
        let ws = StepWorkspace(model: model, capacity: batch)
        images.pixels.withUnsafeBufferPointer { pixels in
            Binarization.thresholds.withUnsafeBufferPointer { thresholds in
                for row in 0..<batch {
                    var bits = RandomStream(seed: seed, purpose: .binarization, step: 0, index: UInt64(row))
                    Binarization.sample(pixels: pixels.baseAddress! + order[row] * d, count: d,
                                        thresholds: thresholds.baseAddress!, rng: &bits, into: ws.x.pointer + row * d)
                    var noise = RandomStream(seed: seed, purpose: .noise, step: 0, index: UInt64(row))
                    for s in 0..<m { noise.fillNormal(ws.noise.pointer + (s * batch + row) * k, count: k) }
                }
            }
        }
        let g = Buffer<Float>(count: model.parameterCount)
        _ = try Objective.evaluate(model: model, parameters: model.store.parameters.pointer, rows: batch, samples: m,
                                   workspace: ws, gradients: g.pointer, lossScale: 1 / Float(batch))
        return g.array
    }

    func check(_ configuration: ModelConfiguration, threads: Int, batch: Int = 7,
               parallelism: Trainer.Parallelism = .data, file: StaticString = #filePath, line: UInt = #line) throws {
        let seed: UInt64 = 31
        let side = Int(Double(configuration.inputs).squareRoot())
        let data = images(count: max(20, batch), side: side, seed: 5)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let expected = try referenceGradient(model, images: data, batch: batch, seed: seed)
        let trainer = try Trainer(model: model, images: data, batchSize: batch, learningRate: 1e-3, seed: seed,
                              threads: threads, parallelism: parallelism)
        trainer.beginEpoch(0)
        _ = try trainer.trainStep(batch: 0)
        let moment = trainer.adam.firstMoment.array.map { $0 / Float(1 - trainer.adam.beta1) }
        let scale = expected.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        for view in model.store.views {
            let worst = view.range.map { abs(moment[$0] - expected[$0]) }.max()!
            XCTAssertLessThan(worst, 1e-5 * scale,
                              "\(configuration.model) \(threads) threads, \(parallelism): \(view.name)",
                              file: file, line: line)
        }
        // The next step's gradient starts from zero: a second step still sees only its own batch.
        let updates = (trainer.strategy as? DataParallelStep)?.updates ?? (trainer.strategy as? TensorParallelStep)?.updates
        XCTAssertTrue((updates?.workerGradients ?? []).dropFirst().allSatisfy { $0.array.allSatisfy { $0 == 0 } },
                      "per-worker buffers are cleared by the update", file: file, line: line)
    }
}
