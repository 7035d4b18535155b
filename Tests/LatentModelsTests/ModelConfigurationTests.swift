import Foundation
import LatentModels
import LatentEvaluation
import LatentTraining
import XCTest

/// `ModelConfiguration.validate` bounds what one training step allocates, and says in the library's terms which
/// setting is out of range.
final class ModelConfigurationTests: XCTestCase {
    func testImportanceSamplesAreBoundedWithTheSettingAndTheLimitInTheMessage() {
        let limit = ModelConfiguration.samplesLimit
        XCTAssertNoThrow(try ModelConfiguration(model: .iwae, samples: limit).validate())
        for samples in [limit + 1, 100_000, Int.max] {
            XCTAssertThrowsError(try ModelConfiguration(model: .iwae, samples: samples).validate()) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("samples must be between 1 and \(limit)"), message)
                XCTAssertTrue(message.hasSuffix("(got \(samples))"), message)
                XCTAssertTrue(message.contains("streamed IWAE evaluation"), "points to the streamed bound: \(message)")
                XCTAssertFalse(message.contains("--"), "library errors name settings, not flags: \(message)")
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
                XCTAssertTrue("\(error)".hasPrefix("estimator must not be dreg unless model is iwae"), "\(error)")
                XCTAssertTrue("\(error)".contains("use stl"), "\(error)")
            }
        }
    }

    /// A value below the range is reported as too small, not as too large.
    func testTooSmallIsReportedAsTooSmall() {
        XCTAssertThrowsError(try ModelConfiguration(latent: 0).validate()) { error in
            XCTAssertEqual(error as? ConfigurationError,
                           .invalid(setting: "latent", requirement: "must be between 1 and 4096", value: "0"))
        }
        XCTAssertThrowsError(try ModelConfiguration(hidden: []).validate()) { error in
            XCTAssertTrue("\(error)".hasPrefix("hidden must list 1 to 64 layer widths"), "\(error)")
        }
    }

    /// Every error's `localizedDescription` is its message, not Foundation's generic text.
    func testErrorsDescribeThemselvesThroughLocalizedDescription() {
        let error: Error = ConfigurationError.invalid(setting: "latent", requirement: "must be at least 1", value: "0")
        XCTAssertEqual(error.localizedDescription, "latent must be at least 1 (got 0)")
        let missing: Error = CheckpointError.missing(path: "/nowhere/checkpoint")
        XCTAssertEqual(missing.localizedDescription, "\(missing)")
    }
}
