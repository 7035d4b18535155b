import LatentCore

/// Sums of the per-example terms of one pass; divide by `examples` for means.
/// For one sample, `loss` = Rec + KL (the NELBO); for m > 1 it is the negative IWAE bound and Rec, KL are
/// averages over the m samples.
public struct TermSums: Sendable, Equatable, Codable {
    /// Σ Rec = Σ −log p(x|z) over the examples (MATH.md §3).
    public var rec: Double = 0
    /// Σ KL(q(z|x) ‖ p(z)) over the examples: analytic, or estimated from the samples (MATH.md §3, §5).
    public var kl: Double = 0
    /// Σ of the objective's loss over the examples: the NELBO, or −L_m for the importance-weighted bound (MATH.md §4).
    public var loss: Double = 0
    /// The number of examples summed.
    public var examples = 0
    /// Sums from their parts; `loss` defaults to `rec + kl`, the NELBO.
    public init(rec: Double = 0, kl: Double = 0, loss: Double? = nil, examples: Int = 0) {
        self.rec = rec
        self.kl = kl
        self.loss = loss ?? rec + kl
        self.examples = examples
    }
    /// Σ (Rec + KL): the NELBO's sum, also for an importance-weighted pass (where `loss` is the bound).
    public var nelbo: Double { rec + kl }
    /// The sums of two passes together, e.g. of two batches or two ranks.
    public static func + (a: TermSums, b: TermSums) -> TermSums {
        TermSums(rec: a.rec + b.rec, kl: a.kl + b.kl, loss: a.loss + b.loss, examples: a.examples + b.examples)
    }
}

/// The negative ELBO with one reparametrized sample and the analytic KL: Rec + KL per example (MATH.md §3).
@usableFromInline package struct ELBO: TrainingObjective {
    @usableFromInline package init() {}

    /// `TrainingObjective.evaluate` with one sample.
    @inlinable
    package static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, workspace ws: StepWorkspace<T>,
        gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        try ELBO().evaluate(model: model, parameters: p, rows: rows, samples: 1, workspace: ws, gradients: gradients,
                            lossScale: lossScale, accumulate: accumulate)
    }

    /// The posterior's state from the encoder output, and z = μ + Lε.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples _: Int,
                                            workspace ws: StepWorkspace<T>) throws {
        let q = UnsafePointer(ws.encoder.output)
        try model.posterior.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer,
                                    logDeterminant: ws.logDeterminant.pointer, retries: ws.factorizationRetries)
        model.posterior.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: 1,
                               rows: rows, z: ws.z.pointer)
    }

    /// Rec and KL of each example and their sums; with `gradients`, dLoss/dOutputs into the decoder's output
    /// gradient (the KL's gradient comes in `afterDecoderBackward`).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterDecoder<T: BLASScalar>(model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>,
                                            rows: Int, samples _: Int, workspace ws: StepWorkspace<T>,
                                            gradients g: UnsafeMutablePointer<T>?, lossScale: T,
                                            accumulate: Bool) -> TermSums {
        let q = UnsafePointer(ws.encoder.output)
        for r in 0..<rows { ws.rowScale[r] = lossScale }
        likelihood(model: model, parameters: p, rows: rows, sample: 0, workspace: ws, gradient: g != nil,
                   scale: ws.rowScale.pointer)
        if let g {
            let own = model.likelihood.parameters
            if !accumulate { for i in own { g[i] = 0 } }
            if !own.isEmpty {
                model.likelihood.accumulateParameterGradients(
                    parameters: p, outputs: ws.decoder.output, targets: ws.x.pointer, rows: rows,
                    columns: model.configuration.inputs, scale: ws.rowScale.pointer, gradients: g)
            }
        }
        model.posterior.klToStandardNormal(parameters: q, scratch: ws.scratch.pointer,
                                           logDeterminant: ws.logDeterminant.pointer, rows: rows, kl: ws.kl.pointer)
        var sums = TermSums(examples: rows)
        for r in 0..<rows {
            sums.rec += Double(ws.rec[r])
            sums.kl += Double(ws.kl[r])
        }
        sums.loss = sums.rec + sums.kl
        return sums
    }

    /// From dLoss/dz (the decoder's input gradient in `ws.dz`) and the KL's own gradient: dLoss/d(encoder output).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func afterDecoderBackward<T: BLASScalar>(model: VariationalAutoencoder<T>, parameters _: UnsafePointer<T>,
                                                    rows: Int, samples _: Int, workspace ws: StepWorkspace<T>,
                                                    gradients _: UnsafeMutablePointer<T>, lossScale: T,
                                                    accumulate _: Bool) {
        ws.dLogDeterminant.pointer.update(repeating: 0, count: rows)
        model.posterior.backward(parameters: UnsafePointer(ws.encoder.output), scratch: ws.scratch.pointer,
                                 noise: ws.noise.pointer, samples: 1, rows: rows, dz: ws.dz.pointer,
                                 dLogDeterminant: ws.dLogDeterminant.pointer, klWeight: lossScale,
                                 dParameters: ws.encoder.outputGradient)
    }
}
