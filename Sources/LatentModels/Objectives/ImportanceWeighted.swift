import LatentCore

/// The importance-weighted bound L_m = logsumexp_s(log w_s) − log m with
/// log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x) (MATH.md §4); with m = 1 it is the ELBO with the one-sample
/// Monte Carlo KL, which is how the mixture prior's KL is estimated (MATH.md §5).
///
/// The m·rows samples go through the decoder as one batch (one GEMM per layer). Its per-example work comes in the
/// same three phases as `ELBO`'s.
public enum ImportanceWeighted {
    /// Forward (and, with `gradients`, backward) for `rows` examples; noise is `ws.noise` as samples × rows × k.
    /// The gradient of `lossScale · Σ_rows (−L_m)` is written into `gradients` (added with `accumulate`).
    @inlinable
    public static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        try afterEncoder(model: model, rows: rows, samples: m, workspace: ws)
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder)
        let sums = afterDecoder(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                gradients: gradients != nil, lossScale: lossScale)
        guard let g = gradients else { return sums }
        model.decoder.backward(parameters: p, gradients: g, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder,
                               inputGradient: ws.dz.pointer, accumulate: accumulate)
        afterDecoderBackward(model: model, parameters: p, rows: rows, samples: m, workspace: ws, gradients: g,
                             lossScale: lossScale, accumulate: accumulate)
        model.encoder.backward(parameters: p, gradients: g, input: ws.x.pointer, rows: rows, workspace: ws.encoder,
                               inputGradient: nil, accumulate: accumulate)
        return sums
    }

    /// The posterior's state from the encoder output, and its m samples z_s = μ + Lε_s.
    @inlinable
    public static func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples m: Int,
                                                   workspace ws: StepWorkspace<T>) throws {
        let q = UnsafePointer(ws.encoder.output)
        try model.posterior.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer,
                                    logDeterminant: ws.logDeterminant.pointer, retries: ws.factorizationRetries)
        model.posterior.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: m,
                               rows: rows, z: ws.z.pointer)
    }

    /// log w of every sample, the bound and its sums; with `gradients`, each decoder row's dLoss/dLogits weighted by
    /// its sample's normalized importance weight.
    @inlinable
    public static func afterDecoder<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: Bool, lossScale: T
    ) -> TermSums {
        let d = model.configuration.inputs, k = model.configuration.latent
        let posterior = model.posterior
        let n = m * rows
        // Rec of every sample, and the unscaled logit gradient sigmoid(a) − x, rescaled below by each sample's weight.
        for s in 0..<m {
            let offset = s * rows
            for r in 0..<rows { ws.rowScale[r] = 1 }
            BernoulliLikelihood.evaluate(
                logits: ws.decoder.output + offset * d, targets: ws.x.pointer, rows: rows, columns: d,
                negativeLogLikelihood: ws.rec.pointer + offset,
                gradient: gradients ? ws.decoder.outputGradient + offset * d : nil,
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
        guard gradients else { return sums }
        // d(−log w)/da = (sigmoid(a) − x): scale each decoder row by its sample's coefficient.
        for i in 0..<n {
            let c = ws.coefficient[i], row = ws.decoder.outputGradient + i * d
            for j in 0..<d { row[j] *= c }
        }
        return sums
    }

    /// From dLoss/dz through the decoder (in `ws.dz`): the prior's term (the mixture's parameter gradients into
    /// `gradients`, added with `accumulate`) and the posterior's backward into dLoss/d(encoder output).
    @inlinable
    public static func afterDecoderBackward<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients g: UnsafeMutablePointer<T>, lossScale: T, accumulate: Bool
    ) {
        let k = model.configuration.latent
        let n = m * rows
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
        model.posterior.backward(parameters: UnsafePointer(ws.encoder.output), scratch: ws.scratch.pointer,
                                 noise: ws.noise.pointer, samples: m, rows: rows, dz: ws.dz.pointer,
                                 dLogDeterminant: ws.dLogDeterminant.pointer, klWeight: 0,
                                 dParameters: ws.encoder.outputGradient)
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
        if usesAnalyticKL(model, samples: samples) {
            return try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: gradients,
                                     lossScale: lossScale, accumulate: accumulate)
        }
        return try ImportanceWeighted.evaluate(model: model, parameters: p, rows: rows, samples: samples,
                                               workspace: ws, gradients: gradients, lossScale: lossScale,
                                               accumulate: accumulate)
    }

    @inlinable
    static func usesAnalyticKL<T: BLASScalar>(_ model: VariationalAutoencoder<T>, samples: Int) -> Bool {
        model.configuration.prior == .normal && samples == 1
    }

    // The phases of `evaluate` between the MLP passes, for the tensor-parallel trainer (see `ELBO`).

    @inlinable
    public static func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples: Int,
                                                   workspace ws: StepWorkspace<T>) throws {
        if usesAnalyticKL(model, samples: samples) {
            try ELBO.afterEncoder(model: model, rows: rows, workspace: ws)
        } else {
            try ImportanceWeighted.afterEncoder(model: model, rows: rows, samples: samples, workspace: ws)
        }
    }

    @inlinable
    public static func afterDecoder<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples: Int,
        workspace ws: StepWorkspace<T>, gradients: Bool, lossScale: T
    ) -> TermSums {
        if usesAnalyticKL(model, samples: samples) {
            return ELBO.afterDecoder(model: model, rows: rows, workspace: ws, gradients: gradients,
                                     lossScale: lossScale)
        }
        return ImportanceWeighted.afterDecoder(model: model, parameters: p, rows: rows, samples: samples,
                                               workspace: ws, gradients: gradients, lossScale: lossScale)
    }

    @inlinable
    public static func afterDecoderBackward<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples: Int,
        workspace ws: StepWorkspace<T>, gradients g: UnsafeMutablePointer<T>, lossScale: T, accumulate: Bool
    ) {
        if usesAnalyticKL(model, samples: samples) {
            ELBO.afterDecoderBackward(model: model, rows: rows, workspace: ws, lossScale: lossScale)
        } else {
            ImportanceWeighted.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: samples,
                                                    workspace: ws, gradients: g, lossScale: lossScale,
                                                    accumulate: accumulate)
        }
    }
}
