import LatentCore

/// The importance-weighted bound L_m = logsumexp_s(log w_s) − log m with
/// log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x) (MATH.md §4); with m = 1 it is the ELBO with the one-sample
/// Monte Carlo KL, which is how the mixture prior's KL is estimated (MATH.md §5).
///
/// The m·rows samples go through the decoder as one batch (one GEMM per layer). Its per-example work comes in the
/// same three phases as `ELBO`'s. The estimator changes only the encoder's gradient (MATH.md §10).
@usableFromInline package struct ImportanceWeighted: TrainingObjective {
    @usableFromInline package let estimator: PathwiseEstimator
    @usableFromInline package init(estimator: PathwiseEstimator = .standard) { self.estimator = estimator }

    /// `TrainingObjective.evaluate` of the m-sample bound.
    @inlinable
    package static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false,
        estimator: PathwiseEstimator = .standard
    ) throws -> TermSums {
        try ImportanceWeighted(estimator: estimator).evaluate(
            model: model, parameters: p, rows: rows, samples: m, workspace: ws, gradients: gradients,
            lossScale: lossScale, accumulate: accumulate)
    }

    /// The posterior's state from the encoder output, and its m samples z_s = μ + Lε_s.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples m: Int,
                                            workspace ws: StepWorkspace<T>) throws {
        let q = UnsafePointer(ws.encoder.output)
        try model.posterior.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer,
                                    logDeterminant: ws.logDeterminant.pointer, retries: ws.factorizationRetries)
        model.posterior.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: m,
                               rows: rows, z: ws.z.pointer)
    }

    /// log w of every sample, the bound and its sums; with `gradients`, each decoder row's dLoss/dLogits weighted by
    /// its sample's normalized importance weight.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterDecoder<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients g: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool
    ) -> TermSums {
        let d = model.configuration.inputs, k = model.configuration.latent
        let posterior = model.posterior
        let n = m * rows
        // Rec of every sample, and the unscaled logit gradient sigmoid(a) − x, rescaled below by each sample's weight.
        for r in 0..<rows { ws.rowScale[r] = 1 }
        for s in 0..<m {
            likelihood(model: model, parameters: p, rows: rows, sample: s, workspace: ws, gradient: g != nil,
                       scale: ws.rowScale.pointer)
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
                let weight = T.exp(ws.logWeights[i] - logSum)
                ws.coefficient[i] = lossScale * weight
                ws.normalizedWeights[i] = weight
            }
        }
        guard let g else { return sums }
        // d(−log w)/da: scale each decoder row's unweighted gradient by its sample's coefficient.
        for i in 0..<n {
            let c = ws.coefficient[i], row = ws.decoder.outputGradient + i * d
            for j in 0..<d { row[j] *= c }
        }
        let own = model.likelihood.parameters
        if !accumulate { for i in own { g[i] = 0 } }
        if !own.isEmpty {
            for s in 0..<m {
                model.likelihood.accumulateParameterGradients(
                    parameters: p, outputs: ws.decoder.output + s * rows * d, targets: ws.x.pointer, rows: rows,
                    columns: d, scale: ws.coefficient.pointer + s * rows, gradients: g)
            }
        }
        return sums
    }

    /// From dLoss/dz through the decoder (in `ws.dz`): the prior's term (the mixture's parameter gradients into
    /// `gradients`, added with `accumulate`) and the posterior's backward into dLoss/d(encoder output).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterDecoderBackward<T: BLASScalar>(
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
        if estimator == .standard {
            // −log q = ½‖ε‖² + Σ log L_ii + const: the weights sum to one, so d/dlogdet = −lossScale per example.
            for r in 0..<rows { ws.dLogDeterminant[r] = -lossScale }
        } else {
            addStoppedLogDensity(model: model, rows: rows, samples: m, workspace: ws, lossScale: lossScale)
        }
        model.posterior.backward(parameters: UnsafePointer(ws.encoder.output), scratch: ws.scratch.pointer,
                                 noise: ws.noise.pointer, samples: m, rows: rows, dz: ws.dz.pointer,
                                 dLogDeterminant: ws.dLogDeterminant.pointer, klWeight: 0,
                                 dParameters: ws.encoder.outputGradient)
    }

    /// STL and DReG (MATH.md §10): log q's parameters are stopped, so Σ log L_ii gets no gradient and dz_s gains
    /// lossScale·w̃_s·∂log q/∂z_s; DReG then weights each sample's whole dz_s by w̃_s once more (w̃_s² in all).
    func addStoppedLogDensity<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples m: Int,
                                             workspace ws: StepWorkspace<T>, lossScale: T) {
        let k = model.configuration.latent
        model.posterior.logDensityGradient(scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: m,
                                           rows: rows, out: ws.logDensityGradient.pointer)
        let squared = estimator == .dreg
        for i in 0..<(m * rows) {
            let weight = ws.normalizedWeights[i], c = lossScale * weight
            let dz = ws.dz.pointer + i * k, g = ws.logDensityGradient.pointer + i * k
            for j in 0..<k {
                let v = dz[j] + c * g[j]
                dz[j] = squared ? weight * v : v
            }
        }
        for r in 0..<rows { ws.dLogDeterminant[r] = 0 }
    }

    /// log p(z) for `rows` latent rows into `ws.logPrior`.
    func logPrior<T: BLASScalar>(
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
