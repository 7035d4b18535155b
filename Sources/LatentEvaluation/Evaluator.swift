import LatentCore
import LatentModels
import LatentData

/// Evaluates the one-sample NELBO of a Float model on statically binarized images, in parallel: the analytic KL
/// for a N(0, I) prior, the one-sample Monte Carlo KL for the mixture.
///
/// The noise of example i is keyed by (seed, i), so results do not depend on batch size or thread count beyond
/// the order of the final sums.
public final class Evaluator: @unchecked Sendable {
    /// Seed of the fixed binarization of a test set (independent of any training seed).
    public static let testBinarizationSeed: UInt64 = 0

    /// The model evaluated, with its current parameters (read, never changed).
    public let model: VariationalAutoencoder<Float>
    @usableFromInline package let workers: Int
    /// The threads that run the workers' parts (shared with other evaluators of the same run).
    @usableFromInline package let pool: WorkerPool
    @usableFromInline package let batchSize: Int
    let workspaces: [StepWorkspace<Float>]
    let workerSums: UnsafeMutablePointer<TermSums>

    /// An evaluator over `threads` workers (at least 1, at most `batchSize`: more would have no example to take)
    /// that passes `batchSize` examples at a time, split among them; `pool` is reused when it has exactly that many
    /// threads, otherwise a pool of its own is made. Throws `WorkerPoolError` when its threads cannot be started.
    public init(model: VariationalAutoencoder<Float>, threads: Int, batchSize: Int = 500,
                pool: WorkerPool? = nil) throws {
        self.model = model
        let workers = Evaluator.workers(threads: threads, batchSize: batchSize)
        self.workers = workers
        self.pool = try pool.flatMap { $0.size == workers ? $0 : nil } ?? WorkerPool(size: workers)
        self.batchSize = batchSize
        let capacity = (max(1, batchSize) + workers - 1) / workers
        workspaces = (0..<workers).map { _ in StepWorkspace(model: model, capacity: capacity, samples: 1) }
        for ws in workspaces { ws.factorizationRetries = model.evaluationFactorizationRetries }
        workerSums = .allocate(capacity: workers)
        workerSums.initialize(repeating: TermSums(), count: workers)
    }

    deinit { workerSums.deallocate() }

    /// The workers an evaluator of `threads` threads runs for `batchSize` examples at a time.
    package static func workers(threads: Int, batchSize: Int) -> Int { max(1, min(threads, batchSize)) }

    /// Mean-able sums of Rec and KL over `binarized` (count × inputs values in {0, 1}).
    public func evaluate(binarized: [Float], count: Int, seed: UInt64 = 0) -> TermSums {
        evaluate(binarized: binarized, examples: 0..<count, seed: seed)
    }

    /// The sums over examples `examples` of `binarized` only (a rank's share of a test set); each example's noise is
    /// keyed by its index in the whole set, so the shares' sums add up to the whole set's.
    public func evaluate(binarized: [Float], examples: Range<Int>, seed: UInt64 = 0) -> TermSums {
        let d = model.configuration.inputs, k = model.configuration.latent
        let parameters = UnsafePointer(model.store.parameters.pointer)
        // The workers are the parallelism; BLAS threads inside them would oversubscribe the cores.
        if BLASThreads.current != 1 { BLASThreads.set(1) }
        var total = TermSums()
        binarized.withUnsafeBufferPointer { data in
            var start = examples.lowerBound
            while start < examples.upperBound {
                let rows = min(batchSize, examples.upperBound - start)
                pool.run { w in
                    let slice = Parallel.slice(rows, parts: workers, part: w)
                    let ws = workspaces[w]
                    workerSums[w] = TermSums()
                    guard !slice.isEmpty else { return }
                    for (j, row) in slice.enumerated() {
                        let example = start + row
                        (ws.x.pointer + j * d).update(from: data.baseAddress! + example * d, count: d)
                        var rng = RandomStream(seed: seed, purpose: .evaluation, index: UInt64(example))
                        rng.fillNormal(ws.noise.pointer + j * k, count: k)
                    }
                    if let sums = try? Objective.evaluate(model: model, parameters: parameters, rows: slice.count,
                                                          samples: 1, workspace: ws, gradients: nil, lossScale: 1) {
                        workerSums[w] = sums
                    } else {
                        workerSums[w] = TermSums(rec: .nan, kl: .nan, examples: slice.count)
                    }
                }
                for w in 0..<workers { total = total + workerSums[w] }
                start += rows
            }
        }
        return total
    }
}
