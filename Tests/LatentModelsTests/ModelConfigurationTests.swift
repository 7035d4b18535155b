import LatentModels
import LatentEvaluation
import LatentTraining
import Foundation
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

    /// A header written before `estimator` existed decodes as the standard estimator; a new one round-trips it.
    func testEstimatorDefaultsToStandardWhenAbsent() throws {
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ModelConfiguration())) as! [String: Any]
        XCTAssertEqual(json["estimator"] as? String, "standard")
        json["estimator"] = nil
        let old = try JSONDecoder().decode(ModelConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(old.estimator, .standard)
        let dreg = ModelConfiguration(model: .iwae, samples: 5, estimator: .dreg)
        XCTAssertEqual(try JSONDecoder().decode(ModelConfiguration.self, from: JSONEncoder().encode(dreg)), dreg)
    }

    /// DReG is the importance-weighted bound's estimator; elsewhere the message names the flag and the alternative.
    func testDReGNeedsTheImportanceWeightedBound() {
        XCTAssertNoThrow(try ModelConfiguration(model: .iwae, samples: 3, estimator: .dreg).validate())
        XCTAssertNoThrow(try ModelConfiguration(model: .vae, estimator: .stl).validate())
        XCTAssertNoThrow(try ModelConfiguration(model: .gmvae, estimator: .stl).validate())
        for model in [ModelKind.vae, .gmvae] {
            XCTAssertThrowsError(try ModelConfiguration(model: model, estimator: .dreg).validate()) { error in
                XCTAssertTrue("\(error)".hasPrefix("--estimator dreg is for the importance-weighted bound"), "\(error)")
                XCTAssertTrue("\(error)".contains("--estimator stl"), "\(error)")
            }
        }
    }
}
