import Foundation
import XCTest

/// No lost work: SIGKILL leaves the previous complete checkpoint; SIGTERM checkpoints at a step boundary and a
/// resumed run ends bit-identical to an uninterrupted one (metrics except timings, and the checkpoint file).
final class ResumeTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-resume-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 300, test: 40)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func arguments(out: URL, extra: [String] = []) -> [String] {
        ["train", "--data", data.path, "--hidden", "16", "--latent", "3", "--batch", "10", "--epochs", "6",
         "--threads", "2", "--seed", "5", "--out", out.path] + extra
    }

    /// Starts `latent` and returns the process; the caller signals or waits.
    func start(_ args: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try LatentCommand.executable())
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until `path` exists (or the process ends), polling.
    func waitForFile(_ path: String, while process: Process, timeout: TimeInterval = 60) {
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: path) && process.isRunning && Date() < deadline {
            usleep(2_000)
        }
    }

    func metricsWithoutTimings(_ out: URL) throws -> [[String: String]] {
        let text = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object.filter { !["seconds", "samples_per_second", "eval_seconds"].contains($0.key) }
                .mapValues { "\($0)" }
        }
    }

    func testSIGTERMThenResumeIsBitIdentical() throws {
        let reference = root.appendingPathComponent("reference")
        let uninterrupted = try LatentCommand.run(arguments(out: reference))
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.stderr)

        let interrupted = root.appendingPathComponent("interrupted")
        let process = try start(arguments(out: interrupted, extra: ["--checkpoint-every", "7"]))
        waitForFile(interrupted.appendingPathComponent("checkpoint").path, while: process)
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        // 180 steps with the first checkpoint at step 7: the signal lands mid-run, which this test is about.
        XCTAssertNotEqual(process.terminationStatus, 0, "the run finished before SIGTERM arrived")
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM, "exits with the signal's conventional status")
        XCTAssertFalse(FileManager.default.fileExists(atPath: interrupted.appendingPathComponent("checkpoint.tmp").path))

        let resumed = try LatentCommand.run(["train", "--resume", interrupted.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try metricsWithoutTimings(interrupted), try metricsWithoutTimings(reference))
        let a = try Data(contentsOf: reference.appendingPathComponent("checkpoint"))
        let b = try Data(contentsOf: interrupted.appendingPathComponent("checkpoint"))
        XCTAssertEqual(a, b, "final checkpoints (parameters, optimizer state, counters) are identical")
    }

    func testSIGKILLLeavesTheLastCompleteCheckpoint() throws {
        let out = root.appendingPathComponent("killed")
        let process = try start(arguments(out: out, extra: ["--checkpoint-every", "1"]))
        waitForFile(out.appendingPathComponent("checkpoint").path, while: process)
        usleep(150_000)  // checkpoints are being rewritten every step now
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        // Whatever the moment of the kill, `checkpoint` is a complete file: it decodes (magic, sizes, CRC-32).
        let eval = try LatentCommand.run(["eval", "--checkpoint", out.path, "--data", data.path, "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let resumed = try LatentCommand.run(["train", "--resume", out.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
    }
}
