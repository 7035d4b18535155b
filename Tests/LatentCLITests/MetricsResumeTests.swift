import Foundation
import XCTest

/// `--resume` never drops metrics silently: only lines past the checkpoint's epoch are trimmed (with a note), an
/// unreadable line the checkpoint covers is an error naming the line, and a missing file is recreated with a note.
final class MetricsResumeTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-metrics-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 100, test: 20)
    }

    override func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    /// A finished run of `epochs` epochs (10 steps each) in `root/name`.
    func train(_ name: String, epochs: Int) throws -> URL {
        let out = root.appendingPathComponent(name)
        let r = try LatentCommand.run(["train", "--data", data.path, "--hidden", "16", "--latent", "3", "--batch", "10",
                                       "--epochs", "\(epochs)", "--threads", "1", "--seed", "5", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func metricsURL(_ out: URL) -> URL { out.appendingPathComponent("metrics.jsonl") }

    func lines(_ out: URL) throws -> [String] {
        try String(contentsOf: metricsURL(out), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func epochs(_ out: URL) throws -> [Int] {
        try lines(out).map {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["epoch"] as? Int)
        }
    }

    /// The lines without their timings, which differ between runs.
    func withoutTimings(_ out: URL) throws -> [[String: String]] {
        try lines(out).map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object.filter { !["seconds", "samples_per_second", "eval_seconds"].contains($0.key) }
                .mapValues { "\($0)" }
        }
    }

    /// A finished run whose last line (an epoch the checkpoint holds) was cut: an error, and the file is untouched.
    func testACutLineOfAnEpochTheCheckpointHoldsIsAnError() throws {
        let out = try train("run", epochs: 3)
        var text = try String(contentsOf: metricsURL(out), encoding: .utf8)
        text.removeLast(40)
        try text.write(to: metricsURL(out), atomically: true, encoding: .utf8)

        let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "4"])
        XCTAssertEqual(resumed.status, 1, resumed.stderr)
        XCTAssertEqual(resumed.stderrLines.count, 1, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("line 3 of \(metricsURL(out).path)"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("delete"), "says how to repair it: \(resumed.stderr)")
        XCTAssertEqual(try String(contentsOf: metricsURL(out), encoding: .utf8), text, "the file is left as it was")
    }

    /// A NaN or garbage in line 2 of a 3-epoch run: an error naming line 2, nothing rewritten.
    func testAnUnreadableLineBeforeTheCheckpointIsAnError() throws {
        let out = try train("run", epochs: 3)
        let original = try lines(out)
        let nan = original[1].replacingOccurrences(
            of: #""test_kl":[-0-9.e]+"#, with: #""test_kl":NaN"#, options: .regularExpression)
        XCTAssertNotEqual(nan, original[1])
        for bad in [nan, "garbage"] {
            let text = ([original[0], bad] + original[2...]).map { $0 + "\n" }.joined()
            try text.write(to: metricsURL(out), atomically: true, encoding: .utf8)
            let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "4"])
            XCTAssertEqual(resumed.status, 1, resumed.stderr)
            XCTAssertEqual(resumed.stderrLines.count, 1, resumed.stderr)
            XCTAssertTrue(resumed.stderr.contains("line 2 of \(metricsURL(out).path)"), resumed.stderr)
            XCTAssertEqual(try String(contentsOf: metricsURL(out), encoding: .utf8), text, "the file is left as it was")
        }
    }

    /// Lines past the checkpoint (a crash between an epoch's metrics and its checkpoint, the last line perhaps cut)
    /// are trimmed with a note, and the resumed run writes them again as an uninterrupted run does.
    func testLinesPastTheCheckpointAreTrimmedWithANote() throws {
        let reference = try train("reference", epochs: 3)
        let out = try train("run", epochs: 2)
        let extra = try lines(reference)[2]
        for remnant in [extra + "\n", String(extra.prefix(30))] {
            let text = try lines(out).prefix(2).map { $0 + "\n" }.joined() + remnant
            try text.write(to: metricsURL(out), atomically: true, encoding: .utf8)
            let resumed = try LatentCommand.run(["train", "--resume", out.path])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stderrLines.contains { $0.contains("line 3") && $0.contains("past the checkpoint") },
                          "the trim is reported: \(resumed.stderr)")
            XCTAssertEqual(try epochs(out), [1, 2])
        }
        let extended = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "3"])
        XCTAssertEqual(extended.status, 0, extended.stderr)
        XCTAssertEqual(try withoutTimings(out), try withoutTimings(reference))
    }

    func testAMissingMetricsFileIsRecreatedWithANote() throws {
        let out = try train("run", epochs: 2)
        try FileManager.default.removeItem(at: metricsURL(out))
        let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderrLines.contains { $0.contains(metricsURL(out).path) && $0.contains("missing") },
                      "the loss is reported: \(resumed.stderr)")
        XCTAssertEqual(try epochs(out), [3])
    }
}
