import Foundation
import LatentCore
import XCTest

/// `latent train --resume` validates what it resumes: the data (by count and content, wherever it moved), every
/// checkpoint header field (behind a valid CRC-32), and options.json, whose problems are named by its keys.
final class ResumeDataTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }
    var run: URL { root.appendingPathComponent("run") }
    var checkpoint: URL { run.appendingPathComponent("checkpoint") }
    var optionsFile: URL { run.appendingPathComponent("options.json") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-resume-data-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 2000, test: 40)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// A 2-epoch run (20 steps per epoch) on `data` into `out`, which must succeed.
    func train(out: URL? = nil, epochs: Int = 2) throws {
        let r = try LatentCommand.run(["train", "--data", data.path, "--hidden", "16", "--latent", "3", "--batch", "100",
                                       "--epochs", "\(epochs)", "--threads", "1", "--seed", "3",
                                       "--out", (out ?? run).path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// A refusal: exit status 1 (not a signal), one line on stderr holding every one of `parts`; the checkpoint is
    /// left as it was.
    func assertRefused(_ arguments: [String], _ parts: [String], file: StaticString = #filePath,
                       line: UInt = #line) throws {
        let before = try Data(contentsOf: checkpoint)
        let r = try LatentCommand.run(arguments)
        XCTAssertTrue(r.exitedNormally, "killed by a signal (crash): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr, file: file, line: line)
        for part in parts {
            XCTAssertTrue(r.stderr.contains(part), "expected '\(part)' in: \(r.stderr)", file: file, line: line)
        }
        XCTAssertEqual(try Data(contentsOf: checkpoint), before, "the checkpoint changed", file: file, line: line)
    }

    func metricsWithoutTimings(_ out: URL) throws -> [[String: String]] {
        let text = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { !["seconds", "samples_per_second", "eval_seconds"].contains($0.key) }
                .mapValues { "\($0)" }
        }
    }

    // MARK: - The data changed

    /// The crash: 2 000 → 4 000 training images at the same path ended in a bad pointer dereference.
    func testResumeRefusesATrainingSetThatGrew() throws {
        try train()
        try SyntheticDataset.write(to: data, train: 4000, test: 40)
        try assertRefused(["train", "--resume", run.path], ["training set", "4000", "2000", checkpoint.path])
        try assertRefused(["train", "--resume", run.path, "--epochs", "3"], ["4000", "2000"])
    }

    /// Shrunk, an extended run reported every batch non-finite ("lower --lr"), which was false.
    func testResumeRefusesATrainingSetThatShrank() throws {
        try train()
        try SyntheticDataset.write(to: data, train: 1000, test: 40)
        try assertRefused(["train", "--resume", run.path, "--epochs", "8"], ["training set", "1000", "2000"])
    }

    /// Other images of the same count resumed silently and not bit for bit; so did another test set.
    func testResumeRefusesChangedContentOfTheSameSize() throws {
        try train()
        try SyntheticDataset.write(to: data, train: 2000, test: 40,
                                   trainImages: SyntheticDataset.imageFile(count: 2000, seed: 9))
        try assertRefused(["train", "--resume", run.path, "--epochs", "3"], ["training set", "CRC-32", "2000"])
        try SyntheticDataset.write(to: data, train: 2000, test: 41)
        try assertRefused(["train", "--resume", run.path, "--epochs", "3"], ["test set", "41", "40"])
    }

    /// `--resume DIR --data NEW` continues a run whose data moved, bit for bit, and records the new path.
    func testResumeWithDataAtAMovedCopyContinuesBitForBit() throws {
        let reference = root.appendingPathComponent("reference")
        try train(out: reference, epochs: 4)
        try train()
        let moved = root.appendingPathComponent("moved data")
        try FileManager.default.moveItem(at: data, to: moved)
        try assertRefused(["train", "--resume", run.path, "--epochs", "4"], [data.path, "--data"])

        let resumed = try LatentCommand.run(["train", "--resume", run.path, "--data", moved.path, "--epochs", "4"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try metricsWithoutTimings(run), try metricsWithoutTimings(reference))
        let options = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: optionsFile)) as? [String: Any])
        XCTAssertEqual(options["data"] as? String, moved.path, "options.json records where the data is now")
        // From now on the run resumes from there without --data.
        let again = try LatentCommand.run(["train", "--resume", run.path, "--epochs", "5"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try metricsWithoutTimings(run).count, 5)
    }

    /// options.json edited to the data's new place resumes too (the data is checked by content, not by path).
    func testResumeAcceptsTheDataPathEditedInOptionsJSON() throws {
        try train()
        let moved = root.appendingPathComponent("elsewhere")
        try FileManager.default.moveItem(at: data, to: moved)
        try editOptions { $0["data"] = moved.path }
        let resumed = try LatentCommand.run(["train", "--resume", run.path, "--epochs", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try metricsWithoutTimings(run).count, 3)
    }

    /// A format-2 checkpoint (no fingerprints) still resumes, saying that its data cannot be verified; on a grown
    /// training set its step no longer fits the epochs, which is refused instead of crashing.
    func testAFormatTwoCheckpointResumesWithANoteAndItsStepIsChecked() throws {
        try train()
        try CheckpointFile.rewrite(checkpoint, version: 2) { header in
            var state = header["state"] as! [String: Any]
            state.removeValue(forKey: "trainSet")
            state.removeValue(forKey: "testSet")
            header["state"] = state
        }
        let formatTwo = try Data(contentsOf: checkpoint)
        try SyntheticDataset.write(to: data, train: 4000, test: 40)
        try assertRefused(["train", "--resume", run.path, "--epochs", "3"], [checkpoint.path, "state.step", "changed"])
        try SyntheticDataset.write(to: data, train: 2000, test: 40)
        XCTAssertEqual(try Data(contentsOf: checkpoint), formatTwo)
        let resumed = try LatentCommand.run(["train", "--resume", run.path, "--epochs", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("cannot verify"), resumed.stderr)
        XCTAssertEqual(try metricsWithoutTimings(run).count, 3)
    }

    // MARK: - Hostile checkpoint headers (valid CRC-32)

    /// step = -5, and step = 7 after one epoch of 20 steps, crashed in Binarization.sample.
    func testHostileStepsWithAValidChecksumAreRefused() throws {
        try train()
        let original = try Data(contentsOf: checkpoint)
        for (step, epoch) in [(-5, 2), (7, 1), (41, 2), (39, 2)] {
            try CheckpointFile.rewrite(checkpoint) { header in
                var state = header["state"] as! [String: Any]
                (state["step"], state["epoch"]) = (step, epoch)
                header["state"] = state
            }
            try assertRefused(["train", "--resume", run.path], [checkpoint.path, "state.step"])
            try assertRefused(["train", "--resume", run.path, "--epochs", "4"], [checkpoint.path, "state."])
            try original.write(to: checkpoint)
        }
    }

    /// A checkpoint of a configuration `latent train` refuses (a vae with the mixture prior, a negative jitter) is
    /// refused by every command that loads it, with the field's name.
    func testConfigurationsTheCommandLineRefusesAreRefusedInAHeader() throws {
        try train()
        let original = try Data(contentsOf: checkpoint)
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("configuration.jitter", { $0["jitter"] = -0.5 }),
            ("configuration.prior", { $0["prior"] = "mixture"; $0["components"] = 2 }),
        ]
        for (field, edit) in edits {
            try CheckpointFile.rewrite(checkpoint) { header in
                var configuration = header["configuration"] as! [String: Any]
                edit(&configuration)
                header["configuration"] = configuration
                if configuration["prior"] as? String == "mixture" {
                    // The mixture's means and log-variances: 2 × K × k more parameters, so the sizes agree.
                    header["parameterCount"] = (header["parameterCount"] as! Int) + 2 * 2 * 3
                }
            }
            try assertRefused(["eval", "--checkpoint", run.path, "--data", data.path], [checkpoint.path, field])
            try assertRefused(["sample", "--checkpoint", run.path, "--out", root.appendingPathComponent("s.png").path],
                              [checkpoint.path, field])
            try original.write(to: checkpoint)
        }
    }

    // MARK: - options.json

    /// A missing `epochs` silently meant 20 more epochs.
    func testOptionsJSONWithoutEpochsIsAnErrorNamingTheKey() throws {
        try train()
        try editOptions { $0.removeValue(forKey: "epochs") }
        try assertRefused(["train", "--resume", run.path], [optionsFile.path, "epochs", "missing"])
        XCTAssertEqual(try metricsWithoutTimings(run).count, 2)
    }

    /// Problems are named by options.json's keys, never as flags that were not given ("--epochs must be …").
    func testOptionsJSONProblemsNameItsKeys() throws {
        try train()
        let original = try Data(contentsOf: optionsFile)
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("epochs", { $0["epochs"] = 0 }),
            ("batch", { $0["batch"] = "many" }),
            ("learningRate", { $0["learningRate"] = -1 }),
            ("configuration.hidden", { options in
                var configuration = options["configuration"] as! [String: Any]
                configuration["hidden"] = [Int]()
                options["configuration"] = configuration
            }),
            ("seed", { $0["seed"] = 4 }),
        ]
        for (key, edit) in edits {
            try editOptions(edit)
            let r = try LatentCommand.run(["train", "--resume", run.path])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("options.json"), "\(key): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(" \(key) "), "\(key): \(r.stderr)")
            for flag in ["--epochs", "--batch", "--lr", "--hidden", "--seed"] {
                XCTAssertFalse(r.stderr.contains(flag), "\(key): names \(flag), which was not given: \(r.stderr)")
            }
            try original.write(to: optionsFile)
        }
    }

    /// Rewrites options.json with `edit` applied.
    func editOptions(_ edit: (inout [String: Any]) -> Void) throws {
        var options = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: optionsFile)) as? [String: Any])
        edit(&options)
        try JSONSerialization.data(withJSONObject: options, options: [.prettyPrinted, .sortedKeys]).write(to: optionsFile)
    }
}

/// Rewrites a checkpoint's JSON header and seals the file again (header length, payload size, CRC-32), as a damaged
/// or edited file that still passes the checksum would be.
enum CheckpointFile {
    /// Applies `edit` to the header (and writes format `version` when given).
    static func rewrite(_ url: URL, version: UInt8? = nil, _ edit: (inout [String: Any]) -> Void) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        let length = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[16..<(16 + length)])) as? [String: Any])
        var payload = Array(bytes[(16 + length)..<(bytes.count - 4)])
        edit(&header)
        // Parameters and Adam's two moments: three Float32 buffers of parameterCount values.
        let size = 12 * (header["parameterCount"] as! Int)
        payload = payload.count >= size ? Array(payload.prefix(size))
            : payload + [UInt8](repeating: 0, count: size - payload.count)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out = Array(bytes[0..<12])
        if let version { out[8..<12] = [version, 0, 0, 0] }
        for i in 0..<4 { out.append(UInt8((UInt32(json.count) >> (8 * UInt32(i))) & 0xFF)) }
        out += json + payload
        let crc = CRC32.checksum(out)
        for i in 0..<4 { out.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
        try Data(out).write(to: url)
    }
}
