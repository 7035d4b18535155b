import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// The minibatch of one step: rows `start..<start + rows` of the epoch's order over the training images, with
/// the pointers the step reads (valid while it runs). Every random draw is keyed by (seed, step, row in the batch),
/// so what a row gets does not depend on which worker prepares it.
@usableFromInline package struct StepBatch {
    @usableFromInline package let start: Int, rows: Int, step: Int, seed: UInt64
    @usableFromInline package let order: UnsafePointer<Int>
    @usableFromInline package let pixels: UnsafePointer<UInt8>
    @usableFromInline package let thresholds: UnsafePointer<UInt32>

    /// The inputs and the posterior's noise of batch rows `slice` into the first rows of `ws`.
    @usableFromInline package func prepare(rows slice: Range<Int>, model: VariationalAutoencoder<Float>, into ws: StepWorkspace<Float>) {
        let k = model.configuration.latent, samples = model.configuration.samples
        inputs(rows: slice, model: model, into: ws.x.pointer)
        for (j, row) in slice.enumerated() {
            var noise = RandomStream(seed: seed, purpose: .noise, step: UInt64(step), index: UInt64(row))
            for s in 0..<samples {
                noise.fillNormal(ws.noise.pointer + (s * slice.count + j) * k, count: k)
            }
        }
    }

    /// The pixels of batch row `row`.
    @usableFromInline package func pixels(_ row: Int, width d: Int) -> UnsafePointer<UInt8> { pixels + order[start + row] * d }

    /// Batch rows `rows` as inputs into consecutive rows of `x`: their intensities, or fresh binary draws, each row
    /// from its own stream keyed by (seed, step, row), eight rows at a time through `RandomStreams8` and the rest one
    /// by one (the same pixels as row by row).
    @usableFromInline package func inputs(rows: Range<Int>, model: VariationalAutoencoder<Float>, into x: UnsafeMutablePointer<Float>) {
        let d = model.configuration.inputs
        guard model.configuration.binarization == .dynamic else {
            for row in rows {
                Binarization.intensities(pixels: pixels(row, width: d), count: d,
                                         into: x + (row - rows.lowerBound) * d)
            }
            return
        }
        func stream(_ row: Int) -> RandomStream {
            RandomStream(seed: seed, purpose: .binarization, step: UInt64(step), index: UInt64(row))
        }
        var row = rows.lowerBound
        while row + 8 <= rows.upperBound {
            let first = row
            var streams = RandomStreams8 { stream(first + $0) }
            Binarization.sample(pixels: { pixels(first + $0, width: d) }, count: d, thresholds: thresholds,
                                rng: &streams, into: x + (row - rows.lowerBound) * d)
            row += 8
        }
        while row < rows.upperBound {
            var bits = stream(row)
            Binarization.sample(pixels: pixels(row, width: d), count: d, thresholds: thresholds, rng: &bits,
                                into: x + (row - rows.lowerBound) * d)
            row += 1
        }
    }
}

/// Why a batch's loss or gradient cannot be used; the trainer drops the batch rather than update from it.
@usableFromInline package enum StepFailure: Int, Sendable, Error, CustomStringConvertible {
    /// A posterior's Cholesky factorization failed.
    case factorization = 1
    case logQ, logPrior
    /// The gradient with respect to the posterior's parameters is not finite.
    case posteriorGradient

    @usableFromInline package var description: String {
        switch self {
        case .factorization: "posterior factorization (Cholesky)"
        case .logQ: "log q"
        case .logPrior: "prior"
        case .posteriorGradient: "gradient"
        }
    }

    /// Checks a pass's per-example log-determinants, log priors and posterior-parameter gradients.
    @usableFromInline package static func diagnose(_ ws: StepWorkspace<Float>, rows: Int, model: VariationalAutoencoder<Float>) -> StepFailure? {
        var logQ: Float = 0
        for r in 0..<rows { logQ += ws.logDeterminant[r] }
        if !logQ.isFinite { return .logQ }
        if model.mixture != nil {
            var prior: Float = 0
            for i in 0..<(rows * model.configuration.samples) { prior += ws.logPrior[i] }
            if !prior.isFinite { return .logPrior }
        }
        let g = ws.encoder.outputGradient
        for i in 0..<(rows * model.posterior.parameterCount) where !g[i].isFinite { return .posteriorGradient }
        return nil
    }

    /// The first failing term of a batch with sums `sums` and per-part failures `failures` (nil when all is finite),
    /// named as the error message shows it.
    @usableFromInline package static func failedTerm(_ sums: TermSums, _ failures: UnsafeBufferPointer<StepFailure?>) -> String? {
        func failed(_ f: StepFailure) -> Bool { failures.contains(f) }
        if sums.loss.isFinite && sums.rec.isFinite && sums.kl.isFinite && !failures.contains(where: { $0 != nil }) {
            return nil
        }
        if failed(.factorization) { return StepFailure.factorization.description }
        if !sums.rec.isFinite { return "Rec" }
        if failed(.logQ) { return StepFailure.logQ.description }
        if failed(.logPrior) { return StepFailure.logPrior.description }
        if !sums.kl.isFinite { return "KL" }
        if !sums.loss.isFinite { return "importance-weighted bound" }
        return StepFailure.posteriorGradient.description
    }
}
