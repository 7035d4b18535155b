import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels

/// The covariance family starts near q = N(μ, I) at every k (VariationalAutoencoder.initialize, MATH.md §2): Σ built
/// by hand from the initialized encoder's outputs on random binary images.
final class CovarianceInitializationTests: XCTestCase {
    /// The mean over examples of Σ's mean diagonal entry and of its largest |Σ_ij| off the diagonal.
    func initialCovariance(latent k: Int, seed: UInt64) -> (diagonal: Double, offDiagonal: Double) {
        let configuration = ModelConfiguration(posterior: .covariance, latent: k)
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: seed)
        let count = 16, d = configuration.inputs, width = configuration.posteriorParameterCount
        let x = uniform(count * d, seed: seed + 1, 0, 1).map { $0 < 0.3 ? 1.0 : 0 }
        let workspace = MLPWorkspace<Double>(model.encoder, capacity: count)
        x.withUnsafeBufferPointer {
            model.encoder.forward(parameters: model.store.parameters.pointer, input: $0.baseAddress!, rows: count,
                                  workspace: workspace)
        }
        var diagonal = 0.0, offDiagonal = 0.0
        for r in 0..<count {
            let row = (0..<width).map { workspace.output[r * width + $0] }
            let sigma = covarianceByHand(.covariance, row: row, latent: k, jitter: configuration.jitter)
            diagonal += (0..<k).reduce(0) { $0 + sigma[$1 * k + $1] } / Double(k)
            var largest = 0.0
            for i in 0..<k { for j in 0..<i { largest = max(largest, abs(sigma[i * k + j])) } }
            offDiagonal += largest
        }
        return (diagonal / Double(count), offDiagonal / Double(count))
    }

    func testInitialCovarianceIsNearIdentityAtEveryLatentDimension() {
        for (i, k) in [2, 10, 32, 64].enumerated() {
            let (diagonal, offDiagonal) = initialCovariance(latent: k, seed: UInt64(1500 + 10 * i))
            XCTAssertEqual(diagonal, 1, accuracy: 0.25, "k=\(k): mean diagonal of Σ")
            XCTAssertLessThan(offDiagonal, 0.2, "k=\(k): largest |Σ_ij| off the diagonal")
        }
    }
}
