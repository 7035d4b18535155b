import Foundation
import LatentCore
import XCTest

/// End-to-end runs of the built `latent` executable on a tiny synthetic dataset.
final class CLITests: XCTestCase {
    /// One temporary root per test; removed afterwards.
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-cli-tests-\(UUID().uuidString)")
        try SyntheticDataset.write(to: root.appendingPathComponent("data"))
    }

    override func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func trainArguments(out: URL, iterations: Int = 20, extra: [String] = []) -> [String] {
        ["train", "--data", data.path, "--hidden", "16", "--latent", "3", "--iterations", "\(iterations)",
         "--batch", "10", "--threads", "2", "--seed", "7", "--out", out.path] + extra
    }

    func train(out: URL, iterations: Int = 20, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try LatentCommand.run(trainArguments(out: out, iterations: iterations))
        XCTAssertTrue(r.exitedNormally && r.status == 0, "train failed (\(r.status)): \(r.stderr)", file: file, line: line)
        assertNoCrash(r, file: file, line: line)
    }

    func metrics(_ out: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func assertNoCrash(_ r: LatentCommand.Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(r.exitedNormally, "terminated by a signal: \(r.stderr)", file: file, line: line)
        for marker in ["Fatal error", "Swift runtime failure", "Stack dump", "Current stack trace", "Backtrace", "fatalError", "Illegal instruction",
                       "Segmentation fault"] {
            XCTAssertFalse(r.stderr.contains(marker), "stderr shows a crash (\(marker)): \(r.stderr)", file: file, line: line)
        }
    }

    /// A library error: non-zero exit, exactly one non-empty line on stderr, no crash.
    func assertCleanFailure(_ arguments: [String], mentioning words: [String] = [], file: StaticString = #filePath,
                            line: UInt = #line) throws {
        let r = try LatentCommand.run(arguments)
        let what = "latent \(arguments.joined(separator: " "))"
        assertNoCrash(r, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(what) succeeded", file: file, line: line)
        XCTAssertEqual(r.stderrLines.count, 1, "\(what): stderr must be exactly one line, got:\n\(r.stderr)",
                       file: file, line: line)
        for word in words {
            XCTAssertTrue(r.stderr.contains(word), "\(what): stderr does not mention \(word): \(r.stderr)", file: file, line: line)
        }
    }

    /// An argument validation error (ArgumentParser may add usage lines): non-zero exit, the first line is the
    /// error and names the flag, no crash.
    func assertValidationFailure(_ arguments: [String], flag: String, file: StaticString = #filePath,
                                 line: UInt = #line) throws {
        let r = try LatentCommand.run(arguments)
        let what = "latent \(arguments.joined(separator: " "))"
        assertNoCrash(r, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(what) succeeded", file: file, line: line)
        let first = r.stderrLines.first ?? ""
        XCTAssertTrue(first.contains("Error") || first.contains("error"), "\(what): first line \(first)", file: file, line: line)
        XCTAssertTrue(first.contains(flag), "\(what): first line does not name \(flag): \(first)", file: file, line: line)
    }

    // MARK: - (a) train

    func testTrainWritesCheckpointAndMetrics() throws {
        let out = root.appendingPathComponent("run")
        try train(out: out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint.tmp").path))
        let lines = try metrics(out)
        XCTAssertEqual(lines.count, 1, "20 iterations of batch 10 over 200 images are one epoch")
        let last = try XCTUnwrap(lines.last)
        for key in ["epoch", "step", "train_nelbo", "test_nelbo", "seconds", "samples_per_second"] {
            XCTAssertNotNil(last[key], "metrics.jsonl lacks \(key): \(last)")
        }
        XCTAssertEqual(last["epoch"] as? Int, 1)
        XCTAssertEqual(last["step"] as? Int, 20)
        for key in ["train_nelbo", "test_nelbo", "seconds", "samples_per_second"] {
            let v = try XCTUnwrap(last[key] as? Double, key)
            XCTAssertTrue(v.isFinite && v > 0, "\(key) = \(v)")
        }
        // A NELBO in nats for 784 Bernoulli pixels: positive and below the uniform-guess 784·log 2 plus the KL.
        let nelbo = try XCTUnwrap(last["test_nelbo"] as? Double)
        XCTAssertLessThan(nelbo, 784 * log(2.0) + 100)
    }

    func testCovarianceRunCountsFactorizationRetriesInMetrics() throws {
        let out = root.appendingPathComponent("covariance")
        let r = try LatentCommand.run(trainArguments(out: out, extra: ["--posterior", "covariance", "--jitter", "1e-3"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let retries = try XCTUnwrap(try metrics(out).last?["factorization_retries"] as? Int,
                                    "a covariance run reports its jitter retries")
        XCTAssertGreaterThanOrEqual(retries, 0)
        let diagonal = root.appendingPathComponent("diagonal")
        try train(out: diagonal)
        XCTAssertNil(try metrics(diagonal).last?["factorization_retries"], "only the covariance family factorizes")
    }

    /// More workers than cores still trains, but says once that it is slower and what to pass instead.
    func testMoreThreadsThanCoresWarnsAndStillTrains() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let out = root.appendingPathComponent("oversubscribed")
        let r = try LatentCommand.run(arguments(out: out, threads: cores + 1))
        XCTAssertEqual(r.status, 0, r.stderr)
        let warnings = r.stderrLines.filter { $0.hasPrefix("warning:") }
        XCTAssertEqual(warnings.count, 1, r.stderr)
        XCTAssertTrue(warnings.first?.contains("--threads \(cores + 1)") == true, r.stderr)
        XCTAssertTrue(warnings.first?.contains("--threads \(cores) ") == true, r.stderr)
        let fitting = try LatentCommand.run(arguments(out: root.appendingPathComponent("fitting"), threads: cores))
        XCTAssertEqual(fitting.status, 0, fitting.stderr)
        XCTAssertFalse(fitting.stderr.contains("warning:"), fitting.stderr)

        func arguments(out: URL, threads: Int) -> [String] {
            var arguments = trainArguments(out: out, iterations: 2)
            let i = arguments.firstIndex(of: "--threads")! + 1
            arguments[i] = "\(threads)"
            return arguments
        }
    }

    /// A batch larger than the training set trains on all of it each step, and says so once.
    func testBatchLargerThanTrainingSetSaysSo() throws {
        var arguments = trainArguments(out: root.appendingPathComponent("whole"), iterations: 2)
        arguments[arguments.firstIndex(of: "--batch")! + 1] = "500"
        let r = try LatentCommand.run(arguments)
        XCTAssertEqual(r.status, 0, r.stderr)
        let notes = r.stderrLines.filter { $0.hasPrefix("note: --batch 500 is more than the 200 training images") }
        XCTAssertEqual(notes.count, 1, r.stderr)
        let fitting = try LatentCommand.run(trainArguments(out: root.appendingPathComponent("part"), iterations: 2))
        XCTAssertEqual(fitting.status, 0, fitting.stderr)
        XCTAssertFalse(fitting.stderr.contains("note: --batch"), fitting.stderr)
    }

    // MARK: - (b) reproducibility

    /// Where OpenBLAS falls back to its generic kernel on a CPU that can run a wider one, `latent` runs the wider one
    /// (re-executed with OPENBLAS_CORETYPE) and says so; otherwise it keeps OpenBLAS's kernel. This test process
    /// links the same OpenBLAS without the re-execution, so its kernel is OpenBLAS's own choice.
    func testTrainRunsTheBLASKernelThisCPUCanAndNamesIt() throws {
        let own = BLASKernel.current
        let environment = ProcessInfo.processInfo.environment
        let replacement = BLASKernel.replacement(
            current: own, configuration: BLASThreads.configuration, cpuFlags: BLASKernel.cpuFlags(),
            userChoice: environment[BLASKernel.environmentVariable])
        let r = try LatentCommand.run(trainArguments(out: root.appendingPathComponent("kernel"), iterations: 1))
        XCTAssertEqual(r.status, 0, r.stderr)
        let start = try XCTUnwrap(r.stderrLines.first { $0.hasPrefix("training ") }, r.stderr)
        if let replacement {
            XCTAssertTrue(start.hasSuffix("BLAS kernel \(replacement) (OpenBLAS's own choice on this CPU: \(own))"),
                          start)
        } else {
            XCTAssertTrue(start.hasSuffix("BLAS kernel \(own)"), start)
        }
    }

    func testSameSeedSameThreadsIsReproducible() throws {
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        try train(out: a, iterations: 30)
        try train(out: b, iterations: 30)
        let ma = try metrics(a), mb = try metrics(b)
        XCTAssertEqual(ma.count, 2, "30 steps of 20 per epoch write two metrics lines")
        XCTAssertEqual(ma.count, mb.count)
        let timing: Set<String> = ["seconds", "samples_per_second", "eval_seconds"]
        for (la, lb) in zip(ma, mb) {
            XCTAssertEqual(Set(la.keys), Set(lb.keys))
            for key in la.keys where !timing.contains(key) {
                XCTAssertEqual("\(la[key]!)", "\(lb[key]!)", "metrics differ in \(key)")
            }
        }
        let ca = [UInt8](try Data(contentsOf: a.appendingPathComponent("checkpoint")))
        let cb = [UInt8](try Data(contentsOf: b.appendingPathComponent("checkpoint")))
        // The parameter and optimizer payload (after the JSON header; format: magic, version, header length, header).
        func payload(_ c: [UInt8]) -> ArraySlice<UInt8> {
            guard c.count >= 16 else { return [] }
            let length = Int(c[12]) | Int(c[13]) << 8 | Int(c[14]) << 16 | Int(c[15]) << 24
            return c.count >= 16 + length ? c[(16 + length)...].dropLast(4) : []
        }
        XCTAssertFalse(payload(ca).isEmpty)
        XCTAssertTrue(payload(ca) == payload(cb), "parameters or Adam moments differ between identical runs")
        XCTAssertTrue(ca == cb, "checkpoint files differ between identical runs (headers: "
                      + "\(String(decoding: ca.prefix(ca.count - payload(ca).count - 4).dropFirst(16), as: UTF8.self)) vs "
                      + "\(String(decoding: cb.prefix(cb.count - payload(cb).count - 4).dropFirst(16), as: UTF8.self)))")
    }

    // MARK: - (c) eval

    func testEvalPrintsOneJSONObject() throws {
        let out = root.appendingPathComponent("run")
        try train(out: out)
        let r = try LatentCommand.run(["eval", "--checkpoint", out.path, "--data", data.path, "--threads", "2", "--json",
                                       "--iw", "1,5"])
        assertNoCrash(r)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutLines.count, 1, "stdout: \(r.stdout)")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["nelbo", "kl", "rec", "examples"] { XCTAssertNotNil(object[key], "missing \(key): \(r.stdout)") }
        XCTAssertEqual(object["examples"] as? Int, 50)
        // Active units of the 3 latent dimensions, and −L_m for each m of --iw (finite, positive nats).
        let active = try XCTUnwrap(object["active_units"] as? Int, "active_units: \(r.stdout)")
        XCTAssertTrue((0...3).contains(active), "active_units \(active)")
        let iwae = try XCTUnwrap(object["iwae"] as? [String: Double], "iwae: \(r.stdout)")
        XCTAssertEqual(Set(iwae.keys), ["1", "5"])
        XCTAssertTrue(iwae.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(iwae)")
        let nelbo = try XCTUnwrap(object["nelbo"] as? Double), kl = try XCTUnwrap(object["kl"] as? Double)
        let rec = try XCTUnwrap(object["rec"] as? Double)
        XCTAssertTrue(kl >= 0 && rec > 0, "kl \(kl), rec \(rec)")
        XCTAssertEqual(nelbo, kl + rec, accuracy: 1e-9 * nelbo)
        // The checkpoint holds exactly the parameters that training evaluated at the end of its last epoch. `eval`
        // leaves OpenBLAS multi-threaded while training pins it to one thread, so the Float sums may be reassociated:
        // at most 784 roundings of a row's positive terms, 784·u relative.
        let test = try XCTUnwrap(try metrics(out).last?["test_nelbo"] as? Double)
        XCTAssertEqual(nelbo, test, accuracy: 784 * Double(Float.ulpOfOne) / 2 * test)
        // With single-threaded BLAS, as in training, the computation is the same one: the same number.
        let pinned = try LatentCommand.run(["eval", "--checkpoint", out.path, "--data", data.path, "--threads", "2", "--json"],
                                           environment: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        let pinnedObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(pinned.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(pinnedObject["nelbo"] as? Double), test, "eval of the checkpoint vs training's last evaluation")
        // Without --json: a table on stdout.
        let table = try LatentCommand.run(["eval", "--checkpoint", out.path, "--data", data.path, "--threads", "2"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("NELBO"), table.stdout)
    }

    // MARK: - (d) bad input

    func testMissingDataDirectory() throws {
        let out = root.appendingPathComponent("run")
        try assertCleanFailure(["train", "--data", root.appendingPathComponent("nowhere").path, "--iterations", "1",
                                "--out", out.path], mentioning: ["nowhere"])
    }

    func testInvalidFlagValues() throws {
        let out = root.appendingPathComponent("run").path
        let base = ["train", "--data", data.path, "--iterations", "1", "--out", out]
        try assertValidationFailure(base + ["--batch", "0"], flag: "--batch")
        try assertValidationFailure(base + ["--lr", "-1"], flag: "--lr")
        try assertValidationFailure(base + ["--lr=-1"], flag: "--lr")
        try assertValidationFailure(base + ["--lr", "nan"], flag: "--lr")
        try assertValidationFailure(base + ["--lr", "inf"], flag: "--lr")
        try assertValidationFailure(base + ["--latent", "0"], flag: "--latent")
        try assertValidationFailure(base + ["--threads", "0"], flag: "--threads")
        try assertValidationFailure(base + ["--hidden", "0"], flag: "--hidden")
        try assertValidationFailure(base + ["--hidden", "300,,300"], flag: "--hidden")
        try assertValidationFailure(base + ["--hidden", "300,"], flag: "--hidden")
        try assertValidationFailure(["eval", "--checkpoint", out, "--iw", "10,,100"], flag: "--iw")
        try assertValidationFailure(["compare", "--data", data.path, "--iterations", "1", "--posteriors",
                                     "diagonal,full,diagonal", "--out", out], flag: "--posteriors")
        try assertValidationFailure(["eval", "--checkpoint", out, "--limit", "0"], flag: "--limit")
        try assertValidationFailure(["compare", "--data", data.path, "--iterations", "1", "--iw", "-1", "--out", out],
                                    flag: "--iw")
        // Negative numbers are values, not flags (ArgumentParser's default said "Missing value for '--batch'").
        try assertValidationFailure(base + ["--batch", "-1"], flag: "--batch")
        // Flags that would change nothing are errors, not silently dropped.
        try assertValidationFailure(base + ["--components", "7"], flag: "--components")
        try assertValidationFailure(base + ["--jitter", "0.5"], flag: "--jitter")
        try assertValidationFailure(["compare", "--data", data.path, "--iterations", "1", "--posterior", "full",
                                     "--out", out], flag: "--posterior")
        try assertValidationFailure(["eval", "--checkpoint", out, "--iw", "10,10"], flag: "--iw")
        for (counts, bad) in [("10,0", 0), ("-3", -3)] {
            let r = try LatentCommand.run(["eval", "--checkpoint", out, "--iw", counts])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderrLines.first?.contains("--iw sample counts must be at least 1 (got \(bad))") == true,
                          r.stderr)
        }
        try assertValidationFailure(["compare", "--data", data.path, "--iterations", "1", "--posteriors",
                                     "diagonal,full", "--jitter", "0.01", "--out", out], flag: "--jitter")
        // A length whose step count would overflow.
        try assertCleanFailure(["train", "--data", data.path, "--out", out, "--epochs", "\(Int.max)"],
                               mentioning: ["--epochs"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a rejected run must not create its output")
    }

    /// A model far too large for any machine's memory is refused before anything is allocated (it used to trap).
    func testRunTooLargeForMemory() throws {
        try assertCleanFailure(["train", "--data", data.path, "--hidden", "1000000,1000000", "--iterations", "1",
                                "--out", root.appendingPathComponent("run").path], mentioning: ["GB", "--hidden"])
    }

    /// The preset's values are defaults: flags given beside it win, as they do for `eval --preset cs236`.
    func testFlagsBesidePresetOverrideIt() throws {
        let out = root.appendingPathComponent("run")
        let r = try LatentCommand.run(["train", "--preset", "cs236", "--data", data.path, "--hidden", "16",
                                       "--latent", "3", "--batch", "10", "--iterations", "2", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let options = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("options.json"))) as? [String: Any])
        let configuration = try XCTUnwrap(options["configuration"] as? [String: Any])
        XCTAssertEqual(configuration["hidden"] as? [Int], [16])
        XCTAssertEqual(configuration["latent"] as? Int, 3)
        XCTAssertEqual(options["batch"] as? Int, 10)
        XCTAssertEqual(options["iterations"] as? Int, 2)
    }

    /// A new run in a directory that holds another removes the old checkpoint first: when the new run fails before
    /// its own first checkpoint, no old model is left beside the new options for eval or --resume to pick up.
    func testFailedRunDoesNotLeaveThePreviousRunsCheckpoint() throws {
        let out = root.appendingPathComponent("run")
        try train(out: out)
        let diverging = try LatentCommand.run(trainArguments(out: out, extra: ["--lr", "1e30"]))
        assertNoCrash(diverging)
        XCTAssertEqual(diverging.status, 1, "a learning rate of 1e30 must stop the run: \(diverging.stderr)")
        XCTAssertTrue(diverging.stderr.contains("replacing the previous run"), diverging.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint").path))
        try assertCleanFailure(["eval", "--checkpoint", out.path, "--data", data.path], mentioning: ["no checkpoint"])
    }

    /// A relative --data is stored absolute, so the run resumes (and evaluates) from any working directory.
    func testRelativeDataPathIsStoredAbsolute() throws {
        let out = root.appendingPathComponent("run")
        let r = try LatentCommand.run(["train", "--data", "data", "--hidden", "16", "--latent", "3", "--iterations",
                                       "2", "--batch", "10", "--out", out.path], directory: root)
        XCTAssertEqual(r.status, 0, r.stderr)
        let resumed = try LatentCommand.run(["train", "--resume", out.path], directory: URL(fileURLWithPath: "/"))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
    }

    func testCorruptGzipImageFile() throws {
        let path = data.appendingPathComponent(SyntheticDataset.fileNames[0] + ".gz")
        var bytes = [UInt8](try Data(contentsOf: path))
        for i in (bytes.count / 2)..<(bytes.count / 2 + 8) { bytes[i] ^= 0xFF }
        try Data(bytes).write(to: path)
        try assertCleanFailure(trainArguments(out: root.appendingPathComponent("run")), mentioning: ["gzip"])
    }

    func testTruncatedGzipImageFile() throws {
        let path = data.appendingPathComponent(SyntheticDataset.fileNames[2] + ".gz")
        let bytes = [UInt8](try Data(contentsOf: path))
        try Data(bytes.prefix(bytes.count / 3)).write(to: path)
        try assertCleanFailure(trainArguments(out: root.appendingPathComponent("run")))
    }

    func testUnwritableOutput() throws {
        try assertCleanFailure(trainArguments(out: URL(fileURLWithPath: "/proc/latent-x")), mentioning: ["/proc/latent-x"])
    }

    func testEvalMissingCheckpoint() throws {
        try assertCleanFailure(["eval", "--checkpoint", root.appendingPathComponent("no-run").path, "--data", data.path],
                               mentioning: ["no-run"])
    }

    func testEvalCorruptCheckpoint() throws {
        let out = root.appendingPathComponent("run")
        try train(out: out)
        let path = out.appendingPathComponent("checkpoint")
        var bytes = [UInt8](try Data(contentsOf: path))
        bytes[bytes.count - 10] ^= 0x01
        try Data(bytes).write(to: path)
        try assertCleanFailure(["eval", "--checkpoint", out.path, "--data", data.path], mentioning: ["checksum"])
    }

    /// Image-size fields of 2³²−1 overflow rows × columns; the reader must reject the file, not trap.
    func testImageHeaderWithHugeDimensions() throws {
        let images = SyntheticDataset.header([0x803, 200, 0xFFFF_FFFF, 0xFFFF_FFFF]) + [UInt8](repeating: 0, count: 64)
        try SyntheticDataset.write(to: data, trainImages: images)
        try assertCleanFailure(trainArguments(out: root.appendingPathComponent("run")))
    }

    /// A training set with no images must be rejected with a message, not divide by zero.
    func testEmptyTrainingSet() throws {
        try SyntheticDataset.write(to: data, train: 0)
        try assertCleanFailure(trainArguments(out: root.appendingPathComponent("run")))
    }

    func testWrongImageSizeForModel() throws {
        try SyntheticDataset.write(to: data, trainImages: SyntheticDataset.imageFile(count: 200, rows: 10, columns: 10, seed: 3))
        try assertCleanFailure(trainArguments(out: root.appendingPathComponent("run")), mentioning: ["10×10"])
    }

    func testExecutableIsFound() throws {
        let path = try LatentCommand.executable()
        let r = try LatentCommand.run(["--help"])
        XCTAssertEqual(r.status, 0, "\(path): \(r.stderr)")
        XCTAssertTrue(r.stdout.contains("train") && r.stdout.contains("eval"), r.stdout)
    }
}
