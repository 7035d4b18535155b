import Foundation
import LatentModels

/// Σ of one example from its encoder outputs, by hand (MATH.md §2 table).
func covarianceByHand(_ kind: PosteriorKind, row: [Double], latent k: Int, jitter: Double) -> [Double] {
    var sigma = [Double](repeating: 0, count: k * k)
    switch kind {
    case .diagonal:
        for i in 0..<k { sigma[i * k + i] = Foundation.exp(row[k + i]) }
    case .full:
        var l = [Double](repeating: 0, count: k * k)
        var next = 2 * k
        for i in 0..<k {
            l[i * k + i] = Foundation.exp(row[k + i])
            for j in 0..<i {
                l[i * k + j] = row[next]
                next += 1
            }
        }
        for i in 0..<k {
            for j in 0..<k { for t in 0..<k { sigma[i * k + j] += l[i * k + t] * l[j * k + t] } }
        }
    case .covariance:
        for i in 0..<k {
            for j in 0..<k {
                var s = i == j ? jitter : 0
                for t in 0..<k { s += row[k + i * k + t] * row[k + j * k + t] }
                sigma[i * k + j] = s
            }
        }
    }
    return sigma
}
