import Foundation
import LatentCore
import LatentData
import XCTest
@testable import LatentModels
@testable import LatentTraining

/// Checkpoint headers with a valid CRC-32 but hostile values: every field is range-checked as `latent train` checks
/// its flags, and the step must fit the epochs of the data set it resumes on.
final class CheckpointHeaderTests: XCTestCase {
    let configuration = ModelConfiguration(inputs: 4, hidden: [3], latent: 2, activation: .tanh)
    let state = TrainingState(seed: 7, step: 60, epoch: 2, batch: 10, learningRate: 1e-3, threads: 2, data: "/d",
                              optimizerStep: 60, skippedBatches: 0, factorizationRetries: 0, parallelism: "auto",
                              ranks: 1, trainSet: ImageSetFingerprint(count: 300, crc32: 0x1234_5678),
                              testSet: ImageSetFingerprint(count: 40, crc32: 0x9ABC_DEF0))

    func checkpoint(_ configuration: ModelConfiguration? = nil, state: TrainingState? = nil) -> Checkpoint {
        let c = configuration ?? self.configuration
        let n = VariationalAutoencoder<Float>.parameterCount(c)
        let values = (0..<n).map { Float($0) / Float(n) }
        return Checkpoint(configuration: c, state: state ?? self.state, parameters: values, firstMoment: values,
                          secondMoment: values)
    }

    /// `bytes` with its JSON header changed by `edit` and the framing rewritten: header length, CRC-32.
    func edited(_ bytes: [UInt8], version: UInt32? = nil, _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        let length = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[16..<(16 + length)])) as? [String: Any])
        edit(&header)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out = Array(bytes[0..<8])
        for word in [version ?? Checkpoint.version, UInt32(json.count)] {
            for i in 0..<4 { out.append(UInt8((word >> (8 * UInt32(i))) & 0xFF)) }
        }
        out += json + bytes[(16 + length)..<(bytes.count - 4)]
        let crc = Checkpoint.crc32(out)
        for i in 0..<4 { out.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
        return out
    }

    /// The error decoding `bytes` throws: an `invalidField` naming `field` and the file, in one line.
    func expectInvalid(_ bytes: [UInt8], field: String, _ what: String, file: StaticString = #filePath,
                       line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.decode(bytes, path: "run/checkpoint"), what, file: file, line: line) { e in
            guard case let .invalidField(path, found, _)? = e as? CheckpointError else {
                return XCTFail("\(what): \(e)", file: file, line: line)
            }
            XCTAssertEqual(path, "run/checkpoint", what, file: file, line: line)
            XCTAssertEqual(found, field, "\(what): \(e)", file: file, line: line)
            XCTAssertTrue("\(e)".hasPrefix("run/checkpoint has an invalid header: \(field) "), "\(e)", file: file,
                          line: line)
            XCTAssertFalse("\(e)".contains("\n"), "\(e)", file: file, line: line)
        }
    }

    func testFormatThreeRecordsTheDataAndFormatTwoStillReads() throws {
        let bytes = try checkpoint().encoded()
        XCTAssertEqual(Array(bytes[8..<12]), [3, 0, 0, 0])
        XCTAssertEqual(try Checkpoint.decode(bytes, path: "ck").state, state)
        // A format-2 checkpoint has no fingerprints: it still loads (resuming then says it cannot verify the data).
        let formatTwo = try edited(bytes, version: 2) { header in
            var s = header["state"] as! [String: Any]
            s.removeValue(forKey: "trainSet")
            s.removeValue(forKey: "testSet")
            header["state"] = s
        }
        let old = try Checkpoint.decode(formatTwo, path: "ck")
        XCTAssertNil(old.state.trainSet)
        XCTAssertNil(old.state.testSet)
        // Saved again, it keeps what it has.
        XCTAssertEqual(try Checkpoint.decode(try old.encoded(), path: "ck").state, old.state)
    }

    func testHostileStateFieldsAreRefused() throws {
        let bytes = try checkpoint().encoded()
        let cases: [(String, Any, String)] = [
            ("step", -5, "state.step"), ("step", Int.max, "state.step"), ("epoch", -1, "state.epoch"),
            ("epoch", 61, "state.epoch"), ("batch", 0, "state.batch"), ("batch", -100, "state.batch"),
            ("learningRate", -1e-3, "state.learningRate"), ("learningRate", 0, "state.learningRate"),
            ("threads", 0, "state.threads"), ("optimizerStep", -1, "state.optimizerStep"),
            ("optimizerStep", 61, "state.optimizerStep"), ("skippedBatches", 61, "state.skippedBatches"),
            ("factorizationRetries", -1, "state.factorizationRetries"), ("parallelism", "fast", "state.parallelism"),
            ("trainLimit", 0, "state.trainLimit"), ("testLimit", -1, "state.testLimit"), ("ranks", 0, "state.ranks"),
            ("trainSet", ["count": 0, "crc32": 1], "state.trainSet.count"),
            ("testSet", ["count": -40, "crc32": 1], "state.testSet.count"),
            ("testSet", ["count": 1 << 40, "crc32": 1], "state.testSet.count"),
            ("epochSums", ["rec": 1, "kl": 1, "loss": 2, "examples": -1], "state.epochSums.examples"),
        ]
        for (key, value, field) in cases {
            expectInvalid(try edited(bytes) { header in
                var s = header["state"] as! [String: Any]
                s[key] = value
                header["state"] = s
            }, field: field, "\(key) = \(value)")
        }
        // A training set smaller than the run's own limit says: more images than it has.
        expectInvalid(try edited(bytes) { header in
            var s = header["state"] as! [String: Any]
            s["trainLimit"] = 299
            header["state"] = s
        }, field: "state.trainSet.count", "trainSet.count above trainLimit")
    }

    /// A header that does not decode names the key: missing, or of the wrong type.
    func testUndecodableHeadersNameTheKey() throws {
        let bytes = try checkpoint().encoded()
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("the key state.step is missing", { h in
                var s = h["state"] as! [String: Any]
                s.removeValue(forKey: "step")
                h["state"] = s
            }),
            ("configuration.hidden[1] is not an integer", { h in
                var c = h["configuration"] as! [String: Any]
                c["hidden"] = [3, "x"]
                h["configuration"] = c
            }),
        ]
        for (expected, edit) in cases {
            XCTAssertThrowsError(try Checkpoint.decode(try edited(bytes, edit), path: "ck")) { error in
                guard case let .badHeader(_, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
                XCTAssertEqual(reason, expected)
            }
        }
    }

    /// Configurations `latent train` refuses are refused in a header too, even with parameters of the right size.
    func testConfigurationsTheCommandLineRefusesAreRefused() throws {
        let cases: [(ModelConfiguration, String)] = [
            (ModelConfiguration(inputs: 4, hidden: [], latent: 2), "configuration.hidden"),
            (ModelConfiguration(model: .vae, inputs: 4, hidden: [3], latent: 2, prior: .mixture, components: 2),
             "configuration.prior"),
            (ModelConfiguration(model: .gmvae, inputs: 4, hidden: [3], latent: 2, prior: .normal), "configuration.prior"),
            (ModelConfiguration(posterior: .covariance, inputs: 4, hidden: [3], latent: 2, jitter: -1e-3),
             "configuration.jitter"),
            (ModelConfiguration(model: .vae, inputs: 4, hidden: [3], latent: 2, samples: 2), "configuration.samples"),
            (ModelConfiguration(model: .vae, inputs: 4, hidden: [3], latent: 2, estimator: .dreg),
             "configuration.estimator"),
        ]
        for (configuration, field) in cases {
            expectInvalid(try checkpoint(configuration).encoded(), field: field, "\(configuration)")
        }
    }

    func testStepMustFitTheEpochsOfTheDataSet() throws {
        // 300 images at batch 10: 30 steps per epoch.
        func position(step: Int, epoch: Int, midEpoch: Bool, images: Int = 300, total: Int = 90) -> Error? {
            var s = state
            (s.step, s.epoch) = (step, epoch)
            s.epochSums = midEpoch ? TermSums(rec: 1, kl: 1, examples: 10 * (step - 30 * epoch)) : nil
            do {
                try s.validatePosition(trainingImages: images, totalSteps: total, path: "run/checkpoint")
                return nil
            } catch {
                return error
            }
        }
        for (step, epoch, mid) in [(60, 2, false), (0, 0, false), (0, 0, true), (45, 1, true), (30, 1, true),
                                   (59, 1, true), (90, 3, false)] {
            XCTAssertNil(position(step: step, epoch: epoch, midEpoch: mid), "step \(step), epoch \(epoch), \(mid)")
        }
        // A run that ended at its --iterations inside its last epoch counts that epoch as done; it cannot go on.
        for (step, epoch) in [(45, 2), (31, 2), (7, 1)] {
            XCTAssertNil(position(step: step, epoch: epoch, midEpoch: false, total: step), "step \(step), epoch \(epoch)")
        }
        for (step, epoch, mid, images) in [(7, 1, false, 300), (7, 1, true, 300), (60, 1, true, 300),
                                           (30, 2, false, 300), (61, 2, false, 300), (45, 2, false, 300),
                                           (10, 0, false, 300), (60, 2, false, 600), (60, 2, false, 150),
                                           (1, 1, false, 0)] {
            let error = position(step: step, epoch: epoch, midEpoch: mid, images: images)
            guard case let .invalidField(path, field, _)? = error as? CheckpointError else {
                XCTFail("step \(step), epoch \(epoch), mid-epoch \(mid), \(images) images: \(String(describing: error))")
                continue
            }
            XCTAssertEqual(path, "run/checkpoint")
            XCTAssertEqual(field, "state.step")
            XCTAssertFalse("\(error!)".contains("\n"))
        }
        // The partial sums cannot count more examples than the epoch's steps so far took.
        var s = state
        (s.step, s.epoch, s.epochSums) = (35, 1, TermSums(rec: 1, kl: 1, examples: 51))
        XCTAssertThrowsError(try s.validatePosition(trainingImages: 300, totalSteps: 90, path: "ck")) { error in
            guard case let .invalidField(_, field, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "state.epochSums.examples")
        }
    }

    func testNewErrorDescriptionsAreSingleLines() {
        let fingerprint = ImageSetFingerprint(count: 2000, crc32: 0xAB)
        let all: [CheckpointError] = [
            .invalidField(path: "/p", field: "state.step", problem: "must be ≥ 0 (got -5)"),
            .dataChanged(path: "/p", split: "training", data: "/d", recorded: fingerprint,
                         found: ImageSetFingerprint(count: 4000, crc32: 0xCD)),
            .dataChanged(path: "/p", split: "test", data: "/d", recorded: fingerprint,
                         found: ImageSetFingerprint(count: 2000, crc32: 0xCD)),
            .badOptions(path: "/r/options.json", problem: "the key epochs is missing"),
        ]
        for e in all {
            XCTAssertFalse(e.description.contains("\n"), e.description)
            XCTAssertFalse(e.description.isEmpty)
        }
        XCTAssertTrue(all[2].description.contains("000000ab"), all[2].description)
    }
}
