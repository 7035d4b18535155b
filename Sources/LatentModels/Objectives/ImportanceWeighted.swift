import LatentCore

/// The importance-weighted bound L_m = logsumexp_s(log w_s) − log m with
/// log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x) (MATH.md §4); with m = 1 it is the ELBO with the one-sample
/// Monte Carlo KL, which is how the mixture prior's KL is estimated (MATH.md §5).
///
/// The m·rows samples go through the decoder as one batch (one GEMM per layer).
public enum ImportanceWeighted {
    /// Forward (and, with `gradients`, backward) for `rows` examples; noise is `ws.noise` as samples × rows × k.
    /// The gradient of `lossScale · Σ_rows (−L_m)` is written into `gradients` (added with `accumulate`).
    @inlinable
    public static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        let d = model.configuration.inputs, k = model.configuration.latent
        let posterior = model.posterior
        let n = m * rows
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        let q = UnsafePointer(ws.encoder.output)
        try posterior.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer,
                              logDeterminant: ws.logDeterminant.pointer)
        posterior.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: m, rows: rows,
                         z: ws.z.pointer)
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: n, workspace: ws.decoder)
        // Rec of every sample, and the unscaled logit gradient sigmoid(a) − x, rescaled below by each sample's weight.
        for s in 0..<m {
            let offset = s * rows
            for r in 0..<rows { ws.rowScale[r] = 1 }
            BernoulliLikelihood.evaluate(
                logits: ws.decoder.output + offset * d, targets: ws.x.pointer, rows: rows, columns: d,
                negativeLogLikelihood: ws.rec.pointer + offset,
                gradient: gradients == nil ? nil : ws.decoder.outputGradient + offset * d,
                scale: ws.rowScale.pointer, terms: ws.terms.pointer)
        }
        logPrior(model: model, parameters: p, z: ws.z.pointer, rows: n, workspace: ws)
        var sums = TermSums(examples: rows)
        sums.loss = 0
        let logM = T.log(T(m))
        for r in 0..<rows {
            var maximum = -T.infinity
            var klTotal: T = 0
            for s in 0..<m {
                let i = s * rows + r
                let logQ = posterior.logDensityOfOwnSample(noise: ws.noise.pointer + i * k,
                                                           logDeterminant: ws.logDeterminant[r])
                let logW = -ws.rec[i] + ws.logPrior[i] - logQ
                ws.logWeights[i] = logW
                maximum = max(maximum, logW)
                sums.rec += Double(ws.rec[i]) / Double(m)
                sums.kl += Double(logQ - ws.logPrior[i]) / Double(m)
                klTotal += logQ - ws.logPrior[i]
            }
            ws.kl[r] = klTotal / T(m)
            var total: T = 0
            for s in 0..<m { total += T.exp(ws.logWeights[s * rows + r] - maximum) }
            let logSum = maximum + T.log(total)
            ws.bound[r] = logSum - logM
            sums.loss -= Double(ws.bound[r])
            for s in 0..<m {
                let i = s * rows + r
                ws.coefficient[i] = lossScale * T.exp(ws.logWeights[i] - logSum)
            }
        }
        guard let g = gradients else { return sums }
        // d(−log w)/da = (sigmoid(a) − x): scale each decoder row by its sample's coefficient.
        for i in 0..<n {
            let c = ws.coefficient[i], row = ws.decoder.outputGradient + i * d
            for j in 0..<d { row[j] *= c }
        }
        model.decoder.backward(parameters: p, gradients: g, input: ws.z.pointer, rows: n, workspace: ws.decoder,
                               inputGradient: ws.dz.pointer, accumulate: accumulate)
        // −log p(z): N(0, I) gives +c·z; the mixture adds −c·∂log p to dz and to its own parameters.
        if let mixture = model.mixture {
            if !accumulate {
                for i in mixture.means.range { g[i] = 0 }
                for i in mixture.logVariances.range { g[i] = 0 }
            }
            for i in 0..<n { ws.coefficient[i] = -ws.coefficient[i] }
            mixture.backward(parameters: p, gradients: g, z: ws.z.pointer, rows: n, logDensity: ws.logPrior.pointer,
                             componentLogDensities: ws.componentLogDensities.pointer,
                             coefficient: ws.coefficient.pointer, dz: ws.dz.pointer, scratch: ws.mixture)
        } else {
            for i in 0..<n {
                let c = ws.coefficient[i]
                for j in 0..<k { ws.dz[i * k + j] += c * ws.z[i * k + j] }
            }
        }
        // −log q = ½‖ε‖² + Σ log L_ii + const: the weights sum to one, so d/dlogdet = −lossScale per example.
        for r in 0..<rows { ws.dLogDeterminant[r] = -lossScale }
        posterior.backward(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: m, rows: rows,
                           dz: ws.dz.pointer, dLogDeterminant: ws.dLogDeterminant.pointer, klWeight: 0,
                           dParameters: ws.encoder.outputGradient)
        model.encoder.backward(parameters: p, gradients: g, input: ws.x.pointer, rows: rows, workspace: ws.encoder,
                               inputGradient: nil, accumulate: accumulate)
        return sums
    }

    /// log p(z) for `rows` latent rows into `ws.logPrior`.
    @inlinable
    static func logPrior<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, z: UnsafePointer<T>, rows: Int,
        workspace ws: StepWorkspace<T>
    ) {
        let k = model.configuration.latent
        if let mixture = model.mixture {
            mixture.logDensity(parameters: p, z: z, rows: rows, out: ws.logPrior.pointer,
                               componentLogDensities: ws.componentLogDensities.pointer, scratch: ws.mixture)
        } else {
            for i in 0..<rows {
                var s: T = 0
                for j in 0..<k { s += z[i * k + j] * z[i * k + j] }
                ws.logPrior[i] = -s / 2 - T(k) * T.halfLogTwoPi
            }
        }
    }
}

/// The objective for m samples: the analytic-KL ELBO when m = 1 under N(0, I) (lower variance than the Monte Carlo
/// KL, same expectation), the importance-weighted bound otherwise (m > 1, or the mixture prior).
public enum Objective {
    @inlinable
    public static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        if model.configuration.prior == .normal && samples == 1 {
            return try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: gradients,
                                     lossScale: lossScale, accumulate: accumulate)
        }
        return try ImportanceWeighted.evaluate(model: model, parameters: p, rows: rows, samples: samples,
                                               workspace: ws, gradients: gradients, lossScale: lossScale,
                                               accumulate: accumulate)
    }
}
