import LatentCore

/// The Bernoulli decoder likelihood on logits a: log p(x|z) = Σ_d [x_d a_d − softplus(a_d)] (MATH.md §1). It has
/// no parameters of its own.
@usableFromInline package struct BernoulliLikelihood: Likelihood {
    @usableFromInline package init() {}

    @usableFromInline package var parameters: Range<Int> { 0..<0 }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @usableFromInline package func evaluate<T: BLASScalar>(
        parameters _: UnsafePointer<T>, outputs a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int,
        columns: Int, negativeLogLikelihood out: UnsafeMutablePointer<T>, gradient: UnsafeMutablePointer<T>?,
        scale: UnsafePointer<T>?, terms: UnsafeMutablePointer<T>
    ) {
        BernoulliLikelihood.evaluate(logits: a, targets: x, rows: rows, columns: columns, negativeLogLikelihood: out,
                                     gradient: gradient, scale: scale, terms: terms)
    }

    @usableFromInline package func accumulateParameterGradients<T: BLASScalar>(
        parameters _: UnsafePointer<T>, outputs _: UnsafePointer<T>, targets _: UnsafePointer<T>, rows _: Int,
        columns _: Int, scale _: UnsafePointer<T>, gradients _: UnsafeMutablePointer<T>
    ) {}

    /// Per row: `negativeLogLikelihood[r]` = −log p(x_r|z_r); if `gradient` is given it receives
    /// `scale[r] · (sigmoid(a) − x)` = d(scale·(−log p))/da, computed in the same pass.
    ///
    /// The per-element terms go through `terms` (one row of scratch) so the element loop has no reduction and
    /// vectorizes; the row sum then uses eight independent partial sums.
    @inlinable
    package static func evaluate<T: BLASScalar>(
        logits a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int, columns: Int,
        negativeLogLikelihood out: UnsafeMutablePointer<T>,
        gradient: UnsafeMutablePointer<T>?, scale: UnsafePointer<T>?, terms: UnsafeMutablePointer<T>
    ) {
        for r in 0..<rows {
            let ar = a + r * columns, xr = x + r * columns
            if let gradient, let scale {
                let g = gradient + r * columns, w = scale[r]
                // Two passes over the row (it stays in L1): e = exp(−|a|) first, then the terms and the gradient.
                // One fused loop holds both polynomials' constants at once and spills them on every iteration.
                for d in 0..<columns { terms[d] = T.fastExp(-abs(ar[d])) }
                for d in 0..<columns {
                    let v = ar[d], target = xr[d], e = terms[d]
                    // One division for both 1/(1 + e) (the sigmoid) and 1/(2 + e) (for log(1 + e)).
                    let q = 1 / ((1 + e) * (2 + e))
                    let inv = (2 + e) * q
                    let softplusTail = T.fastLogOnePlusUnit(e, reciprocalOfTwoPlus: (1 + e) * q)
                    terms[d] = max(v, 0) + softplusTail - target * v
                    let sigmoid = v >= 0 ? inv : e * inv
                    g[d] = w * (sigmoid - target)
                }
            } else {
                for d in 0..<columns {
                    let v = ar[d]
                    terms[d] = max(v, 0) + T.fastLogOnePlus(T.fastExp(-abs(v))) - xr[d] * v
                }
            }
            out[r] = sum(terms, count: columns)
        }
    }

    /// Σ values with eight interleaved partial sums (breaks the dependency chain of a single accumulator).
    @inlinable
    package static func sum<T: BLASScalar>(_ v: UnsafePointer<T>, count: Int) -> T {
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0, s4: T = 0, s5: T = 0, s6: T = 0, s7: T = 0
        var i = 0
        while i + 8 <= count {
            s0 += v[i]; s1 += v[i + 1]; s2 += v[i + 2]; s3 += v[i + 3]
            s4 += v[i + 4]; s5 += v[i + 5]; s6 += v[i + 6]; s7 += v[i + 7]
            i += 8
        }
        while i < count { s0 += v[i]; i += 1 }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    }
}
