import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// Trains a Float model on a set of images, one minibatch at a time: the epoch's order, the step counter, the
/// policy for non-finite batches and Adam, around a `TrainingStrategy` that runs each step's phases on the cores
/// (DESIGN.md § The training step).
///
/// Random draws are keyed by (seed, step, row in batch), so they do not depend on the thread count or strategy;
/// only how the floating-point sums are cut and ordered does.
public final class Trainer: @unchecked Sendable {
    /// How `threads` are used: one worker running the reference step (`reference`, what one thread runs), the batch
    /// split over workers with single-threaded BLAS (`data`), every layer's outputs split over workers that meet
    /// between layers (`tensor`), or the reference step with OpenBLAS's threads (`blas`). `auto` is the reference
    /// step on one thread, else tensor for batches up to `tensorBatchLimit`, else data.
    public enum Parallelism: String, Codable, Sendable, CaseIterable {
        /// The reference step on one thread, else `tensor` for batches up to `tensorBatchLimit`, else `data`.
        case auto
        /// The step as mathematics, serial: one worker, the baseline every strategy is tested against.
        case reference
        /// The batch split into slices, one per worker, each with single-threaded BLAS.
        case data
        /// Every layer's outputs split into column blocks over the workers, which meet between layers.
        case tensor
        /// The reference step with OpenBLAS's own threads inside each GEMM.
        case blas

        /// What `auto` resolves to for a batch size and thread count (the others are themselves).
        public func resolved(batchSize: Int, threads: Int) -> Parallelism {
            guard self == .auto else { return self }
            if threads <= 1 { return .reference }
            return batchSize <= Trainer.tensorBatchLimit ? .tensor : .data
        }
    }
    /// The largest batch that `auto` runs as tensor parallelism (docs/PERFORMANCE.md).
    public static let tensorBatchLimit = 128

    /// What to do with a batch whose loss or gradient is not finite.
    public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
        /// Throw `TrainingError.nonFinite` before touching the parameters.
        case stop
        /// Drop the batch's gradient, count it in `skippedBatches`, and go on.
        case skipBatch = "skip-batch"
    }

    /// The strategy this trainer runs (`auto` resolved).
    public let parallelism: Parallelism
    /// The model whose parameters the steps update.
    public let model: VariationalAutoencoder<Float>
    package let adam: Adam<Float>
    /// Examples per step; the last batch of an epoch may be smaller.
    public let batchSize: Int
    /// The seed that keys the epochs' order and every step's random draws.
    public let seed: UInt64
    /// What a non-finite loss or gradient does; `stop` unless set.
    public var nonFinitePolicy = NonFinitePolicy.stop
    /// Steps taken so far, skipped batches included.
    public private(set) var step = 0
    /// The epoch in progress (0-based), as `beginEpoch(_:)` or a checkpoint set it.
    public private(set) var epoch = 0
    /// Batches skipped as non-finite so far under `skipBatch`.
    public private(set) var skippedBatches = 0
    package let strategy: any TrainingStrategy
    let images: ImageSet
    var permutation: [Int]
    let thresholds = Binarization.thresholds

    /// A trainer of `model` on `images` with `threads` workers, split as `requested` says (`auto`, the default, is what
    /// `latent train --threads` does); `pool` is reused when it has the workers' count. Throws `WorkerPoolError` when
    /// the workers' threads cannot be started.
    public convenience init(model: VariationalAutoencoder<Float>, images: ImageSet, batchSize: Int,
                            learningRate: Double, seed: UInt64, threads: Int, parallelism requested: Parallelism = .auto,
                            pool: WorkerPool? = nil) throws {
        try self.init(model: model, images: images, batchSize: batchSize, learningRate: learningRate, seed: seed,
                      threads: threads, parallelism: requested, pool: pool, communicator: nil)
    }

    /// A trainer that is one rank of a data-parallel job when `communicator` is given: `batchSize` is the global
    /// batch, and the local strategy runs on this rank's share of it (`DistributedStrategy`).
    package init(model: VariationalAutoencoder<Float>, images: ImageSet, batchSize: Int, learningRate: Double,
                 seed: UInt64, threads: Int, parallelism requested: Parallelism = .auto, pool: WorkerPool? = nil,
                 communicator: (any Communicator)?) throws {
        BLASKernel.noteIfFallback()
        self.model = model
        self.images = images
        self.batchSize = batchSize
        self.seed = seed
        adam = Adam(count: model.parameterCount, learningRate: learningRate)
        permutation = Array(0..<images.count)
        // No step takes more rows than there are images, so the workspaces are sized for the effective batch; a rank's
        // strategy sees its share of it (the first ranks' shares are the largest).
        let effective = max(1, min(batchSize, images.count))
        let rows = communicator.map { DistributedStrategy.share(of: effective, rank: 0, ranks: $0.size).count }
            ?? effective
        var parallelism = requested.resolved(batchSize: rows, threads: threads)
        // One worker of data or tensor parallelism is the reference step.
        if (parallelism == .data || parallelism == .tensor) && min(threads, rows) <= 1 { parallelism = .reference }
        self.parallelism = parallelism
        let local: any TrainingStrategy = switch parallelism {
        case .auto, .reference: try ReferenceStep(model: model, batchSize: rows, pool: pool)
        case .data: try DataParallelStep(model: model, batchSize: rows, threads: threads, pool: pool)
        case .tensor: try TensorParallelStep(model: model, batchSize: rows, threads: threads, pool: pool)
        case .blas: try BLASThreadedStep(model: model, batchSize: rows, threads: threads)
        }
        strategy = communicator.map { DistributedStrategy(local: local, model: model, communicator: $0) } ?? local
    }

    /// Workers the step runs on.
    public var workers: Int { strategy.workers }
    /// OpenBLAS threads inside each GEMM during a step.
    package var blasThreads: Int { strategy.blasThreads }
    /// The threads that run the workers' parts (shared with other evaluators of the same run).
    package var pool: WorkerPool { strategy.pool }
    /// Steps per epoch (the last, smaller batch included).
    public var stepsPerEpoch: Int { (images.count + batchSize - 1) / batchSize }

    /// Restores counters after loading a checkpoint; the permutation of the current epoch is recomputed from the seed.
    package func restore(step: Int, epoch: Int, optimizerStep: Int? = nil) {
        self.step = step
        self.epoch = epoch
        adam.restore(step: optimizerStep ?? step)
    }

    /// Restores the skipped-batch count from a checkpoint.
    package func restore(skippedBatches: Int) { self.skippedBatches = skippedBatches }

    /// The shuffled example order of an epoch: a Fisher–Yates shuffle keyed by (seed, epoch).
    package static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var rng = RandomStream(seed: seed, purpose: .shuffle, step: UInt64(epoch))
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                order.swapAt(i, rng.index(below: i + 1))
            }
        }
        return order
    }

    /// Prepares the order of `epoch` (0-based); call before its steps.
    public func beginEpoch(_ epoch: Int) {
        self.epoch = epoch
        permutation = Trainer.permutation(count: images.count, seed: seed, epoch: epoch)
    }

    /// One optimization step on batch `index` of the current epoch; returns the batch's term sums (zero examples
    /// when the batch was skipped as non-finite). The parameters are never updated from a non-finite batch.
    public func trainStep(batch index: Int) throws -> TermSums {
        let result = try computeGradients(batch: index)
        if let term = result.failedTerm {
            strategy.discard()
            guard nonFinitePolicy == .skipBatch else { throw TrainingError.nonFinite(step: step, term: term) }
            skippedBatches += 1
            step += 1
            return TermSums()
        }
        adam.beginStep()
        strategy.apply(adam)
        step += 1
        return result.sums
    }

    /// The gradient of batch `index` of the current epoch at the current step, handed to `consumer` instead of Adam
    /// (nothing is updated): what the strategies' tests compare with the reference step's.
    package func gradient(batch index: Int, into consumer: any GradientConsumer) throws -> TermSums {
        let result = try computeGradients(batch: index)
        strategy.apply(consumer)
        return result.sums
    }

    /// The strategy's forward and backward pass on batch `index`.
    func computeGradients(batch index: Int) throws -> (sums: TermSums, failedTerm: String?) {
        guard index >= 0, index < stepsPerEpoch else {
            throw TrainingError.invalidOption("batch \(index) is outside the epoch's \(stepsPerEpoch) batches")
        }
        if BLASThreads.current != blasThreads { BLASThreads.set(blasThreads) }
        let start = index * batchSize
        return permutation.withUnsafeBufferPointer { order in
            images.pixels.withUnsafeBufferPointer { pixels in
                thresholds.withUnsafeBufferPointer { thresholds in
                    strategy.computeGradients(StepBatch(
                        start: start, rows: min(batchSize, images.count - start), step: step, seed: seed,
                        order: order.baseAddress!, pixels: pixels.baseAddress!, thresholds: thresholds.baseAddress!))
                }
            }
        }
    }
}
