import LatentCore

/// p(z) = (1/K) Σ_j N(z; m_j, diag(exp(ℓ_j))) with learnable means m (K×k) and log-variances ℓ (K×k), uniform
/// fixed weights (MATH.md §5). Gradients reach (m, ℓ) through the responsibilities softmax_j(log N_j).
public struct GaussianMixturePrior: Sendable {
    public let components: Int
    public let latent: Int
    public let means: ParameterView
    public let logVariances: ParameterView

    public init(components: Int, latent: Int, store: ParameterStore<some BLASScalar>) {
        self.components = components
        self.latent = latent
        means = store.reserve("prior.means", count: components * latent)
        logVariances = store.reserve("prior.log_variances", count: components * latent)
    }

    /// log p(z) per row into `out`; `componentLogDensities` (rows × K) keeps log N_j(z) for the backward.
    @inlinable
    public func logDensity<T: BLASScalar>(
        parameters p: UnsafePointer<T>, z: UnsafePointer<T>, rows: Int, out: UnsafeMutablePointer<T>,
        componentLogDensities logN: UnsafeMutablePointer<T>
    ) {
        let k = latent, K = components
        let m = p + means.offset, lv = p + logVariances.offset
        let constant = T(k) * T.halfLogTwoPi
        for r in 0..<rows {
            let zr = z + r * k, row = logN + r * K
            for j in 0..<K {
                var q: T = 0
                for i in 0..<k {
                    let diff = zr[i] - m[j * k + i]
                    q += diff * diff * T.exp(-lv[j * k + i]) + lv[j * k + i]
                }
                row[j] = -q / 2 - constant
            }
            out[r] = ElementWise.logSumExp(UnsafePointer(row), count: K) - T.log(T(K))
        }
    }

    /// Adds `coefficient[r]` · ∂log p(z_r)/∂z_r to `dz` and · ∂log p/∂(m, ℓ) to the gradient buffer `g`.
    /// ∂/∂z = −Σ_j r_j (z − m_j)/v_j;  ∂/∂m_j = r_j (z − m_j)/v_j;  ∂/∂ℓ_j = ½ r_j ((z − m_j)²/v_j − 1).
    @inlinable
    public func backward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>, z: UnsafePointer<T>, rows: Int,
        logDensity: UnsafePointer<T>, componentLogDensities logN: UnsafePointer<T>,
        coefficient: UnsafePointer<T>, dz: UnsafeMutablePointer<T>
    ) {
        let k = latent, K = components
        let m = p + means.offset, lv = p + logVariances.offset
        let dm = g + means.offset, dlv = g + logVariances.offset
        let logK = T.log(T(K))
        for r in 0..<rows {
            let zr = z + r * k, dzr = dz + r * k, c = coefficient[r]
            let normalizer = logDensity[r] + logK
            for j in 0..<K {
                let weight = c * T.exp(logN[r * K + j] - normalizer)
                for i in 0..<k {
                    let inverseVariance = T.exp(-lv[j * k + i])
                    let scaled = (zr[i] - m[j * k + i]) * inverseVariance
                    dzr[i] -= weight * scaled
                    dm[j * k + i] += weight * scaled
                    dlv[j * k + i] += weight * ((zr[i] - m[j * k + i]) * scaled - 1) / 2
                }
            }
        }
    }

    /// Means ~ N(0, 1/(K·k)) as in the CS236 GMVAE, log-variances 0 (unit variances).
    public func initialize<T: BLASScalar>(parameters p: UnsafeMutablePointer<T>, rng: inout RandomStream) {
        let scale = 1 / Double(components * latent).squareRoot()
        for i in means.range { p[i] = T(rng.normal() * scale) }
        for i in logVariances.range { p[i] = 0 }
    }
}

/// The prior families: N(0, I), or the learnable Gaussian mixture.
public enum PriorKind: String, Codable, Sendable, CaseIterable {
    case normal, mixture
}
