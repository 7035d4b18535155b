import LatentCore

/// The Bernoulli decoder likelihood on logits a: log p(x|z) = Σ_d [x_d a_d − softplus(a_d)] (MATH.md §1).
public enum BernoulliLikelihood {
    /// Per row: `negativeLogLikelihood[r]` = −log p(x_r|z_r); if `gradient` is given it receives
    /// `scale[r] · (sigmoid(a) − x)` = d(scale·(−log p))/da, computed in the same pass.
    @inlinable
    public static func evaluate<T: BLASScalar>(
        logits a: UnsafePointer<T>, targets x: UnsafePointer<T>, rows: Int, columns: Int,
        negativeLogLikelihood out: UnsafeMutablePointer<T>,
        gradient: UnsafeMutablePointer<T>?, scale: UnsafePointer<T>?
    ) {
        for r in 0..<rows {
            let ar = a + r * columns, xr = x + r * columns
            var total: T = 0
            if let gradient, let scale {
                let g = gradient + r * columns, w = scale[r]
                for d in 0..<columns {
                    let v = ar[d]
                    let e = T.exp(-abs(v))
                    let inv = 1 / (1 + e)
                    total += max(v, 0) + T.log1p(e) - xr[d] * v
                    let sigmoid = v >= 0 ? inv : e * inv
                    g[d] = w * (sigmoid - xr[d])
                }
            } else {
                for d in 0..<columns {
                    let v = ar[d]
                    total += max(v, 0) + T.log1p(T.exp(-abs(v))) - xr[d] * v
                }
            }
            out[r] = total
        }
    }
}
