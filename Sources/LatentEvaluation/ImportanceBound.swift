import Foundation
import LatentCore
import LatentData
import LatentModels

/// IWAE-m bounds for several m at once (MATH.md §4, §7), streamed: samples arrive in chunks, each example keeps a
/// running log-sum-exp, and the bound for m is read off when m samples have been seen. Memory depends on the chunk
/// size, never on m; the bounds for different m share their first samples (nested estimates). Every chunk
/// re-factorizes the posterior, but a factorization retry counts once per example, on its first chunk, into the
/// model's evaluation counter.
///
/// Generic in the scalar so that the streaming can be checked in Double against a direct log-sum-exp; runs use Float.
public final class ImportanceBoundEvaluator<Scalar: BLASScalar>: @unchecked Sendable {
    /// The model whose bounds are estimated, with its current parameters (read, never changed).
    public let model: VariationalAutoencoder<Scalar>
    @usableFromInline package let workers: Int
    /// The threads that run the workers' parts (shared with other evaluators of the same run).
    @usableFromInline package let pool: WorkerPool
    @usableFromInline package let rowsPerWorker: Int
    @usableFromInline package let chunk: Int
    let workspaces: [StepWorkspace<Scalar>]

    /// `decoderRows` bounds the samples × examples one worker decodes at once (the memory knob). Throws
    /// `WorkerPoolError` when its threads cannot be started.
    public init(model: VariationalAutoencoder<Scalar>, threads: Int, rowsPerWorker: Int = 50, decoderRows: Int = 2500,
                pool: WorkerPool? = nil) throws {
        self.model = model
        workers = max(1, threads)
        self.pool = try pool.flatMap { $0.size == max(1, threads) ? $0 : nil } ?? WorkerPool(size: max(1, threads))
        self.rowsPerWorker = rowsPerWorker
        let chunk = max(1, decoderRows / rowsPerWorker)
        self.chunk = chunk
        workspaces = (0..<workers).map { _ in StepWorkspace(model: model, capacity: rowsPerWorker, samples: chunk) }
    }

    /// The bounds of one evaluation and what they cost.
    public struct Result: Sendable {
        /// m → mean negative bound −L_m (nats, an upper estimate of −log p(x)).
        public var bounds: [Int: Double]
        /// The number of examples evaluated.
        public var examples: Int
        /// Latent samples decoded: examples × the largest m.
        public var decoderSamples: Int
        /// Wall-clock seconds the evaluation took.
        public var seconds: Double
        /// decoderSamples / seconds: the evaluation's throughput.
        public var decoderSamplesPerSecond: Double { Double(decoderSamples) / seconds }
    }

    /// Mean −L_m over `count` binarized examples for every m in `sampleCounts`.
    /// `progress(examplesDone, decoderSamplesPerSecond)` is called after every batch of examples.
    public func evaluate(binarized: [Scalar], count: Int, sampleCounts: [Int], seed: UInt64 = 0,
                         progress: (Int, Double) -> Void = { _, _ in }) throws -> Result {
        let counts = Array(Set(sampleCounts)).sorted()
        guard let largest = counts.last, counts.first! > 0 else { return Result(bounds: [:], examples: 0, decoderSamples: 0, seconds: 0) }
        let d = model.configuration.inputs, k = model.configuration.latent
        let parameters = UnsafePointer(model.store.parameters.pointer)
        if BLASThreads.current != 1 { BLASThreads.set(1) }
        let start = Date()
        // Per worker: Σ over its examples of the bound at each checkpoint, and a failure flag.
        var totals = [[Double]](repeating: [Double](repeating: 0, count: counts.count + 1), count: workers)
        binarized.withUnsafeBufferPointer { data in
            totals.withUnsafeMutableBufferPointer { perWorker in
                let perBatch = rowsPerWorker * workers
                var batchStart = 0
                while batchStart < count {
                    let rows = min(perBatch, count - batchStart)
                    pool.run { w in
                        let slice = Parallel.slice(rows, parts: workers, part: w)
                        guard !slice.isEmpty else { return }
                        let ws = workspaces[w]
                        let n = slice.count
                        var streams = (0..<n).map {
                            RandomStream(seed: seed, purpose: .evaluation, step: 1, index: UInt64(batchStart + slice.lowerBound + $0))
                        }
                        for j in 0..<n {
                            (ws.x.pointer + j * d).update(from: data.baseAddress! + (batchStart + slice.lowerBound + j) * d, count: d)
                        }
                        var maximum = [Scalar](repeating: -.infinity, count: n)
                        var sum = [Double](repeating: 0, count: n)
                        var seen = 0, next = 0
                        while seen < largest {
                            let m = min(chunk, counts[next] - seen)
                            for s in 0..<m {
                                for j in 0..<n { streams[j].fillNormal(ws.noise.pointer + (s * n + j) * k, count: k) }
                            }
                            ws.factorizationRetries = seen == 0 ? model.evaluationFactorizationRetries : nil
                            do {
                                _ = try ImportanceWeighted.evaluate(model: model, parameters: parameters, rows: n, samples: m,
                                                                    workspace: ws, gradients: nil, lossScale: 1)
                            } catch {
                                perWorker[w][counts.count] = 1
                                return
                            }
                            for j in 0..<n {
                                var top = maximum[j]
                                for s in 0..<m { top = max(top, ws.logWeights[s * n + j]) }
                                // A new maximum rescales the running sum: Σ exp(w − old) · exp(old − new).
                                var total = top == maximum[j] ? sum[j] : sum[j] * Double(Scalar.exp(maximum[j] - top))
                                for s in 0..<m { total += Double(Scalar.exp(ws.logWeights[s * n + j] - top)) }
                                maximum[j] = top
                                sum[j] = total
                            }
                            seen += m
                            if seen == counts[next] {
                                for j in 0..<n {
                                    perWorker[w][next] -= Double(maximum[j]) + Foundation.log(sum[j]) - Foundation.log(Double(seen))
                                }
                                next += 1
                            }
                        }
                    }
                    batchStart += rows
                    let elapsed = Date().timeIntervalSince(start)
                    progress(batchStart, Double(batchStart * largest) / max(elapsed, 1e-9))
                }
            }
        }
        if totals.contains(where: { $0[counts.count] != 0 }) {
            throw EvaluationError.nonFinite(term: "posterior factorization during IWAE evaluation")
        }
        var bounds = [Int: Double]()
        for (i, m) in counts.enumerated() {
            bounds[m] = totals.reduce(0) { $0 + $1[i] } / Double(count)
        }
        return Result(bounds: bounds, examples: count, decoderSamples: count * largest,
                      seconds: Date().timeIntervalSince(start))
    }
}
