import LatentCore
import LatentData
import LatentModels

/// What the posterior does across a data set: active units (Burda et al. 2015: Cov_x(E_q[z_u]) > 0.01, MATH.md §7)
/// and the mean absolute off-diagonal correlation of q(z|x), averaged over examples and pairs (0 for diagonal).
public struct PosteriorStatistics: Codable, Sendable, Equatable {
    /// The number of units u with A_u > ``activityThreshold`` (MATH.md §7).
    public var activeUnits: Int
    /// A_u for each latent unit u: the variance of the posterior mean μ_u(x) over the examples.
    public var unitVariances: [Double]
    /// The mean over examples and pairs i > j of |Σ_ij| / √(Σ_ii Σ_jj), Σ = LLᵀ; 0 for the diagonal family.
    public var meanAbsoluteCorrelation: Double
    /// The number of examples summarized.
    public var examples: Int

    /// The activity threshold of MATH.md §7.
    public static let activityThreshold = 0.01
}

extension Evaluator {
    /// Runs the encoder over `binarized` (count × inputs) and summarizes the posterior means and correlations.
    public func posteriorStatistics(binarized: [Float], count: Int) throws -> PosteriorStatistics {
        let k = model.configuration.latent, d = model.configuration.inputs
        let parameters = UnsafePointer(model.store.parameters.pointer)
        let posterior = model.posterior
        if BLASThreads.current != 1 { BLASThreads.set(1) }
        // Per worker: Σμ, Σμ², Σ|corr| and a failure flag, accumulated in Double.
        var sums = [[Double]](repeating: [Double](repeating: 0, count: 2 * k + 2), count: workers)
        binarized.withUnsafeBufferPointer { data in
            var start = 0
            while start < count {
                let rows = min(batchSize, count - start)
                sums.withUnsafeMutableBufferPointer { perWorker in
                    pool.run { w in
                        let slice = Parallel.slice(rows, parts: workers, part: w)
                        guard !slice.isEmpty else { return }
                        let ws = workspaces[w]
                        for (j, row) in slice.enumerated() {
                            (ws.x.pointer + j * d).update(from: data.baseAddress! + (start + row) * d, count: d)
                        }
                        model.encoder.forward(parameters: parameters, input: ws.x.pointer, rows: slice.count,
                                              workspace: ws.encoder)
                        let q = UnsafePointer(ws.encoder.output)
                        do {
                            try posterior.prepare(parameters: q, rows: slice.count, scratch: ws.scratch.pointer,
                                                  logDeterminant: ws.logDeterminant.pointer,
                                                  retries: ws.factorizationRetries)
                        } catch {
                            perWorker[w][2 * k + 1] = 1
                            return
                        }
                        let width = posterior.parameterCount
                        let l = UnsafeMutablePointer<Float>.allocate(capacity: k * k)
                        let sigma = UnsafeMutablePointer<Double>.allocate(capacity: k * k)
                        defer {
                            l.deallocate()
                            sigma.deallocate()
                        }
                        for j in 0..<slice.count {
                            for u in 0..<k {
                                let mu = Double(q[j * width + u])
                                perWorker[w][u] += mu
                                perWorker[w][k + u] += mu * mu
                            }
                            guard k > 1 else { continue }
                            posterior.factor(scratch: ws.scratch.pointer, row: j, into: l)
                            for a in 0..<k {
                                for b in 0...a {
                                    var s = 0.0
                                    for c in 0...b { s += Double(l[a * k + c]) * Double(l[b * k + c]) }
                                    sigma[a * k + b] = s
                                }
                            }
                            var total = 0.0
                            for a in 0..<k {
                                for b in 0..<a {
                                    total += abs(sigma[a * k + b]) / (sigma[a * k + a] * sigma[b * k + b]).squareRoot()
                                }
                            }
                            perWorker[w][2 * k] += total / Double(k * (k - 1) / 2)
                        }
                    }
                }
                start += rows
            }
        }
        if sums.contains(where: { $0[2 * k + 1] != 0 }) {
            throw EvaluationError.nonFinite(term: "posterior factorization during evaluation")
        }
        var mean = [Double](repeating: 0, count: k), second = [Double](repeating: 0, count: k)
        var correlation = 0.0
        for w in 0..<workers {
            for u in 0..<k {
                mean[u] += sums[w][u]
                second[u] += sums[w][k + u]
            }
            correlation += sums[w][2 * k]
        }
        let n = Double(max(1, count))
        let variances = (0..<k).map { max(0, second[$0] / n - (mean[$0] / n) * (mean[$0] / n)) }
        return PosteriorStatistics(
            activeUnits: variances.filter { $0 > PosteriorStatistics.activityThreshold }.count,
            unitVariances: variances, meanAbsoluteCorrelation: k > 1 ? correlation / n : 0, examples: count)
    }
}
