import LatentModels
import LatentEvaluation
import LatentTraining
import XCTest

/// `ModelConfiguration.validate` bounds what one training step allocates.
final class ModelConfigurationTests: XCTestCase {
    func testImportanceSamplesAreBoundedWithTheFlagAndTheLimitInTheMessage() {
        let limit = ModelConfiguration.samplesLimit
        XCTAssertNoThrow(try ModelConfiguration(model: .iwae, samples: limit).validate())
        for samples in [limit + 1, 100_000, Int.max] {
            XCTAssertThrowsError(try ModelConfiguration(model: .iwae, samples: samples).validate()) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("--samples must be at most \(limit) (got \(samples))"), message)
                XCTAssertTrue(message.contains("eval --iw"), "points to the streamed bound: \(message)")
                XCTAssertFalse(message.contains("\n"), message)
            }
            XCTAssertFalse(ModelConfiguration(model: .iwae, samples: samples).hasSaneSizes, "checkpoint headers too")
        }
    }
}
