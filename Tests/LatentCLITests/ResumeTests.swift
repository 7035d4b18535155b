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

    func testResumeWithMoreEpochsEqualsTheLongerRun() throws {
        let reference = root.appendingPathComponent("reference")
        let long = try LatentCommand.run(arguments(out: reference))
        XCTAssertEqual(long.status, 0, long.stderr)
        let short = root.appendingPathComponent("short")
        let shortRun = try LatentCommand.run(arguments(out: short).map { $0 == "6" ? "3" : $0 })
        XCTAssertEqual(shortRun.status, 0, shortRun.stderr)
        XCTAssertEqual(try metricsWithoutTimings(short).count, 3)

        let extended = try LatentCommand.run(["train", "--resume", short.path, "--epochs", "6"])
        XCTAssertEqual(extended.status, 0, extended.stderr)
        XCTAssertEqual(try metricsWithoutTimings(short), try metricsWithoutTimings(reference))
        let a = try Data(contentsOf: reference.appendingPathComponent("checkpoint"))
        let b = try Data(contentsOf: short.appendingPathComponent("checkpoint"))
        XCTAssertEqual(a, b, "an extended run's checkpoint is the longer run's")
        // The new length is the run's own now: resuming again has nothing left to do and changes nothing.
        let again = try LatentCommand.run(["train", "--resume", short.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try Data(contentsOf: short.appendingPathComponent("checkpoint")), a)
    }

    func testResumeRejectsFlagsItWouldIgnoreAndShorterRuns() throws {
        let out = root.appendingPathComponent("run")
        let run = try LatentCommand.run(arguments(out: out).map { $0 == "6" ? "2" : $0 })
        XCTAssertEqual(run.status, 0, run.stderr)
        let before = try Data(contentsOf: out.appendingPathComponent("checkpoint"))

        // Any other flag, even at its default value, would be ignored: an error.
        for flag in [["--batch", "20"], ["--seed", "0"], ["--lr", "0.001"]] {
            let otherFlag = try LatentCommand.run(["train", "--resume", out.path] + flag)
            XCTAssertNotEqual(otherFlag.status, 0, "\(flag[0]) with --resume must not be silently ignored")
            XCTAssertTrue(otherFlag.stderrLines.first?.contains(flag[0]) == true, otherFlag.stderr)
        }

        let shorter = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "1"])
        XCTAssertEqual(shorter.status, 1, shorter.stderr)
        XCTAssertEqual(shorter.stderrLines.count, 1, shorter.stderr)
        XCTAssertTrue(shorter.stderr.contains("already at step 60"), shorter.stderr)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("checkpoint")), before, "no work lost")
    }

    /// options.json and the checkpoint header must agree: an edited seed would silently change the resumed run.
    func testResumeRejectsAnEditedOrMissingOptionsFile() throws {
        let out = root.appendingPathComponent("run")
        let run = try LatentCommand.run(arguments(out: out).map { $0 == "6" ? "1" : $0 })
        XCTAssertEqual(run.status, 0, run.stderr)
        let path = out.appendingPathComponent("options.json")
        let original = try String(contentsOf: path, encoding: .utf8)
        XCTAssertTrue(original.contains("\"seed\" : 5"), original)
        try original.replacingOccurrences(of: "\"seed\" : 5", with: "\"seed\" : 6").write(to: path, atomically: true,
                                                                                         encoding: .utf8)
        let edited = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "2"])
        XCTAssertEqual(edited.status, 1, edited.stderr)
        XCTAssertEqual(edited.stderrLines.count, 1, edited.stderr)
        // Named by its options.json key: no --seed flag was given.
        XCTAssertTrue(edited.stderr.contains("checkpoint on seed"), edited.stderr)

        // The training set's size and the strategy change the results too.
        for (key, edit) in [("\"parallelism\" : \"auto\"", "\"parallelism\" : \"data\""),
                            ("\"seed\" : 5", "\"seed\" : 5,\n  \"trainLimit\" : 100")] {
            XCTAssertTrue(original.contains(key), original)
            try original.replacingOccurrences(of: key, with: edit).write(to: path, atomically: true, encoding: .utf8)
            let r = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "2"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("disagrees with its checkpoint"), r.stderr)
        }

        try FileManager.default.removeItem(at: path)
        let missing = try LatentCommand.run(["train", "--resume", out.path])
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("has no options.json"), missing.stderr)
    }

    /// `compare`'s test-set evaluation has no step boundary to stop at and nothing to save: one signal ends it.
    func testCompareStopsOnOneSignalWhileEvaluating() throws {
        let out = root.appendingPathComponent("compare")
        let process = try start(["compare", "--data", data.path, "--hidden", "16", "--latent", "3", "--batch", "10",
                                 "--iterations", "2", "--posteriors", "diagonal", "--iw", "2000000",
                                 "--threads", "1", "--out", out.path])
        let metrics = out.appendingPathComponent("diagonal/metrics.jsonl").path
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline
            && ((try? Data(contentsOf: URL(fileURLWithPath: metrics)))?.isEmpty ?? true) {
            usleep(5_000)
        }
        XCTAssertTrue(process.isRunning, "compare ended before its IWAE-2000000 evaluation")
        usleep(200_000)  // into the evaluation
        process.terminate()  // SIGTERM
        let stop = Date().addingTimeInterval(10)
        while process.isRunning && Date() < stop { usleep(10_000) }
        let stopped = !process.isRunning
        if !stopped { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        XCTAssertTrue(stopped, "compare kept evaluating for 10 s after SIGTERM")
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM)
    }
}
