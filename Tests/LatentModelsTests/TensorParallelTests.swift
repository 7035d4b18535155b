import LatentCore
import LatentData
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining
import XCTest

/// Tensor parallelism (`ColumnTeam`): every layer's outputs split over the workers, per-example work on each worker's
/// block, weight gradients and Adam by each layer's owner. It must compute the whole batch's gradient, the same steps
/// as data parallelism up to rounding, and give the same bits whichever worker runs which task.
final class TensorParallelTests: XCTestCase {
    func testTensorStepIsTheWholeBatchGradient() throws {
        let plain = ModelConfiguration(inputs: 9, hidden: [6, 5], latent: 2)
        let wide = ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3)
        let gmvae = ModelConfiguration(model: .gmvae, posterior: .full, inputs: 9, hidden: [6], latent: 2,
                                       components: 3)
        let iwae = ModelConfiguration(model: .iwae, posterior: .covariance, inputs: 9, hidden: [6], latent: 2,
                                      samples: 3)
        for configuration in [plain, gmvae, iwae] {
            for threads in [2, 3] { try check(configuration, threads: threads, parallelism: .tensor) }
        }
        // More workers than some layers have outputs (latent 3, 6 encoder outputs): a worker owns no columns there.
        try check(plain, threads: 7, parallelism: .tensor)
        try check(wide, threads: 2, batch: 9, parallelism: .tensor)
        // An encoder head of 32 outputs is split by columns on 2 workers and runs by blocks on 3.
        let wideHead = ModelConfiguration(inputs: 16, hidden: [40], latent: 16)
        for threads in [2, 3] { try check(wideHead, threads: threads, batch: 9, parallelism: .tensor) }
        // Past `TeamStage.partialSumRows` rows the backward pass runs by column blocks: in the decoder only (7 examples
        // of 10 samples), and in both (a batch of 70).
        let manySamples = ModelConfiguration(model: .iwae, inputs: 9, hidden: [6, 5], latent: 2, samples: 10)
        let deep = ModelConfiguration(inputs: 9, hidden: [20, 18], latent: 2)
        for threads in [2, 3] {
            try check(manySamples, threads: threads, parallelism: .tensor)
            try check(deep, threads: threads, batch: 70, parallelism: .tensor)
        }
    }

    /// An MLP's backward pass runs as partial sums over the rows of W each worker owns at up to
    /// `TeamStage.partialSumRows` rows (the batch, times the importance samples in the decoder), else by column blocks.
    func testBackwardRunsAsPartialSumsUpToSixtyFourRows() {
        func backward(_ configuration: ModelConfiguration, batch: Int) -> (encoder: [String], decoder: [String]) {
            let stages = TeamStage.schedule(VariationalAutoencoder<Float>(configuration), workers: 2, batchSize: batch)
                .map { "\($0)" }.filter { $0.contains("ackward(") }
            return (stages.filter { $0.contains("decoder: false") }, stages.filter { $0.contains("decoder: true") })
        }
        let vae = ModelConfiguration(inputs: 16, hidden: [40, 30], latent: 10)
        for batch in [1, 32, 64] {
            let (encoder, decoder) = backward(vae, batch: batch)
            XCTAssertEqual(encoder, ["partialBackward(decoder: false, layer: 1)"], "batch \(batch)")
            XCTAssertEqual(decoder, ["partialBackward(decoder: true, layer: 2)", "partialBackward(decoder: true, layer: 1)"])
        }
        let (encoder, decoder) = backward(vae, batch: 65)
        XCTAssertEqual(encoder, ["backward(decoder: false, layer: 1)"])
        XCTAssertEqual(decoder, ["backward(decoder: true, layer: 2)", "backward(decoder: true, layer: 1)"])
        let iwae = backward(ModelConfiguration(model: .iwae, inputs: 16, hidden: [40, 30], latent: 10, samples: 10),
                            batch: 32)
        XCTAssertEqual(iwae.encoder, ["partialBackward(decoder: false, layer: 1)"])
        XCTAssertEqual(iwae.decoder, ["backward(decoder: true, layer: 2)", "backward(decoder: true, layer: 1)"])
    }

    /// The encoder's last layer runs by blocks of the batch (`TeamStage.encoderHead`, no column stages for it) when
    /// it has fewer outputs than a 16-column group per worker, and by column blocks like every other layer otherwise.
    func testNarrowEncoderHeadRunsByBlocks() {
        func stages(latent: Int, workers: Int) -> [String] {
            let model = VariationalAutoencoder<Float>(ModelConfiguration(inputs: 16, hidden: [40, 30], latent: latent))
            return TeamStage.schedule(model, workers: workers, batchSize: 100).map { "\($0)" }
        }
        let narrow = stages(latent: 10, workers: 2)
        XCTAssertEqual(narrow.filter { $0 == "encoderHead" }.count, 1)
        XCTAssertFalse(narrow.contains("afterEncoder"))
        XCTAssertFalse(narrow.contains { $0.contains("decoder: false, layer: 2") })
        XCTAssertEqual(narrow.count, 12)
        let split = stages(latent: 16, workers: 2)
        XCTAssertFalse(split.contains("encoderHead"))
        XCTAssertEqual(split.filter { $0.contains("decoder: false, layer: 2") }.count, 2, "forward and backward")
        XCTAssertEqual(split.count, 14)
        XCTAssertTrue(stages(latent: 16, workers: 3).contains("encoderHead"))
    }

    /// Parameters, moments and losses of several steps, the epoch's last (one example, fewer than the workers)
    /// included.
    func train(_ configuration: ModelConfiguration, _ parallelism: Trainer.Parallelism, threads: Int = 2,
               adjust: (Trainer) -> Void = { _ in }) throws -> (trainer: Trainer, parameters: [Float], moments: [Float],
                                                             losses: [Double]) {
        let side = Int(Double(configuration.inputs).squareRoot())
        let data = images(count: 15, side: side, seed: 5)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let trainer = try Trainer(model: model, images: data, batchSize: 7, learningRate: 1e-3, seed: 31, threads: threads,
                              parallelism: parallelism)
        adjust(trainer)
        var losses: [Double] = []
        for epoch in 0..<2 {
            trainer.beginEpoch(epoch)
            for batch in 0..<trainer.stepsPerEpoch { losses.append(try trainer.trainStep(batch: batch).loss) }
        }
        return (trainer, model.store.parameters.array, trainer.adam.firstMoment.array, losses)
    }

    /// The two strategies run the same arithmetic with the GEMMs cut differently (by rows for data parallelism, by
    /// column blocks for tensor parallelism), so they agree to the kernel's rounding of a block against the whole.
    /// A wrong or missing block would show in Adam's first moment (a running mean of the gradient) far above that
    /// rounding, and would move parameters by up to a learning rate (1e-3) per step.
    func assertSameTraining(_ a: (trainer: Trainer, parameters: [Float], moments: [Float], losses: [Double]),
                            _ b: (trainer: Trainer, parameters: [Float], moments: [Float], losses: [Double]),
                            _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let momentScale = a.moments.map(abs).max()!
        let momentError = zip(a.moments, b.moments).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(momentError, 1e-5 * momentScale, "first moments: \(message)", file: file, line: line)
        let parameterError = zip(a.parameters, b.parameters).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(parameterError, 1e-5, "parameters: \(message)", file: file, line: line)
        for (x, y) in zip(a.losses, b.losses) {
            XCTAssertEqual(x, y, accuracy: 1e-6 * abs(x), message, file: file, line: line)
        }
    }

    func testTensorTrainsLikeDataParallelism() throws {
        let configurations = [
            ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3),
            ModelConfiguration(inputs: 16, hidden: [40], latent: 16),
            ModelConfiguration(model: .iwae, posterior: .full, inputs: 16, hidden: [12], latent: 3, samples: 4),
            ModelConfiguration(model: .gmvae, posterior: .covariance, inputs: 16, hidden: [12], latent: 2,
                               components: 3),
            ModelConfiguration(model: .iwae, inputs: 16, hidden: [20, 18], latent: 2, samples: 10),
        ]
        for configuration in configurations {
            for threads in [2, 3] {
                let data = try train(configuration, .data, threads: threads)
                let tensor = try train(configuration, .tensor, threads: threads)
                XCTAssertEqual(tensor.trainer.parallelism, .tensor)
                XCTAssertTrue(tensor.trainer.strategy is TensorParallelStep)
                assertSameTraining(data, tensor, "\(configuration.model) \(threads) threads")
            }
        }
    }

    /// A worker that starts late (its core taken by another process) finds every task of the stages it missed done
    /// by the others, which took them in its place: the step is bit-identical to the one the team computes together.
    func testLateWorkerLeavesTheStepBitIdentical() throws {
        for configuration in [ModelConfiguration(inputs: 100, hidden: [70, 130], latent: 3),
                              ModelConfiguration(model: .iwae, posterior: .full, inputs: 16, hidden: [12], latent: 3,
                                                 samples: 4),
                              ModelConfiguration(model: .iwae, inputs: 16, hidden: [20, 18], latent: 2, samples: 10)] {
            for threads in [2, 3] {
                let together = try train(configuration, .tensor, threads: threads)
                let late = try train(configuration, .tensor, threads: threads) { trainer in
                    let step = trainer.strategy as! TensorParallelStep
                    step.regions.pass.body = { step, part in
                        if part > 0 { usleep(2_000) }
                        step.pass(part: part)
                    }
                    step.regions.update.body = { step, part in
                        if part > 0 { usleep(2_000) }
                        step.update(part: part)
                    }
                }
                XCTAssertEqual(together.parameters.map(\.bitPattern), late.parameters.map(\.bitPattern),
                               "\(configuration.model) \(threads) threads")
                XCTAssertEqual(together.moments.map(\.bitPattern), late.moments.map(\.bitPattern))
                XCTAssertEqual(together.losses, late.losses)
            }
        }
    }

    /// A block whose per-example work throws (here: every Cholesky factorization fails on NaN weights) is marked
    /// failed while the others go on through the stages: the step reports the failure and leaves the parameters as
    /// they were; the next step trains normally.
    func testFailingBlockDropsTheBatch() throws {
        let configuration = ModelConfiguration(posterior: .covariance, inputs: 16, hidden: [12], latent: 2)
        let data = images(count: 16, side: 4, seed: 5)
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let trainer = try Trainer(model: model, images: data, batchSize: 8, learningRate: 1e-3, seed: 31, threads: 2,
                              parallelism: .tensor)
        trainer.nonFinitePolicy = .skipBatch
        trainer.beginEpoch(0)
        let weight = model.encoder.layers.last!.weight
        let saved = (0..<weight.count).map { model.store.parameters[weight.offset + $0] }
        for i in 0..<weight.count { model.store.parameters[weight.offset + i] = .nan }
        let before = model.store.parameters.array
        let skipped = try trainer.trainStep(batch: 0)
        XCTAssertEqual(skipped.examples, 0)
        XCTAssertEqual(trainer.skippedBatches, 1)
        XCTAssertEqual(model.store.parameters.array.map(\.bitPattern), before.map(\.bitPattern))
        for i in 0..<weight.count { model.store.parameters[weight.offset + i] = saved[i] }
        let sums = try trainer.trainStep(batch: 1)
        XCTAssertEqual(sums.examples, 8)
        XCTAssertTrue(sums.loss.isFinite)
    }

    /// `auto` is the reference step on one thread, tensor parallelism for small batches on several threads and data
    /// parallelism otherwise; explicit choices stay.
    func testAutoChoosesByBatchSize() throws {
        let auto = Trainer.Parallelism.auto
        XCTAssertEqual(auto.resolved(batchSize: 32, threads: 2), .tensor)
        XCTAssertEqual(auto.resolved(batchSize: Trainer.tensorBatchLimit, threads: 2), .tensor)
        XCTAssertEqual(auto.resolved(batchSize: Trainer.tensorBatchLimit + 1, threads: 2), .data)
        XCTAssertEqual(auto.resolved(batchSize: 32, threads: 1), .reference)
        for explicit in [Trainer.Parallelism.reference, .data, .tensor, .blas] {
            XCTAssertEqual(explicit.resolved(batchSize: 32, threads: 2), explicit)
            XCTAssertEqual(explicit.resolved(batchSize: 512, threads: 1), explicit)
        }
        let data = images(count: 8, side: 3, seed: 5)
        let model = VariationalAutoencoder<Float>(ModelConfiguration(inputs: 9, hidden: [6], latent: 2))
        let trainer = try Trainer(model: model, images: data, batchSize: 4, learningRate: 1e-3, seed: 0, threads: 2,
                              parallelism: .auto)
        XCTAssertEqual(trainer.parallelism, .tensor)
        XCTAssertTrue(trainer.strategy is TensorParallelStep)
    }

    /// Column blocks tile each width in order; every block but the last is a whole number of groups (16 columns, so
    /// OpenBLAS's small NN kernel never sees 1–8 columns over a multiple of 16 where data parallelism does not; or 8),
    /// and the groups are split as evenly as they go.
    func testColumnBlocksTileEachWidthInGroups() {
        for workers in [2, 3, 5] {
            let team = ColumnTeam(workers: workers, capacity: 1, stages: 1)
            for group in [8, 16] {
                for width in [1, 4, 10, 16, 20, 300, 784, 1000] {
                    let blocks = (0..<workers).map { team.columns(width, part: $0, group: group) }
                    XCTAssertEqual(blocks.first?.lowerBound, 0)
                    XCTAssertEqual(blocks.last?.upperBound, width)
                    for (a, b) in zip(blocks, blocks.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                    for block in blocks.dropLast() {
                        XCTAssertEqual(block.count % group, 0, "\(workers) workers, \(width)")
                    }
                    let groups = blocks.map { $0.count / group }
                    XCTAssertLessThanOrEqual(groups.max()! - groups.min()!, 1, "\(workers) workers, \(width)")
                }
            }
        }
        let pair = ColumnTeam(workers: 2, capacity: 1, stages: 1)
        XCTAssertEqual([pair.columns(300, part: 0), pair.columns(300, part: 1)], [0..<144, 144..<300])
        XCTAssertEqual([pair.columns(300, part: 0, group: 8), pair.columns(300, part: 1, group: 8)],
                       [0..<152, 152..<300])
    }

    /// Groups of 8 only where every block's GEMM is past OpenBLAS's small-matrix bound (M·N·K > 100³, so no
    /// allocating small kernel can run) and the width is not a multiple of 16 (whose 16-column blocks start every row
    /// on a cache line).
    func testColumnGroupIsEightOnlyForLargeUnalignedGEMMs() {
        let pair = ColumnTeam(workers: 2, capacity: 1, stages: 1)
        XCTAssertEqual(pair.group(width: 300, rows: 100, inner: 784), 8, "the first encoder layer at batch 100")
        XCTAssertEqual(pair.group(width: 300, rows: 32, inner: 300), 8, "148 · 32 · 300 = 1.42 M")
        XCTAssertEqual(pair.group(width: 300, rows: 16, inner: 300), 16, "148 · 16 · 300 = 0.71 M")
        XCTAssertEqual(pair.group(width: 784, rows: 100, inner: 300), 16, "784 is a multiple of 16")
        XCTAssertEqual(pair.group(width: 20, rows: 100, inner: 300), 16)
        XCTAssertEqual(pair.group(width: 300, rows: 100, inner: 10), 16, "148 · 100 · 10")
    }
}
