import LatentCore

/// The posterior families of MATH.md §2.
public enum PosteriorKind: String, Codable, Sendable, CaseIterable {
    /// N(μ, diag(σ²)): the encoder emits μ and log σ² (2k outputs).
    case diagonal
    /// N(μ, LLᵀ) with the Cholesky factor L emitted directly: its strictly lower part, and its diagonal as exp(d).
    case full
    /// N(μ, Σ) with Σ = AAᵀ + δI for an emitted k×k matrix A, factored by LAPACK's `potrf`.
    case covariance
}

/// A Gaussian posterior family q(z|x) = N(μ, L Lᵀ) reparametrized as z = μ + Lε, evaluated for a batch at once.
///
/// Objectives, evaluation and the benchmark use only this interface, so they take every family unchanged.
/// Layouts: encoder output `parameters` rows × parameterCount; `noise`, `z`, `dz` samples × rows × latent.
@usableFromInline package protocol Posterior<Scalar>: Sendable {
    associatedtype Scalar: BLASScalar
    var latent: Int { get }
    /// Encoder outputs per example.
    var parameterCount: Int { get }
    /// Per-example scratch scalars that `prepare` fills (e.g. σ or L) and later calls read.
    var scratchPerRow: Int { get }

    /// Computes per-example state from the encoder output; `logDeterminant[r]` = Σᵢ log L_ii.
    func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                 logDeterminant: UnsafeMutablePointer<Scalar>) throws
    /// z = μ + Lε for every sample and row.
    func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>)
    /// Analytic KL(q ‖ N(0, I)) per row.
    func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                            logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>)
    /// log q(z|x) of arbitrary (foreign) z, one row of z per example: solves L u = z − μ.
    func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                    logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                    out: UnsafeMutablePointer<Scalar>)
    /// dParameters (rows × parameterCount, overwritten) from dz, the coefficient of Σ log L_ii per row,
    /// and the weight of the analytic KL of each row.
    func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                  samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                  klWeight: Scalar, dParameters: UnsafeMutablePointer<Scalar>)
    /// ∂log q(z|x)/∂z = −L⁻ᵀε at each own sample z = μ + Lε with (μ, L) held fixed (MATH.md §10), into `out`
    /// (samples × rows × latent): the pathwise part of log q that STL and DReG keep.
    func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int, rows: Int,
                            out: UnsafeMutablePointer<Scalar>)
}

extension Posterior {
    /// log q(z|x) for a z drawn by this posterior's own reparametrization: −½‖ε‖² − Σ log L_ii − (k/2) log 2π.
    @inlinable
    package func logDensityOfOwnSample(noise: UnsafePointer<Scalar>, logDeterminant: Scalar) -> Scalar {
        var s: Scalar = 0
        for i in 0..<latent { s += noise[i] * noise[i] }
        return -s / 2 - logDeterminant - Scalar(latent) * Scalar.halfLogTwoPi
    }
}

extension BLASScalar {
    /// ½ log 2π.
    @inlinable package static var halfLogTwoPi: Self { Self(0.918_938_533_204_672_741_780_329_736_4) }
}
