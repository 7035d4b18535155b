import Foundation
import LatentModels
import LatentEvaluation
import LatentTraining

/// Σ, Σ⁻¹ and Gaussian log-densities computed by hand, independently of the engine's BLAS/LAPACK paths, for the
/// dense-posterior and importance-weighted tests.

/// Σ of one example from its encoder outputs, by hand (MATH.md §2 table).
func covarianceByHand(_ kind: PosteriorKind, row: [Double], latent k: Int, jitter: Double) -> [Double] {
    var sigma = [Double](repeating: 0, count: k * k)
    switch kind {
    case .diagonal:
        for i in 0..<k { sigma[i * k + i] = Foundation.exp(row[k + i]) }
    case .full, .covariance:
        // L (full) or A (covariance): lower triangular, e^d on the diagonal, the strictly lower entries row-major.
        let l = lowerFactorByHand(row: row, latent: k)
        for i in 0..<k {
            for j in 0..<k {
                sigma[i * k + j] = kind == .covariance && i == j ? jitter : 0
                for t in 0..<k { sigma[i * k + j] += l[i * k + t] * l[j * k + t] }
            }
        }
    }
    return sigma
}

/// The lower-triangular factor of the `full` and `covariance` rows (μ, d, strictly lower entries), row-major k×k.
func lowerFactorByHand(row: [Double], latent k: Int) -> [Double] {
    var l = [Double](repeating: 0, count: k * k)
    var next = 2 * k
    for i in 0..<k {
        l[i * k + i] = Foundation.exp(row[k + i])
        for j in 0..<i {
            l[i * k + j] = row[next]
            next += 1
        }
    }
    return l
}

// MARK: - Independent linear algebra (no BLAS/LAPACK)

/// Solves Σ X = B (order × order Σ, B with `order` rows and any number of columns, row-major) by Gaussian
/// elimination with partial pivoting; also returns log |det Σ| (asserting det > 0).
func bruteForceSolve(_ matrix: [Double], _ rhs: [Double], order n: Int) -> (solution: [Double], logDet: Double) {
    let columns = rhs.count / n
    var a = matrix, b = rhs
    var logDet = 0.0, sign = 1.0
    for col in 0..<n {
        var pivot = col
        for row in (col + 1)..<max(col + 1, n) where abs(a[row * n + col]) > abs(a[pivot * n + col]) { pivot = row }
        if pivot != col {
            sign = -sign
            for j in 0..<n { a.swapAt(col * n + j, pivot * n + j) }
            for j in 0..<columns { b.swapAt(col * columns + j, pivot * columns + j) }
        }
        let p = a[col * n + col]
        if p < 0 { sign = -sign }
        logDet += Foundation.log(abs(p))
        for row in (col + 1)..<max(col + 1, n) {
            let factor = a[row * n + col] / p
            for j in col..<n { a[row * n + j] -= factor * a[col * n + j] }
            for j in 0..<columns { b[row * columns + j] -= factor * b[col * columns + j] }
        }
    }
    precondition(sign > 0, "bruteForceSolve: determinant is not positive")
    var x = [Double](repeating: 0, count: n * columns)
    for j in 0..<columns {
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = b[row * columns + j]
            for t in (row + 1)..<max(row + 1, n) { s -= a[row * n + t] * x[t * columns + j] }
            x[row * columns + j] = s / a[row * n + row]
        }
    }
    return (x, logDet)
}

/// log N(z; μ, Σ) = −½(z−μ)ᵀΣ⁻¹(z−μ) − ½ log det Σ − (k/2) log 2π.
func bruteForceLogNormal(_ z: [Double], mean: [Double], covariance: [Double]) -> Double {
    let k = z.count
    let diff = (0..<k).map { z[$0] - mean[$0] }
    let (x, logDet) = bruteForceSolve(covariance, diff, order: k)
    var quadratic = 0.0
    for i in 0..<k { quadratic += diff[i] * x[i] }
    return -0.5 * quadratic - 0.5 * logDet - Double(k) / 2 * Foundation.log(2 * Double.pi)
}
