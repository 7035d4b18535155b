import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// The minibatch of one step: rows `start..<start + rows` of the epoch's order over the training images, with
/// the pointers the step reads (valid while it runs). Every random draw is keyed by (seed, step, row in the global
/// batch), so what a row gets does not depend on which worker or which rank prepares it.
package struct StepBatch {
    package let start: Int, rows: Int, step: Int, seed: UInt64
    package let order: UnsafePointer<Int>
    package let pixels: UnsafePointer<UInt8>
    package let thresholds: UnsafePointer<UInt32>
    /// Row 0's row in the global batch (a rank's share starts inside it), which keys the random draws.
    package let firstRow: Int
    /// The global batch's rows: the loss is their mean, so every example's gradient is scaled by 1 / `lossRows`.
    package let lossRows: Int

    package init(start: Int, rows: Int, step: Int, seed: UInt64, order: UnsafePointer<Int>,
                 pixels: UnsafePointer<UInt8>, thresholds: UnsafePointer<UInt32>, firstRow: Int = 0,
                 lossRows: Int? = nil) {
        (self.start, self.rows, self.step, self.seed) = (start, rows, step, seed)
        (self.order, self.pixels, self.thresholds) = (order, pixels, thresholds)
        self.firstRow = firstRow
        self.lossRows = lossRows ?? rows
    }

    /// Rows `share` of this batch as a batch of their own, with the same keys and loss divisor (a rank's share).
    package func share(_ share: Range<Int>) -> StepBatch {
        StepBatch(start: start + share.lowerBound, rows: share.count, step: step, seed: seed, order: order,
                  pixels: pixels, thresholds: thresholds, firstRow: firstRow + share.lowerBound, lossRows: lossRows)
    }

    /// The loss scale of every example's gradient.
    package var lossScale: Float { 1 / Float(lossRows) }

    /// The inputs and the posterior's noise of batch rows `slice` into the first rows of `ws`.
    package func prepare(rows slice: Range<Int>, model: VariationalAutoencoder<Float>, into ws: StepWorkspace<Float>) {
        let k = model.configuration.latent, samples = model.configuration.samples
        inputs(rows: slice, model: model, into: ws.x.pointer)
        for (j, row) in slice.enumerated() {
            var noise = RandomStream(seed: seed, purpose: .noise, step: UInt64(step), index: UInt64(firstRow + row))
            for s in 0..<samples {
                noise.fillNormal(ws.noise.pointer + (s * slice.count + j) * k, count: k)
            }
        }
    }

    /// The pixels of batch row `row`.
    package func pixels(_ row: Int, width d: Int) -> UnsafePointer<UInt8> { pixels + order[start + row] * d }

    /// Batch rows `rows` as inputs into consecutive rows of `x`: their intensities, or fresh binary draws, each row
    /// from its own stream keyed by (seed, step, row), eight rows at a time through `RandomStreams8` and the rest one
    /// by one (the same pixels as row by row).
    package func inputs(rows: Range<Int>, model: VariationalAutoencoder<Float>, into x: UnsafeMutablePointer<Float>) {
        let d = model.configuration.inputs
        guard model.configuration.binarization == .dynamic else {
            for row in rows {
                Binarization.intensities(pixels: pixels(row, width: d), count: d,
                                         into: x + (row - rows.lowerBound) * d)
            }
            return
        }
        func stream(_ row: Int) -> RandomStream {
            RandomStream(seed: seed, purpose: .binarization, step: UInt64(step), index: UInt64(firstRow + row))
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
package enum StepFailure: Int, Sendable, Error, CustomStringConvertible {
    /// A posterior's Cholesky factorization failed.
    case factorization = 1
    case logQ, logPrior
    /// The gradient with respect to the posterior's parameters is not finite.
    case posteriorGradient

    package var description: String {
        switch self {
        case .factorization: "posterior factorization (Cholesky)"
        case .logQ: "log q"
        case .logPrior: "prior"
        case .posteriorGradient: "gradient"
        }
    }

    /// Checks a pass's per-example log-determinants, log priors and posterior-parameter gradients.
    package static func diagnose(_ ws: StepWorkspace<Float>, rows: Int, model: VariationalAutoencoder<Float>) -> StepFailure? {
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
    package static func failedTerm(_ sums: TermSums, _ failures: UnsafeBufferPointer<StepFailure?>) -> String? {
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
