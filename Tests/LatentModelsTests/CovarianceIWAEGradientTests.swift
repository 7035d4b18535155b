import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The covariance family's IWAE gradient against central differences in Double, as for the other families
/// (`checkIWAEGradient`: every parameter group, m = 1, 3, 7), with both priors.
extension ImportanceWeightedTests {
    func testIWAEGradientNormalPriorCovariance() throws {
        try checkIWAEGradient(posterior: .covariance, prior: .normal, seed: 780)
    }

    func testIWAEGradientMixturePriorCovariance() throws {
        try checkIWAEGradient(posterior: .covariance, prior: .mixture, seed: 800)
    }
}
