import Foundation
import XCTest

/// One writer per run directory: a second `train`, `train --resume` or `compare` on a directory in use is refused at
/// once with the holder's pid, and a new run replaces an old one only once it is committed to start.
final class RunDirectoryTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-rundir-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 300, test: 40)
    }

    override func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    /// 30 steps an epoch, a fraction of a second each in a debug build.
    func arguments(out: URL, epochs: Int, seed: Int = 5, hidden: String = "16") -> [String] {
        ["train", "--data", data.path, "--hidden", hidden, "--latent", "3", "--batch", "10", "--epochs", "\(epochs)",
         "--threads", "1", "--seed", "\(seed)", "--out", out.path]
    }

    func testASecondTrainInTheSameDirectoryIsRefusedAndTheFirstResumes() throws {
        let out = root.appendingPathComponent("run")
        let first = try BackgroundLatent(arguments(out: out, epochs: 20), in: root)
        try first.waitForMetrics(in: out, lines: 1)
        XCTAssertTrue(first.isRunning, "the first run ended before the second started")

        let second = try LatentCommand.run(arguments(out: out, epochs: 2, seed: 9, hidden: "24,24"))
        XCTAssertTrue(second.exitedNormally, second.stderr)
        XCTAssertEqual(second.status, 1, "a second writer must be refused: \(second.stderr)")
        XCTAssertEqual(second.stderrLines.count, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("in use"), second.stderr)
        XCTAssertTrue(second.stderr.contains("pid \(first.pid)"), "names the holder: \(second.stderr)")
        XCTAssertTrue(second.stderr.contains(out.path), second.stderr)

        let finished = first.wait()
        XCTAssertEqual(finished.status, 0, finished.stderr)
        let options = try JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("options.json"))) as! [String: Any]
        XCTAssertEqual(options["seed"] as? Int, 5, "options.json is the first run's")
        XCTAssertEqual((options["configuration"] as? [String: Any])?["hidden"] as? [Int], [16])
        XCTAssertEqual(try epochs(in: out), Array(1...20))

        let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "21"])
        XCTAssertEqual(resumed.status, 0, "the first run can still be resumed: \(resumed.stderr)")
        XCTAssertEqual(try epochs(in: out), Array(1...21))
    }

    /// The second of two resumes is refused; once the first is killed (SIGKILL), its lock is gone and a resume
    /// finishes the run with every epoch once.
    func testTwoResumesOfOneRunDoNotBothWrite() throws {
        let out = root.appendingPathComponent("run")
        let start = try LatentCommand.run(arguments(out: out, epochs: 2))
        XCTAssertEqual(start.status, 0, start.stderr)
        let first = try BackgroundLatent(["train", "--resume", out.path, "--epochs", "20"], in: root)
        try first.waitForMetrics(in: out, lines: 3)
        XCTAssertTrue(first.isRunning, "the first resume ended before the second started")

        let second = try LatentCommand.run(["train", "--resume", out.path])
        XCTAssertEqual(second.status, 1, "a second resume must be refused: \(second.stderr)")
        XCTAssertEqual(second.stderrLines.count, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("pid \(first.pid)"), second.stderr)

        kill(first.pid, SIGKILL)
        _ = first.wait()
        let third = try LatentCommand.run(["train", "--resume", out.path])
        XCTAssertEqual(third.status, 0, "a killed run holds no lock: \(third.stderr)")
        XCTAssertEqual(try epochs(in: out), Array(1...20), "every epoch once")
    }

    /// A SIGTERM that arrives while a new run is still loading its data stops it before it replaces anything.
    func testAStopBeforeTheFirstStepLeavesThePreviousRun() throws {
        guard FileManager.default.fileExists(atPath: "/proc/self/status") else {
            throw XCTSkip("needs /proc to see when latent's signal handlers are installed")
        }
        let out = root.appendingPathComponent("run")
        let previous = try LatentCommand.run(arguments(out: out, epochs: 1))
        XCTAssertEqual(previous.status, 0, previous.stderr)
        let files = ["checkpoint", "options.json", "metrics.jsonl"]
        let before = try files.map { try Data(contentsOf: out.appendingPathComponent($0)) }

        // A large training set (a block of images repeated) keeps the new run loading for a while.
        let big = root.appendingPathComponent("big")
        let block = SyntheticDataset.pixels(784 * 100, seed: 3)
        var images = SyntheticDataset.header([0x803, 30_000, 28, 28])
        images.reserveCapacity(images.count + 300 * block.count)
        for _ in 0..<300 { images.append(contentsOf: block) }
        try SyntheticDataset.write(to: big, train: 30_000, test: 40, trainImages: images)
        let replacing = try BackgroundLatent(
            ["train", "--data", big.path, "--hidden", "16", "--latent", "3", "--batch", "10", "--epochs", "1",
             "--threads", "1", "--seed", "9", "--out", out.path], in: root)
        try replacing.waitForSignalHandler(SIGTERM)
        kill(replacing.pid, SIGTERM)
        let stopped = replacing.wait()
        XCTAssertEqual(stopped.status, 128 + SIGTERM, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("before"), stopped.stderr)
        for (file, bytes) in zip(files, before) {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(file)), bytes, "\(file) was replaced")
        }
    }

    func testASecondCompareInTheSameDirectoryIsRefused() throws {
        let out = root.appendingPathComponent("compare")
        let compare = ["compare", "--data", data.path, "--hidden", "16", "--latent", "3", "--batch", "10",
                       "--threads", "1", "--posteriors", "diagonal", "--iw", "0", "--out", out.path]
        let first = try BackgroundLatent(compare + ["--epochs", "20"], in: root)
        try first.waitForMetrics(in: out.appendingPathComponent("diagonal"), lines: 1)
        XCTAssertTrue(first.isRunning, "the first comparison ended before the second started")

        let second = try LatentCommand.run(compare + ["--epochs", "1", "--seed", "3"])
        XCTAssertEqual(second.status, 1, "a second comparison must be refused: \(second.stderr)")
        XCTAssertEqual(second.stderrLines.count, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("pid \(first.pid)"), second.stderr)
        // So is a `train` into one of the comparison's run directories.
        let train = try LatentCommand.run(arguments(out: out.appendingPathComponent("diagonal"), epochs: 1))
        XCTAssertEqual(train.status, 1, train.stderr)
        XCTAssertTrue(train.stderr.contains("pid \(first.pid)"), train.stderr)

        let finished = first.wait()
        XCTAssertEqual(finished.status, 0, finished.stderr)
        XCTAssertEqual(try epochs(in: out.appendingPathComponent("diagonal")), Array(1...20))
    }

    func epochs(in out: URL) throws -> [Int] {
        let text = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["epoch"] as? Int)
        }
    }
}

/// A `latent` process running in the background, its stderr kept in a file.
final class BackgroundLatent {
    let process = Process()
    let stderrURL: URL

    init(_ arguments: [String], in directory: URL) throws {
        stderrURL = directory.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: try LatentCommand.executable())
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Waits until the run directory's metrics file has `lines` lines (the run is under way), or fails.
    func waitForMetrics(in directory: URL, lines: Int, timeout: TimeInterval = 60) throws {
        let path = directory.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            let text = (try? Data(contentsOf: path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if text.split(separator: "\n").count >= lines { return }
            usleep(2_000)
        }
        throw Failure.notReached("\(lines) metrics lines in \(path.path)")
    }

    /// Waits until the process catches `signal` (its handler is installed, per /proc), polling closely.
    func waitForSignalHandler(_ signal: Int32, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
               let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16),
               mask & (1 << UInt64(signal - 1)) != 0 {
                return
            }
            usleep(200)
        }
        throw Failure.notReached("a handler of signal \(signal)")
    }

    /// Waits for the end; the status and what was written to stderr.
    func wait(timeout: TimeInterval = 180) -> (status: Int32, stderr: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        let text = (try? Data(contentsOf: stderrURL)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (process.terminationStatus, text)
    }

    enum Failure: Error { case notReached(String) }
}
