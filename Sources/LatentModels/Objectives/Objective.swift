import LatentCore

/// A training objective as its per-example phases around the two MLP passes (MATH.md §3–§5):
///
///     encoder forward → afterEncoder → decoder forward → afterDecoder
///     → decoder backward (dz) → afterDecoderBackward → encoder backward
///
/// `evaluate` runs them in that order on one workspace; the parallel training strategies run each phase on their
/// blocks of the batch. Adding an objective is a new conforming type and a line in `VariationalAutoencoder.objective`.
@usableFromInline package protocol TrainingObjective: Sendable {
    /// The posterior's per-example state from the encoder output in `ws`, and the samples z (throws when a
    /// factorization fails).
    func afterEncoder<T: BLASScalar>(model: VariationalAutoencoder<T>, rows: Int, samples: Int,
                                     workspace ws: StepWorkspace<T>) throws

    /// The loss terms from the decoder output; with `gradients`, dLoss/d(decoder output) into the decoder's output
    /// gradient and the likelihood's own parameter gradients into `gradients` (added with `accumulate`).
    func afterDecoder<T: BLASScalar>(model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int,
                                     samples: Int, workspace ws: StepWorkspace<T>,
                                     gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool) -> TermSums

    /// From dLoss/dz (in `ws.dz`): the prior's parameter gradients into `gradients` (added with `accumulate`) and
    /// dLoss/d(encoder output).
    func afterDecoderBackward<T: BLASScalar>(model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>,
                                             rows: Int, samples: Int, workspace ws: StepWorkspace<T>,
                                             gradients g: UnsafeMutablePointer<T>, lossScale: T, accumulate: Bool)
}

extension TrainingObjective {
    /// `Objective.evaluate` with this objective: the phases in order on one workspace.
    @inlinable
    package func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        try Objective.evaluate(self, model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                               gradients: gradients, lossScale: lossScale, accumulate: accumulate)
    }

    /// The decoder outputs' likelihood terms of sample block `s` (rows `s·rows ..< (s+1)·rows`), each row's
    /// gradient scaled by `scale`, and the likelihood's own parameter gradients weighted the same way.
    @inlinable
    func likelihood<T: BLASScalar>(model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int,
                                   sample s: Int, workspace ws: StepWorkspace<T>, gradient: Bool,
                                   scale: UnsafePointer<T>) {
        let d = model.configuration.inputs, offset = s * rows
        model.likelihood.evaluate(
            parameters: p, outputs: ws.decoder.output + offset * d, targets: ws.x.pointer, rows: rows, columns: d,
            negativeLogLikelihood: ws.rec.pointer + offset, gradient: gradient ? ws.decoder.outputGradient + offset * d : nil,
            scale: scale, terms: ws.terms.pointer)
    }
}

/// The objective for a model, a sample count and an estimator: the analytic-KL ELBO when m = 1 under N(0, I) with
/// the standard estimator (lower variance than the Monte Carlo KL, same expectation), the importance-weighted bound
/// otherwise (m > 1, the mixture prior, or STL and DReG, which need log q's Monte Carlo form: MATH.md §10).
@usableFromInline package enum Objective {
    @inlinable
    package static func of<T: BLASScalar>(_ model: VariationalAutoencoder<T>, samples: Int,
                                         estimator: PathwiseEstimator = .standard) -> any TrainingObjective {
        estimator == .standard && usesAnalyticKL(model.configuration, samples: samples)
            ? ELBO() : ImportanceWeighted(estimator: estimator)
    }

    /// Forward (and, with `gradients`, backward) for `rows` examples whose inputs and noise are already in `ws.x`
    /// and `ws.noise`: the phases in order. The gradient of `lossScale · Σ_rows loss` is written into `gradients`,
    /// or added to it with `accumulate`.
    @inlinable
    package static func evaluate<T: BLASScalar>(
        _ objective: any TrainingObjective, model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples m: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        model.encoder.forward(parameters: p, input: ws.x.pointer, rows: rows, workspace: ws.encoder)
        try objective.afterEncoder(model: model, rows: rows, samples: m, workspace: ws)
        model.decoder.forward(parameters: p, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder)
        let sums = objective.afterDecoder(model: model, parameters: p, rows: rows, samples: m, workspace: ws,
                                          gradients: gradients, lossScale: lossScale, accumulate: accumulate)
        guard let g = gradients else { return sums }
        model.decoder.backward(parameters: p, gradients: g, input: ws.z.pointer, rows: m * rows, workspace: ws.decoder,
                               inputGradient: ws.dz.pointer, accumulate: accumulate)
        objective.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: m, workspace: ws, gradients: g,
                             lossScale: lossScale, accumulate: accumulate)
        model.encoder.backward(parameters: p, gradients: g, input: ws.x.pointer, rows: rows, workspace: ws.encoder,
                               inputGradient: nil, accumulate: accumulate)
        return sums
    }

    /// The straight-line forward (and backward) pass of the objective `of(model, samples:)`.
    @inlinable
    package static func evaluate<T: BLASScalar>(
        model: VariationalAutoencoder<T>, parameters p: UnsafePointer<T>, rows: Int, samples: Int,
        workspace ws: StepWorkspace<T>, gradients: UnsafeMutablePointer<T>?, lossScale: T, accumulate: Bool = false
    ) throws -> TermSums {
        try evaluate(of(model, samples: samples), model: model, parameters: p, rows: rows, samples: samples,
                     workspace: ws, gradients: gradients, lossScale: lossScale, accumulate: accumulate)
    }

    @usableFromInline static func usesAnalyticKL(_ configuration: ModelConfiguration, samples: Int) -> Bool {
        configuration.prior == .normal && samples == 1
    }
}
