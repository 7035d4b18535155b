import LatentCore

/// A Gaussian observation model for intensities in [0, 1] (MATH.md §9): mean μ_d = sigmoid(a_d) and one learned
/// log-variance s_d per pixel, −log p(x|z) = ½ Σ_d [log 2π + s_d + (x_d − μ_d)² e^{−s_d}]. The log-variance is
/// floored at `minimumLogVariance`: a background pixel that is always 0 would otherwise let its variance, and the
/// likelihood, grow without bound.
@usableFromInline package struct GaussianLikelihood: Likelihood {
    /// log (1/255)²: no variance below the intensities' quantization step.
    @usableFromInline package static let minimumLogVariance = -2 * 5.541_263_545_158_426  // log 255

    /// The per-pixel log-variances s (initialized to 0: unit variance).
    @usableFromInline package let logVariance: ParameterView

    @usableFromInline package init(inputs: Int, store: ParameterStore<some BLASScalar>) {
        logVariance = store.reserve("likelihood.logVariance", count: inputs)
    }

    @usableFromInline package var parameters: Range<Int> { logVariance.range }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func evaluate<T: BLASScalar>(
        parameters p: UnsafePointer<T>, outputs a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int,
        columns: Int, negativeLogLikelihood out: UnsafeMutablePointer<T>, gradient: UnsafeMutablePointer<T>?,
        scale: UnsafePointer<T>?, terms: UnsafeMutablePointer<T>
    ) {
        let s = p + logVariance.offset, floor = T(GaussianLikelihood.minimumLogVariance)
        for r in 0..<rows {
            let ar = a + r * columns, xr = x + r * columns
            let w = scale?[r] ?? 0
            for d in 0..<columns {
                let logVariance = max(s[d], floor)
                let mean = ElementWise.sigmoid(ar[d]), residual = xr[d] - mean, precision = T.exp(-logVariance)
                terms[d] = (2 * T.halfLogTwoPi + logVariance + residual * residual * precision) / 2
                gradient?[r * columns + d] = -w * residual * precision * mean * (1 - mean)
            }
            out[r] = BernoulliLikelihood.sum(terms, count: columns)
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func accumulateParameterGradients<T: BLASScalar>(
        parameters p: UnsafePointer<T>, outputs a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int,
        columns: Int, scale: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>
    ) {
        let s = p + logVariance.offset, gs = g + logVariance.offset, floor = T(GaussianLikelihood.minimumLogVariance)
        for r in 0..<rows {
            let ar = a + r * columns, xr = x + r * columns, w = scale[r]
            for d in 0..<columns where s[d] > floor {
                let residual = xr[d] - ElementWise.sigmoid(ar[d])
                gs[d] += w * (1 - residual * residual * T.exp(-s[d])) / 2
            }
        }
    }
}
