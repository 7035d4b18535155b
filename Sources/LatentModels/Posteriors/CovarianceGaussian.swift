#if canImport(Glibc)
import Glibc
#endif
import LatentCore

/// q = N(μ, Σ) with Σ = A Aᵀ + δI: the encoder emits μ (k) and A (k×k, row-major); L = chol(Σ) by LAPACK's potrf,
/// and the backward goes through the factorization (MATH.md §2, "covariance").
///
/// A factorization that fails (possible in Float for a nearly singular AAᵀ) is retried with δ raised tenfold (the
/// first raise from at least k·u·s, u the unit roundoff, s the largest diagonal entry of AAᵀ), at most
/// `maximumRaises` times and never above the ceiling max(jitter, `ceilingRelativeToScale` · s), so a retry stays a
/// perturbation at the level of rounding, not a different posterior. A non-finite A fails at once as
/// `LinearAlgebraError.nonFinite`. Each row that needed a raise and then factorized counts once.
@usableFromInline package struct CovarianceGaussian<Scalar: BLASScalar>: Posterior {
    @usableFromInline package let latent: Int
    @usableFromInline package let jitter: Scalar
    @usableFromInline package let retries: FactorizationCounter

    @usableFromInline package init(latent: Int, jitter: Scalar, retries: FactorizationCounter = FactorizationCounter()) {
        self.latent = latent
        self.jitter = jitter
        self.retries = retries
    }

    @usableFromInline package var parameterCount: Int { latent + latent * latent }
    /// L (k²), then the δ actually used (1), then 3k² of working space for the row's backward (so the step
    /// allocates nothing).
    @usableFromInline package var scratchPerRow: Int { 4 * latent * latent + 1 }

    /// Tenfold raises of δ one factorization may try.
    @usableFromInline package static var maximumRaises: Int { 6 }
    /// The ceiling of a raised δ relative to s, the largest diagonal entry of AAᵀ (δ never exceeds max(jitter, c·s)).
    @usableFromInline package static var ceilingRelativeToScale: Double { 1e-3 }

    @inlinable
    @usableFromInline package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>) throws {
        try prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant,
                    retries: retries)
    }

    /// `prepare`, counting the rows that needed a raised δ into `counter` (nil: not counted).
    @inlinable
    @usableFromInline package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>, retries counter: FactorizationCounter?) throws {
        let k = latent, width = parameterCount
        for r in 0..<rows {
            let a = parameters + r * width + k
            let l = scratch + r * scratchPerRow
            var delta = jitter, raises = 0, floor: Scalar = 0, ceiling = jitter
            while true {
                // Σ = A Aᵀ + δI, then L = chol(Σ) in place.
                Scalar.gemm(.none, .transpose, rows: k, columns: k, inner: k, alpha: 1, a: a, lda: k, b: a, ldb: k,
                            beta: 0, c: l, ldc: k)
                if raises == 0 {
                    // A NaN or infinity in A reaches the diagonal of AAᵀ; s sets the raises' floor and ceiling.
                    var s: Scalar = 0
                    for i in 0..<k {
                        let v = l[i * k + i]
                        guard v.isFinite else { throw LinearAlgebraError.nonFinite(order: k) }
                        s = max(s, v)
                    }
                    floor = Scalar(k) * Scalar.ulpOfOne * s
                    ceiling = max(jitter, Scalar(Self.ceilingRelativeToScale) * s)
                }
                for i in 0..<k { l[i * k + i] += delta }
                do {
                    try choleskyLower(l, order: k)
                    break
                } catch let error as LinearAlgebraError {
                    guard case .notPositiveDefinite = error else { throw error }
                    let next = 10 * max(delta, floor)
                    guard raises < Self.maximumRaises, next > delta, next <= ceiling else { throw error }
                    raises += 1
                    delta = next
                }
            }
            if raises > 0 { counter?.record() }
            l[k * k] = delta
            var logDet: Scalar = 0
            for i in 0..<k { logDet += Scalar.log(l[i * k + i]) }
            logDeterminant[r] = logDet
        }
    }

    @inlinable
    @usableFromInline package func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                       samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.sample(means: parameters, meanStride: parameterCount, factors: scratch,
                               factorStride: scratchPerRow, noise: noise, latent: latent, samples: samples, rows: rows,
                               z: z)
    }

    /// KL = ½(tr Σ + ‖μ‖² − k) − Σᵢ log L_ii, with tr Σ = ‖A‖_F² + kδ.
    @inlinable
    @usableFromInline package func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                                   logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let mu = parameters + r * parameterCount, a = mu + k
            let delta = scratch[r * scratchPerRow + k * k]
            var total: Scalar = Scalar(k) * delta - Scalar(k)
            for i in 0..<k { total += mu[i] * mu[i] }
            for i in 0..<(k * k) { total += a[i] * a[i] }
            kl[r] = total / 2 - logDeterminant[r]
        }
    }

    @inlinable
    @usableFromInline package func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                           logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                           out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensity(means: parameters, meanStride: parameterCount, factors: scratch,
                                   factorStride: scratchPerRow, logDeterminant: logDeterminant, z: z, latent: latent,
                                   rows: rows, out: out)
    }

    /// L̄ from sampling, log det and KL; Σ̄ = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ (two triangular solves) + (w/2) I; Ā = (Σ̄ + Σ̄ᵀ) A.
    @inlinable
    @usableFromInline package func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                         samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                         klWeight w: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent, width = parameterCount
        for r in 0..<rows {
            let work = UnsafeMutablePointer(mutating: scratch + r * scratchPerRow + k * k + 1)
            let lBar = work, p = work + k * k, sigmaBar = work + 2 * k * k
            let mu = parameters + r * width, a = mu + k
            let l = scratch + r * scratchPerRow
            let dmu = dParameters + r * width, da = dmu + k
            for i in 0..<k {
                var gm = w * mu[i]
                for s in 0..<samples { gm += dz[(s * rows + r) * k + i] }
                dmu[i] = gm
                for j in 0..<k {
                    guard j <= i else { lBar[i * k + j] = 0; continue }
                    var g: Scalar = 0
                    for s in 0..<samples {
                        let base = (s * rows + r) * k
                        g += dz[base + i] * noise[base + j]
                    }
                    if i == j { g += (dLogDeterminant[r] - w) / l[i * k + i] }
                    lBar[i * k + j] = g
                }
            }
            // P = Lᵀ L̄, then Φ: keep the lower triangle, halve the diagonal.
            Scalar.gemm(.transpose, .none, rows: k, columns: k, inner: k, alpha: 1, a: l, lda: k, b: lBar, ldb: k,
                        beta: 0, c: p, ldc: k)
            for i in 0..<k {
                p[i * k + i] /= 2
                for j in (i + 1)..<max(i + 1, k) { p[i * k + j] = 0 }
            }
            // Σ̄ = L⁻ᵀ Φ(P) L⁻¹: solve Lᵀ Y = Φ(P), then Σ̄ L = Y.
            Scalar.trsm(side: .left, triangle: .lower, transpose: .transpose, unitDiagonal: false, rows: k, columns: k,
                        alpha: 1, triangular: l, ldt: k, b: p, ldb: k)
            Scalar.trsm(side: .right, triangle: .lower, transpose: .none, unitDiagonal: false, rows: k, columns: k,
                        alpha: 1, triangular: l, ldt: k, b: p, ldb: k)
            for i in 0..<k {
                for j in 0..<k { sigmaBar[i * k + j] = p[i * k + j] + p[j * k + i] }
                sigmaBar[i * k + i] += w
            }
            // Ā = (Σ̄ + Σ̄ᵀ) A, the KL's ½ w tr Σ contributing w I to the symmetrized Σ̄.
            Scalar.gemm(.none, .none, rows: k, columns: k, inner: k, alpha: 1, a: sigmaBar, lda: k, b: a, ldb: k,
                        beta: 0, c: da, ldc: k)
        }
    }
}

extension CovarianceGaussian {
    /// −L⁻ᵀε with L = chol(AAᵀ + δI) as `prepare` left it (MATH.md §10).
    @inlinable
    @usableFromInline package func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int,
                                   rows: Int, out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensityGradient(factors: scratch, factorStride: scratchPerRow, noise: noise, latent: latent,
                                           samples: samples, rows: rows, out: out)
    }
}

/// Counts Cholesky factorizations that needed a larger jitter, once each; shared by the workers of one run (a model
/// keeps one for training and one for evaluation).
@usableFromInline package final class FactorizationCounter: @unchecked Sendable {
    private var count = 0
    private let lock = NSLockLike()
    @usableFromInline package init() {}
    @usableFromInline package func record() { lock.withLock { count += 1 } }
    /// Continues the count of a resumed run.
    @usableFromInline package func restore(_ value: Int) { lock.withLock { count = value } }
    @usableFromInline package var value: Int { lock.withLock { count } }
}

/// A tiny mutex over pthread_mutex, so LatentModels need not import Foundation for it.
final class NSLockLike: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
