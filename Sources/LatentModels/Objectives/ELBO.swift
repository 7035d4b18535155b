import LatentCore

/// Sums of the per-example terms of one pass; divide by `examples` for means.
/// For one sample, `loss` = Rec + KL (the NELBO); for m > 1 it is the negative IWAE bound and Rec, KL are
/// averages over the m samples.
public struct TermSums: Sendable, Equatable, Codable {
    public var rec: Double = 0
    public var kl: Double = 0
    public var loss: Double = 0
    public var examples = 0
    public init(rec: Double = 0, kl: Double = 0, loss: Double? = nil, examples: Int = 0) {
        self.rec = rec
        self.kl = kl
        self.loss = loss ?? rec + kl
        self.examples = examples
    }
    public var nelbo: Double { rec + kl }
    public static func + (a: TermSums, b: TermSums) -> TermSums {
        TermSums(rec: a.rec + b.rec, kl: a.kl + b.kl, loss: a.loss + b.loss, examples: a.examples + b.examples)
    }
}

/// The negative ELBO with one reparametrized sample and the analytic KL: Rec + KL per example (MATH.md §3).
///
/// Its per-example work comes in three phases around the MLP passes (`afterEncoder`, `afterDecoder`,
/// `afterDecoderBackward`), so that the tensor-parallel trainer can run each phase on every block of the batch while
/// the layers' GEMMs are split by columns; `evaluate` runs them in order for one workspace.
public enum ELBO {
    /// Forward (and, with `gradients`, backward) for `rows` examples whose inputs and noise are already in `ws.x`
    /// and `ws.noise`. The gradient of `lossScale · Σ_rows NELBO` is written into `gradients`, or added to it with `accumulate`.
    @inlinable
    public static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, workspace ws: StepWorkspace<T>,
        gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        try afterEncoder(model: model, rows: rows, workspace: ws)
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: rows, workspace: ws.decoder)
        let sums = afterDecoder(model: model, rows: rows, workspace: ws, gradients: gradients != nil,
                                lossScale: lossScale)
        guard let g = gradients else { return sums }
        model.decoder.backward(parameters: p, gradients: g, input: ws.z.pointer, rows: rows, workspace: ws.decoder,
                               inputGradient: ws.dz.pointer, accumulate: accumulate)
        afterDecoderBackward(model: model, rows: rows, workspace: ws, lossScale: lossScale)
        model.encoder.backward(parameters: p, gradients: g, input: ws.x.pointer, rows: rows, workspace: ws.encoder,
                               inputGradient: nil, accumulate: accumulate)
        return sums
    }

    /// The posterior's state from the encoder output, and z = μ + Lε (throws when a factorization fails).
    @inlinable
    public static func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int,
                                                   workspace ws: StepWorkspace<T>) throws {
        let q = UnsafePointer(ws.encoder.output)
        try model.posterior.prepare(parameters: q, rows: rows, scratch: ws.scratch.pointer,
                                    logDeterminant: ws.logDeterminant.pointer, retries: ws.factorizationRetries)
        model.posterior.sample(parameters: q, scratch: ws.scratch.pointer, noise: ws.noise.pointer, samples: 1,
                               rows: rows, z: ws.z.pointer)
    }

    /// Rec and KL of each example and their sums; with `gradients`, dLoss/dLogits into the decoder's output gradient.
    @inlinable
    public static func afterDecoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int,
                                                   workspace ws: StepWorkspace<T>, gradients: Bool,
                                                   lossScale: T) -> TermSums {
        let q = UnsafePointer(ws.encoder.output)
        for r in 0..<rows { ws.rowScale[r] = lossScale }
        BernoulliLikelihood.evaluate(
            logits: ws.decoder.output, targets: ws.x.pointer, rows: rows, columns: model.configuration.inputs,
            negativeLogLikelihood: ws.rec.pointer,
            gradient: gradients ? ws.decoder.outputGradient : nil, scale: ws.rowScale.pointer,
            terms: ws.terms.pointer)
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
    @inlinable
    public static func afterDecoderBackward<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int,
                                                           workspace ws: StepWorkspace<T>, lossScale: T) {
        ws.dLogDeterminant.pointer.update(repeating: 0, count: rows)
        model.posterior.backward(parameters: UnsafePointer(ws.encoder.output), scratch: ws.scratch.pointer,
                                 noise: ws.noise.pointer, samples: 1, rows: rows, dz: ws.dz.pointer,
                                 dLogDeterminant: ws.dLogDeterminant.pointer, klWeight: lossScale,
                                 dParameters: ws.encoder.outputGradient)
    }
}
