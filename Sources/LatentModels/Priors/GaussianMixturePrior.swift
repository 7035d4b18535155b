import LatentCore

/// p(z) = (1/K) Σ_j N(z; m_j, diag(exp(ℓ_j))) with learnable means m (K×k) and log-variances ℓ (K×k), uniform
/// fixed weights (MATH.md §5). Gradients reach (m, ℓ) through the responsibilities softmax_j(log N_j).
@usableFromInline package struct GaussianMixturePrior: Sendable {
    @usableFromInline package let components: Int
    @usableFromInline package let latent: Int
    @usableFromInline package let means: ParameterView
    @usableFromInline package let logVariances: ParameterView

    @usableFromInline package init(components: Int, latent: Int, store: ParameterStore<some BLASScalar>) {
        self.components = components
        self.latent = latent
        means = store.reserve("prior.means", count: components * latent)
        logVariances = store.reserve("prior.log_variances", count: components * latent)
    }

    /// log p(z) per row into `out`; `componentLogDensities` (rows × K) keeps log N_j(z) for the backward.
    ///
    /// The K quadratic forms of all rows are one GEMM: Σᵢ (zᵢ − m_ji)²/v_ji = [z², z] · [1/v_j, −2m_j/v_j]ᵀ + Σᵢ m_ji²/v_ji.
    /// That expanded form cancels when z ≈ m_j and m²/v is large (small variances, Float), so each form carries a
    /// rounding-error bound, and the components that can matter to log p (within `relevanceMargin` nats of the row's
    /// best) whose bound exceeds `recomputeTolerance` are recomputed in the centered form Σᵢ (zᵢ − m_ji)²/v_ji.
    @inlinable
    package func logDensity<T: BLASScalar>(
        parameters p: UnsafePointer<T>, z: UnsafePointer<T>, rows: Int, out: UnsafeMutablePointer<T>,
        componentLogDensities logN: UnsafeMutablePointer<T>, scratch: MixtureScratch<T>? = nil
    ) {
        let k = latent, K = components
        let work = scratch ?? MixtureScratch<T>(prior: self, rows: rows)
        let m = p + means.offset, lv = p + logVariances.offset
        let features = work.features.pointer, weights = work.weights.pointer, constants = work.constants.pointer
        let meanTerms = work.meanTerms.pointer, logVarianceSums = work.logVarianceSums.pointer
        let base = T(k) * T.halfLogTwoPi
        for j in 0..<K {
            var c: T = 0, l: T = 0
            for i in 0..<k {
                let inverse = T.exp(-lv[j * k + i]), mean = m[j * k + i]
                weights[j * 2 * k + i] = inverse
                weights[j * 2 * k + k + i] = -2 * mean * inverse
                c += mean * mean * inverse
                l += lv[j * k + i]
            }
            meanTerms[j] = c
            logVarianceSums[j] = l
            constants[j] = c + l
        }
        for r in 0..<rows {
            for i in 0..<k {
                let v = z[r * k + i]
                features[r * 2 * k + i] = v * v
                features[r * 2 * k + k + i] = v
            }
        }
        T.gemm(.none, .transpose, rows: rows, columns: K, inner: 2 * k, alpha: 1, a: features, lda: 2 * k, b: weights,
               ldb: 2 * k, beta: 0, c: logN, ldc: K)
        // |error of q̃| ≤ γ Σ|terms| ≤ γ(2Σz²w + 2Σm²w) ≤ γ(4q + 6Σm²w), and q ≤ q̃ + error (z² ≤ 2(z−m)² + 2m²).
        let gamma = T(2 * k + 8) * T.ulpOfOne
        func errorBound(_ q: T, _ j: Int) -> T { gamma * (4 * max(q, 0) + 6 * meanTerms[j]) / (1 - 4 * gamma) }
        let logK = T.log(T(K)), tolerance = T(Self.recomputeTolerance), margin = T(Self.relevanceMargin)
        for r in 0..<rows {
            let row = logN + r * K
            var best = -T.infinity
            for j in 0..<K {
                let q = row[j] + meanTerms[j]
                row[j] = -(row[j] + constants[j]) / 2 - base
                best = max(best, row[j] - errorBound(q, j) / 2)
            }
            for j in 0..<K {
                let q = -2 * (row[j] + base) - logVarianceSums[j], bound = errorBound(q, j)
                guard bound > tolerance, row[j] + bound / 2 >= best - margin else { continue }
                var centered: T = 0
                for i in 0..<k {
                    let difference = z[r * k + i] - m[j * k + i]
                    centered += difference * difference * weights[j * 2 * k + i]
                }
                row[j] = -(centered + logVarianceSums[j]) / 2 - base
            }
            out[r] = ElementWise.logSumExp(UnsafePointer(row), count: K) - logK
        }
    }

    /// Error bound (in units of the quadratic form) above which a relevant component is recomputed centered.
    @usableFromInline package static var recomputeTolerance: Double { 5e-4 }
    /// Components whose log-density lies more than this many nats below the row's best cannot change log p.
    @usableFromInline package static var relevanceMargin: Double { 40 }

    /// Adds `coefficient[r]` · ∂log p(z_r)/∂z_r to `dz` and · ∂log p/∂(m, ℓ) to the gradient buffer `g`, with
    /// c_rj = coefficient_r · softmax_j(log N_j(z_r)) and w = 1/v:
    /// ∂/∂z = −Σ_j c_j w_j ⊙ (z − m_j);  ∂/∂m_j = Σ_r c_rj w_j ⊙ (z_r − m_j);
    /// ∂/∂ℓ_j = ½ Σ_r c_rj (w_j ⊙ (z_r − m_j)² − 1), each sum over rows or components one GEMM.
    /// Expects `logDensity` to have run with the same `scratch` (its weights) just before; overwrites
    /// `componentLogDensities` with the c_rj.
    @inlinable
    package func backward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>, z: UnsafePointer<T>, rows: Int,
        logDensity: UnsafePointer<T>, componentLogDensities logN: UnsafeMutablePointer<T>,
        coefficient: UnsafePointer<T>, dz: UnsafeMutablePointer<T>, scratch: MixtureScratch<T>? = nil
    ) {
        let k = latent, K = components
        let work = scratch ?? MixtureScratch<T>(prior: self, rows: rows)
        if scratch == nil {
            // Without the forward's scratch, recompute its weights (the log-densities in logN are kept).
            let saved = UnsafeMutablePointer<T>.allocate(capacity: rows * K)
            defer { saved.deallocate() }
            saved.update(from: logN, count: rows * K)
            let unused = UnsafeMutablePointer<T>.allocate(capacity: rows)
            defer { unused.deallocate() }
            self.logDensity(parameters: p, z: z, rows: rows, out: unused, componentLogDensities: logN, scratch: work)
            logN.update(from: saved, count: rows * K)
        }
        let m = p + means.offset, lv = p + logVariances.offset
        let dm = g + means.offset, dlv = g + logVariances.offset
        let logK = T.log(T(K))
        let features = work.features.pointer, mixed = work.mixed.pointer
        let rowProducts = work.rowProducts.pointer, componentProducts = work.componentProducts.pointer
        let totals = work.constants.pointer
        // c_rj in place of log N_rj; features hold [z², z] from the forward.
        for r in 0..<rows {
            let normalizer = logDensity[r] + logK, c = coefficient[r], row = logN + r * K
            for j in 0..<K { row[j] = c * T.exp(row[j] - normalizer) }
        }
        // dz: rowProducts = C · [w, m⊙w] (rows × 2k);  ∂/∂z_i = −(z_i Σ c w_i − Σ c m_i w_i).
        for j in 0..<K {
            for i in 0..<k {
                let w = T.exp(-lv[j * k + i])
                mixed[j * 2 * k + i] = w
                mixed[j * 2 * k + k + i] = m[j * k + i] * w
            }
        }
        T.gemm(.none, .none, rows: rows, columns: 2 * k, inner: K, alpha: 1, a: logN, lda: K, b: mixed, ldb: 2 * k,
               beta: 0, c: rowProducts, ldc: 2 * k)
        for r in 0..<rows {
            for i in 0..<k {
                dz[r * k + i] -= z[r * k + i] * rowProducts[r * 2 * k + i] - rowProducts[r * 2 * k + k + i]
            }
        }
        // componentProducts = Cᵀ · [z², z] (K × 2k), totals_j = Σ_r c_rj.
        T.gemm(.transpose, .none, rows: K, columns: 2 * k, inner: rows, alpha: 1, a: logN, lda: K, b: features,
               ldb: 2 * k, beta: 0, c: componentProducts, ldc: 2 * k)
        ElementWise.columnSums(logN, rows: rows, columns: K, into: totals, accumulate: false)
        for j in 0..<K {
            for i in 0..<k {
                let w = T.exp(-lv[j * k + i]), mean = m[j * k + i]
                let sumZ2 = componentProducts[j * 2 * k + i], sumZ = componentProducts[j * 2 * k + k + i]
                dm[j * k + i] += w * (sumZ - mean * totals[j])
                dlv[j * k + i] += (w * (sumZ2 - 2 * mean * sumZ + mean * mean * totals[j]) - totals[j]) / 2
            }
        }
    }

    /// Means ~ N(0, 1/(K·k)) as in the CS236 GMVAE, log-variances 0 (unit variances).
    @usableFromInline package func initialize<T: BLASScalar>(parameters p: UnsafeMutablePointer<T>, rng: inout RandomStream) {
        let scale = 1 / Double(components * latent).squareRoot()
        for i in means.range { p[i] = T(rng.normal() * scale) }
        for i in logVariances.range { p[i] = 0 }
    }
}

/// The prior families: N(0, I), or the learnable Gaussian mixture.
public enum PriorKind: String, Codable, Sendable, CaseIterable {
    /// The standard normal N(0, I), with the analytic KL when the posterior is Gaussian and m = 1 (MATH.md §3).
    case normal
    /// The uniform mixture of K diagonal Gaussians with learned means and log-variances (MATH.md §5).
    case mixture
}

/// Buffers of the mixture prior's GEMM formulation for up to `rows` latent rows, allocated once per workspace.
@usableFromInline package final class MixtureScratch<T: BLASScalar>: @unchecked Sendable {
    /// [z², z] per row (rows × 2k).
    @usableFromInline package let features: Buffer<T>
    /// [1/v_j, −2 m_j/v_j] per component (K × 2k), and [1/v_j, m_j/v_j] for the backward.
    @usableFromInline package let weights: Buffer<T>
    @usableFromInline package let mixed: Buffer<T>
    /// Σᵢ (m²/v + ℓ) per component in the forward; Σ_r c_rj in the backward (K).
    @usableFromInline package let constants: Buffer<T>
    /// Σᵢ m²/v and Σᵢ ℓ per component (K), for the forward's error bounds and centered recomputation.
    @usableFromInline package let meanTerms: Buffer<T>
    @usableFromInline package let logVarianceSums: Buffer<T>
    @usableFromInline package let rowProducts: Buffer<T>
    @usableFromInline package let componentProducts: Buffer<T>

    @usableFromInline package init(prior: GaussianMixturePrior, rows: Int) {
        let k = prior.latent, K = prior.components
        features = Buffer(count: rows * 2 * k)
        weights = Buffer(count: K * 2 * k)
        mixed = Buffer(count: K * 2 * k)
        constants = Buffer(count: K)
        meanTerms = Buffer(count: K)
        logVarianceSums = Buffer(count: K)
        rowProducts = Buffer(count: rows * 2 * k)
        componentProducts = Buffer(count: K * 2 * k)
    }
}
