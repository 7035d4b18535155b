import LatentCore
import LatentData

/// Data-parallel training of a Float model: each worker owns a contiguous slice of the minibatch, its own
/// workspace and gradient buffer, and runs single-threaded BLAS; the gradient buffers are then summed and Adam
/// updates the parameters, both split by parameter range across the same workers (DESIGN.md § Multicore).
/// Worker gradient buffers accumulate (GEMM β = 1) and are cleared by Adam's pass, which reads them anyway.
///
/// Random draws are keyed by (seed, step, row in batch), so they do not depend on the thread count; only the
/// order of floating-point sums in the gradient reduction does.
public final class Trainer: @unchecked Sendable {
    /// How `threads` are used: split the batch over workers with single-threaded BLAS (the default, faster at every
    /// batch size measured by latent-bench and robust to a competing process), or one worker with OpenBLAS's threads.
    public enum Parallelism: String, Codable, Sendable, CaseIterable {
        case data, blas
    }
    public let parallelism: Parallelism
    /// OpenBLAS threads inside each GEMM during a step.
    public let blasThreads: Int
    public let model: VariationalAutoencoder<Float>
    public let adam: Adam<Float>
    public let batchSize: Int
    public let workers: Int
    /// The threads that run the workers' parts (shared with other evaluators of the same run).
    public let pool: WorkerPool
    public let seed: UInt64
    public private(set) var step = 0
    public private(set) var epoch = 0

    let images: ImageSet
    let workspaces: [StepWorkspace<Float>]
    let workerGradients: [Buffer<Float>]
    let workerSums: UnsafeMutablePointer<TermSums>
    /// Per worker: 0 = fine, 1 = factorization failed, 2 = non-finite log q, 3 = non-finite log prior,
    /// 4 = non-finite gradient of the posterior parameters.
    let workerFailures: UnsafeMutablePointer<Int>
    var permutation: [Int]
    let thresholds: [UInt32]

    public init(model: VariationalAutoencoder<Float>, images: ImageSet, batchSize: Int, learningRate: Double,
                seed: UInt64, threads: Int, parallelism: Parallelism = .data, pool: WorkerPool? = nil) {
        self.model = model
        self.images = images
        self.batchSize = batchSize
        self.seed = seed
        self.parallelism = parallelism
        let workerCount = parallelism == .data ? max(1, min(threads, batchSize)) : 1
        workers = workerCount
        blasThreads = parallelism == .data ? 1 : max(1, threads)
        self.pool = pool.flatMap { $0.size == workerCount ? $0 : nil } ?? WorkerPool(size: workerCount)
        adam = Adam(count: model.parameterCount, learningRate: learningRate)
        let capacity = (batchSize + workers - 1) / workers
        workspaces = (0..<workers).map { _ in StepWorkspace(model: model, capacity: capacity) }
        workerGradients = (0..<workers).map { _ in Buffer(count: model.parameterCount) }
        workerSums = .allocate(capacity: workers)
        workerSums.initialize(repeating: TermSums(), count: workers)
        workerFailures = .allocate(capacity: workers)
        workerFailures.initialize(repeating: 0, count: workers)
        permutation = Array(0..<images.count)
        thresholds = Binarization.thresholds
    }

    deinit {
        workerSums.deallocate()
        workerFailures.deallocate()
    }

    /// Steps per epoch (the last, smaller batch included).
    public var stepsPerEpoch: Int { (images.count + batchSize - 1) / batchSize }

    /// Restores counters after loading a checkpoint; the permutation of the current epoch is recomputed from the seed.
    public func restore(step: Int, epoch: Int, optimizerStep: Int? = nil) {
        self.step = step
        self.epoch = epoch
        adam.restore(step: optimizerStep ?? step)
    }

    /// The shuffled example order of an epoch: a Fisher–Yates shuffle keyed by (seed, epoch).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
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

    /// One optimization step on batch `index` of the current epoch; returns the batch's term sums.
    /// What to do with a batch whose loss or gradient is not finite.
    public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
        /// Throw `TrainingError.nonFinite` before touching the parameters.
        case stop
        /// Drop the batch's gradient, count it in `skippedBatches`, and go on.
        case skipBatch = "skip-batch"
    }
    public var nonFinitePolicy = NonFinitePolicy.stop
    public private(set) var skippedBatches = 0

    /// Restores the skipped-batch count from a checkpoint.
    public func restore(skippedBatches: Int) { self.skippedBatches = skippedBatches }

    /// One optimization step on batch `index` of the current epoch; returns the batch's term sums (zero examples
    /// when the batch was skipped as non-finite). The parameters are never updated from a non-finite batch.
    public func trainStep(batch index: Int) throws -> TermSums {
        if BLASThreads.current != blasThreads { BLASThreads.set(blasThreads) }
        let start = index * batchSize
        let rows = min(batchSize, images.count - start)
        let currentStep = step
        let scale = Float(1) / Float(rows)
        let parameters = UnsafePointer(model.store.parameters.pointer)
        let d = model.configuration.inputs, k = model.configuration.latent
        let samples = model.configuration.samples
        permutation.withUnsafeBufferPointer { perm in
            images.pixels.withUnsafeBufferPointer { pixels in
                thresholds.withUnsafeBufferPointer { th in
                    pool.run { w in
                        let slice = Parallel.slice(rows, parts: workers, part: w)
                        let ws = workspaces[w]
                        guard !slice.isEmpty else {
                            workerSums[w] = TermSums()
                            return
                        }
                        for (j, row) in slice.enumerated() {
                            let example = perm[start + row]
                            var bits = RandomStream(seed: seed, purpose: .binarization, step: UInt64(currentStep),
                                                    index: UInt64(row))
                            Binarization.sample(pixels: pixels.baseAddress! + example * d, count: d,
                                                thresholds: th.baseAddress!, rng: &bits, into: ws.x.pointer + j * d)
                            var noise = RandomStream(seed: seed, purpose: .noise, step: UInt64(currentStep),
                                                     index: UInt64(row))
                            for s in 0..<samples {
                                noise.fillNormal(ws.noise.pointer + (s * slice.count + j) * k, count: k)
                            }
                        }
                        do {
                            workerSums[w] = try Objective.evaluate(
                                model: model, parameters: parameters, rows: slice.count, samples: samples,
                                workspace: ws, gradients: workerGradients[w].pointer, lossScale: scale,
                                accumulate: true)
                            workerFailures[w] = Trainer.diagnose(ws, rows: slice.count, samples: samples,
                                                                 mixture: model.mixture != nil,
                                                                 width: model.posterior.parameterCount)
                        } catch {
                            workerFailures[w] = 1
                        }
                    }
                }
            }
        }
        var sums = TermSums()
        for w in 0..<workers { sums = sums + workerSums[w] }
        if let term = failedTerm(sums) {
            for w in 0..<workers { workerGradients[w].zero() }
            guard nonFinitePolicy == .skipBatch else { throw TrainingError.nonFinite(step: currentStep, term: term) }
            skippedBatches += 1
            step += 1
            return TermSums()
        }
        applyGradients()
        step += 1
        return sums
    }

    /// The first term of the batch that is not finite (nil when all are), named as the error message shows it.
    func failedTerm(_ sums: TermSums) -> String? {
        func failed(_ code: Int) -> Bool { (0..<workers).contains { workerFailures[$0] == code } }
        if sums.loss.isFinite && sums.rec.isFinite && sums.kl.isFinite && !(1...4).contains(where: failed) {
            return nil
        }
        if failed(1) { return "posterior factorization (Cholesky)" }
        if !sums.rec.isFinite { return "Rec" }
        if failed(2) { return "log q" }
        if failed(3) { return "prior" }
        if !sums.kl.isFinite { return "KL" }
        if !sums.loss.isFinite { return "importance-weighted bound" }
        return "gradient"
    }

    /// Checks the per-example log-determinants, log priors and posterior-parameter gradients of a worker's pass.
    static func diagnose(_ ws: StepWorkspace<Float>, rows: Int, samples: Int, mixture: Bool, width: Int) -> Int {
        var logQ: Float = 0
        for r in 0..<rows { logQ += ws.logDeterminant[r] }
        if !logQ.isFinite { return 2 }
        if mixture {
            var prior: Float = 0
            for i in 0..<(rows * samples) { prior += ws.logPrior[i] }
            if !prior.isFinite { return 3 }
        }
        let g = ws.encoder.outputGradient
        for i in 0..<(rows * width) where !g[i].isFinite { return 4 }
        return 0
    }

    /// Sums the workers' gradient buffers and takes an Adam step, split by parameter range across the workers.
    /// With two workers the sum is fused into Adam's loop; with more, workers 1… are first added into worker 0's.
    func applyGradients() {
        adam.beginStep()
        let n = model.parameterCount
        let p = model.store.parameters.pointer
        pool.run { w in
            let range = Parallel.slice(n, parts: workers, part: w)
            let first = workerGradients[0].pointer
            if workers == 2 {
                adam.update(parameters: p, gradients: first, plus: workerGradients[1].pointer, range: range,
                            zeroingGradients: true)
                return
            }
            for other in 1..<max(1, workers) {
                let g = workerGradients[other].pointer
                for i in range {
                    first[i] += g[i]
                    g[i] = 0
                }
            }
            adam.update(parameters: p, gradients: first, range: range, zeroingGradients: true)
        }
    }
}
