import Foundation
import XCTest

/// `mpirun -np 2 latent train` on loopback against one process with the same global batch, and its stops and faults
/// (docs/DISTRIBUTED.md). They need Open MPI and the release `latent`: scripts/test.sh runs them with
/// LATENT_DISTRIBUTED=1 and LATENT_EXECUTABLE set; otherwise they are skipped.
final class DistributedTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        guard ProcessInfo.processInfo.environment["LATENT_DISTRIBUTED"] == "1" else {
            throw XCTSkip("distributed tests run from scripts/test.sh (LATENT_DISTRIBUTED=1, Open MPI installed)")
        }
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-mpi-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 2000, test: 1000)
    }

    override func tearDown() { if let root { try? FileManager.default.removeItem(at: root) } }

    /// 200 steps of batch 100 over 2000 images, a test evaluation after each of the 10 epochs.
    func training(out: URL, extra: [String] = []) -> [String] {
        ["train", "--data", data.path, "--batch", "100", "--epochs", "10", "--seed", "3", "--out", out.path] + extra
    }

    /// `mpirun -np ranks latent arguments…`, started; output goes to files in `root`.
    func launch(ranks: Int, _ arguments: [String], name: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "--allow-run-as-root", "-np", "\(ranks)", try LatentCommand.executable()]
            + arguments
        let log = root.appendingPathComponent(name)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs an mpirun job to its end and returns its status and output.
    func mpirun(ranks: Int, _ arguments: [String], name: String, timeout: TimeInterval = 90) throws
        -> (status: Int32, output: String) {
        let process = try launch(ranks: ranks, arguments, name: name)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let output = try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
        return (process.terminationStatus, output)
    }

    /// The (step, loss) lines of a `--log-steps` file.
    func stepLosses(_ path: URL) throws -> [(Int, Double)] {
        try String(contentsOf: path, encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: " ")
            return (Int(fields[0])!, Double(fields[1])!)
        }
    }

    func lastMetrics(_ out: URL) throws -> [String: Any] {
        let text = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let line = try XCTUnwrap(text.split(separator: "\n").last)
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    }

    func waitForFile(_ path: String, while process: Process, timeout: TimeInterval = 60) {
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: path) && process.isRunning && Date() < deadline {
            usleep(5_000)
        }
    }

    /// The ranks (children of mpirun) of a running job.
    func ranks(of mpirun: Process) throws -> [Int32] {
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        pgrep.arguments = ["pgrep", "-P", "\(mpirun.processIdentifier)"]
        let pipe = Pipe()
        pgrep.standardOutput = pipe
        try pgrep.run()
        pgrep.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    func testTwoRanksEqualOneProcessWithTheSameGlobalBatchAndRepeatBitForBit() throws {
        let one = root.appendingPathComponent("one"), two = root.appendingPathComponent("two")
        let single = try LatentCommand.run(training(out: one, extra: [
            "--threads", "2", "--parallelism", "data", "--log-steps", root.appendingPathComponent("one.log").path]))
        XCTAssertEqual(single.status, 0, single.stderr)
        let job = try mpirun(ranks: 2, training(out: two, extra: [
            "--threads", "1", "--log-steps", root.appendingPathComponent("two.log").path]), name: "two.out")
        XCTAssertEqual(job.status, 0, job.output)
        XCTAssertTrue(job.output.contains("over 2 ranks"), job.output)

        let a = try stepLosses(root.appendingPathComponent("one.log"))
        let b = try stepLosses(root.appendingPathComponent("two.log"))
        XCTAssertEqual(a.count, 200)
        XCTAssertEqual(a.map(\.0), b.map(\.0))
        let worst = try XCTUnwrap(zip(a, b).max { abs($0.0.1 - $0.1.1) / abs($0.0.1) < abs($1.0.1 - $1.1.1) / abs($1.0.1) })
        XCTAssertLessThanOrEqual(abs(worst.0.1 - worst.1.1), 1e-5 * abs(worst.0.1),
                                 "step \(worst.0.0): one process \(worst.0.1), two ranks \(worst.1.1)")
        let nelboA = try XCTUnwrap(lastMetrics(one)["test_nelbo"] as? Double)
        let nelboB = try XCTUnwrap(lastMetrics(two)["test_nelbo"] as? Double)
        XCTAssertEqual((nelboA * 100).rounded(), (nelboB * 100).rounded(), "test NELBO to two decimals")
        XCTAssertEqual(try lastMetrics(two)["ranks"] as? Int, 2)

        let again = root.appendingPathComponent("again")
        let repeated = try mpirun(ranks: 2, training(out: again, extra: [
            "--threads", "1", "--log-steps", root.appendingPathComponent("again.log").path]), name: "again.out")
        XCTAssertEqual(repeated.status, 0, repeated.output)
        XCTAssertEqual(try Data(contentsOf: two.appendingPathComponent("checkpoint")),
                       try Data(contentsOf: again.appendingPathComponent("checkpoint")), "two 2-rank runs differ")
        XCTAssertEqual(try Data(contentsOf: root.appendingPathComponent("two.log")),
                       try Data(contentsOf: root.appendingPathComponent("again.log")))
    }

    func testAKilledRankEndsTheJobAndTheLastCheckpointLoads() throws {
        let out = root.appendingPathComponent("killed")
        let job = try launch(ranks: 2, training(out: out, extra: ["--threads", "1", "--epochs", "100",
                                                                   "--checkpoint-every", "3"]), name: "killed.out")
        waitForFile(out.appendingPathComponent("checkpoint").path, while: job)
        XCTAssertTrue(job.isRunning, "the job ended before a rank could be killed")
        let victim = try XCTUnwrap(try ranks(of: job).last)
        let killed = Date()
        kill(victim, SIGKILL)
        while job.isRunning && Date().timeIntervalSince(killed) < 30 { usleep(10_000) }
        let seconds = Date().timeIntervalSince(killed)
        if job.isRunning { kill(job.processIdentifier, SIGKILL) }
        job.waitUntilExit()
        XCTAssertLessThan(seconds, 10, "the job must end within 10 s of losing a rank")
        XCTAssertNotEqual(job.terminationStatus, 0)
        let eval = try LatentCommand.run(["eval", "--checkpoint", out.path, "--data", data.path, "--limit", "200"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
    }

    func testSIGTERMToMpirunThenResumeOnTwoRanksReproducesTheCheckpoint() throws {
        let reference = root.appendingPathComponent("reference")
        let full = try mpirun(ranks: 2, training(out: reference, extra: ["--threads", "1"]), name: "reference.out")
        XCTAssertEqual(full.status, 0, full.output)

        let out = root.appendingPathComponent("stopped")
        let job = try launch(ranks: 2, training(out: out, extra: ["--threads", "1", "--checkpoint-every", "7"]),
                             name: "stopped.out")
        waitForFile(out.appendingPathComponent("checkpoint").path, while: job)
        XCTAssertTrue(job.isRunning, "the job ended before SIGTERM")
        job.terminate()  // SIGTERM to mpirun, which passes it on to the ranks
        job.waitUntilExit()
        XCTAssertNotEqual(job.terminationStatus, 0)
        let stopped = try String(contentsOf: root.appendingPathComponent("stopped.out"), encoding: .utf8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.tmp").path))

        let resumed = try mpirun(ranks: 2, ["train", "--resume", out.path], name: "resumed.out")
        XCTAssertEqual(resumed.status, 0, resumed.output + stopped)
        XCTAssertTrue(resumed.output.contains("resuming at step"), resumed.output)
        XCTAssertEqual(try Data(contentsOf: reference.appendingPathComponent("checkpoint")),
                       try Data(contentsOf: out.appendingPathComponent("checkpoint")),
                       "the resumed job's checkpoint differs from the uninterrupted job's")
    }
}
