import Foundation
import XCTest
import LatentModels
import LatentEvaluation
import LatentTraining

/// Replays the checkpoint fuzz target's inputs (Tests/Fuzz/corpus/checkpoint, the seeds, and
/// Tests/Fuzz/regressions/checkpoint, every crash scripts/fuzz.sh found) through `Checkpoint.decode` the way the
/// target does: as is and with the CRC-32 recomputed. Each must throw a CheckpointError or decode to a checkpoint that
/// re-encodes and decodes to the same values, and whose step (where `validatePosition` accepts it) is a batch inside an
/// epoch for the training loop to continue from.
final class CheckpointFuzzRegressionTests: XCTestCase {
    /// Tests/Fuzz, found from this file's path.
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// The non-hidden files of Tests/Fuzz/`kind`/checkpoint, sorted by name.
    func inputs(_ kind: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent("checkpoint")
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            .filter { !$0.hasPrefix(".") }
            .map { ("\(kind)/checkpoint/\($0)", [UInt8](try Data(contentsOf: directory.appendingPathComponent($0)))) }
    }

    /// The bytes with their last four replaced by the little-endian CRC-32 of everything before them.
    func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = Array(bytes.dropLast(4))
        let crc = Checkpoint.crc32(b)
        for i in 0..<4 { b.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
        return b
    }

    /// Decodes one variant; returns whether it decoded (and then checks the re-encoding round trip).
    @discardableResult
    func decode(_ name: String, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.decode(bytes, path: name)
        } catch {
            XCTAssertTrue(error is CheckpointError, "\(name) threw \(type(of: error)): \(error)",
                          file: file, line: line)
            XCTAssertFalse(String(describing: error).isEmpty, "\(name): empty description", file: file, line: line)
            return false
        }
        let n = checkpoint.parameters.count
        XCTAssertEqual(VariationalAutoencoder<Float>.parameterCount(checkpoint.configuration), n, name,
                       file: file, line: line)
        XCTAssertEqual(checkpoint.firstMoment.count, n, name, file: file, line: line)
        XCTAssertEqual(checkpoint.secondMoment.count, n, name, file: file, line: line)
        do {
            let back = try Checkpoint.decode(try checkpoint.encoded(), path: name)
            XCTAssertEqual(back.configuration, checkpoint.configuration, name, file: file, line: line)
            XCTAssertEqual(back.state, checkpoint.state, name, file: file, line: line)
            XCTAssertEqual(back.parameters.map(\.bitPattern), checkpoint.parameters.map(\.bitPattern), name,
                           file: file, line: line)
            XCTAssertEqual(back.firstMoment.map(\.bitPattern), checkpoint.firstMoment.map(\.bitPattern), name,
                           file: file, line: line)
            XCTAssertEqual(back.secondMoment.map(\.bitPattern), checkpoint.secondMoment.map(\.bitPattern), name,
                           file: file, line: line)
        } catch {
            XCTFail("\(name) decoded but does not re-encode and decode: \(error)", file: file, line: line)
        }
        let state = checkpoint.state
        for images in [state.trainSet?.count, state.testSet?.count, state.trainLimit, 1].compactMap({ $0 }) {
            for total in [state.step, state.step &+ 1] {
                guard (try? state.validatePosition(trainingImages: images, totalSteps: total, path: name)) != nil,
                      state.step < total else { continue }
                let perEpoch = images / state.batch + (images % state.batch == 0 ? 0 : 1)
                let (start, overflow) = state.epoch.multipliedReportingOverflow(by: perEpoch)
                let batch = state.step - start
                XCTAssertFalse(overflow, name, file: file, line: line)
                XCTAssertTrue((0..<perEpoch).contains(batch), "\(name): accepted for \(images) images, the loop would "
                              + "continue at batch \(batch) of \(perEpoch)", file: file, line: line)
                let most = batch.multipliedReportingOverflow(by: state.batch)
                XCTAssertTrue(most.overflow || (state.epochSums?.examples ?? 0) <= most.partialValue, name,
                              file: file, line: line)
            }
        }
        return true
    }

    /// What the checkpoint target does with one input: returns whether the input itself and its resealed form decoded.
    @discardableResult
    func replay(_ name: String, _ input: [UInt8], file: StaticString = #filePath,
                line: UInt = #line) -> (raw: Bool, resealed: Bool) {
        let raw = decode(name, input, file: file, line: line)
        let sealed = input.count >= 4 && decode("\(name) (CRC recomputed)", resealed(input), file: file, line: line)
        return (raw, sealed)
    }

    /// The seeds are checkpoints written by `Checkpoint.encoded()`: each decodes.
    func testSeedCorpusDecodes() throws {
        let seeds = try inputs("corpus")
        XCTAssertGreaterThanOrEqual(seeds.count, 3, "Tests/Fuzz/corpus/checkpoint is missing seeds")
        for (name, bytes) in seeds {
            let result = replay(name, bytes)
            XCTAssertTrue(result.raw && result.resealed, "\(name) is a seed checkpoint but does not decode")
        }
    }

    /// Every input the fuzzer ever crashed on (none yet) must now be rejected or decoded, without a trap.
    func testRegressionInputsDoNotCrash() throws {
        for (name, bytes) in try inputs("regressions") { replay(name, bytes) }
    }

    /// The hostile-* regressions (valid CRC-32; the step = -5, step = 7 after epoch 1, and configurations the
    /// command line refuses) are refused: by the header checks, or, for a step that does not fit its epoch, before a
    /// run that goes on continues from it.
    func testHostileHeadersAreRefused() throws {
        let hostile = try inputs("regressions").filter { $0.name.contains("/hostile-") }
        XCTAssertGreaterThanOrEqual(hostile.count, 5)
        for (name, bytes) in hostile {
            do {
                let state = try Checkpoint.decode(bytes, path: name).state
                let images = try XCTUnwrap(state.trainSet?.count, name)
                XCTAssertThrowsError(try state.validatePosition(trainingImages: images, totalSteps: state.step + 1,
                                                                path: name), name)
            } catch let error as CheckpointError {
                guard case .invalidField = error else { return XCTFail("\(name): \(error)") }
            }
        }
    }

    /// Every prefix of every seed checkpoint, resealed or not: truncated files must throw, not trap.
    func testTruncatedSeedsDoNotCrash() throws {
        for (name, bytes) in try inputs("corpus") {
            for length in 0..<bytes.count {
                let prefix = Array(bytes.prefix(length))
                XCTAssertFalse(replay("\(name)[..<\(length)]", prefix).raw, "\(name) truncated to \(length) decoded")
            }
        }
    }
}
