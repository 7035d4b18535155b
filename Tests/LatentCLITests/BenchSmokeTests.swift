import Foundation
import XCTest

/// `latent-bench --smoke` (tiny shapes, one repetition) runs every section and writes every kind of row.
/// Timing thresholds are never asserted here: performance is measured by `latent-bench` itself on a quiet machine.
final class BenchSmokeTests: XCTestCase {
    /// Runs `bench --smoke [arguments] --json FILE`; returns what it printed and the JSON object it wrote.
    func runSmoke(_ bench: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line)
        throws -> (text: String, object: [String: Any]) {
        let json = NSTemporaryDirectory() + "bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.arguments = ["--smoke"] + arguments + ["--json", json]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text, file: file, line: line)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json)))
        return (text, object as! [String: Any])
    }

    /// The debug latent-bench, built next to `latent`.
    func debugBench() throws -> String {
        let latent = URL(fileURLWithPath: try LatentCommand.executable())
        let bench = latent.deletingLastPathComponent().appendingPathComponent("latent-bench").path
        // `swift build --build-tests` (what scripts/test.sh runs) builds every product, latent-bench included.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: bench),
                      "latent-bench is not built next to \(latent.path); run `swift build --build-tests`")
        return bench
    }

    func testBenchSmokeModePrintsEveryRow() throws {
        let (text, object) = try runSmoke(try debugBench())
        for heading in ["## GEMM", "## Cholesky", "## Training step", "## Strategies", "## Small-matrix pieces",
                        "## Thread scaling", "## Evaluation", "## Estimators", "## Machine drift"] {
            XCTAssertTrue(text.contains(heading), "missing section \(heading)")
        }
        let machine = try XCTUnwrap(object["machine"] as? [String: Any])
        for key in ["cpu", "cores", "blas", "blas_kernel", "blas_own_kernel"] {
            XCTAssertNotNil(machine[key], "machine lacks \(key)")
        }
        let start = try XCTUnwrap(machine["gemm_peak_start"] as? Double, "machine lacks gemm_peak_start")
        let end = try XCTUnwrap(machine["gemm_peak_end"] as? Double, "machine lacks gemm_peak_end")
        let drift = try XCTUnwrap(machine["drift"] as? Double, "machine lacks drift")
        XCTAssertGreaterThan(start, 0)
        XCTAssertEqual(drift, end / start - 1, accuracy: 1e-12, "drift is end / start − 1")
        let rows = object["rows"] as! [[String: Any]]
        let kinds = Set(rows.map { $0["kind"] as! String })
        // The pieces table times the step both ways only where OpenBLAS's kernel has small-matrix kernels.
        let kernel = machine["blas_kernel"] as? String ?? ""
        let smallKernels = ["SkylakeX", "Cooperlake", "SapphireRapids"].contains(kernel)
        XCTAssertEqual(kinds, Set(["gemm", "potrf", "batched_cholesky", "train_step", "strategy", "scaling", "eval_iwae", "estimator_cost"]
            + (smallKernels ? ["small_matrix_pieces"] : [])))
        let estimatorRows = rows.filter { $0["kind"] as? String == "estimator_cost" }
        XCTAssertEqual(Set(estimatorRows.compactMap { $0["name"] as? String }), ["stl", "dreg"])
        for row in estimatorRows { XCTAssertGreaterThan(row["speedup"] as? Double ?? 0, 0, "a paired estimator row") }
        for row in rows where row["kind"] as? String == "small_matrix_pieces" {
            XCTAssertGreaterThan(row["speedup"] as? Double ?? 0, 0, "a pieces row times both ways")
        }
        let strategies = rows.filter { $0["kind"] as? String == "strategy" }
        XCTAssertEqual(Set(strategies.compactMap { $0["parallelism"] as? String }), ["data", "tensor"])
        let scalingStrategies = Set(rows.filter { $0["kind"] as? String == "scaling" }
            .compactMap { $0["parallelism"] as? String })
        XCTAssertEqual(scalingStrategies, Set(["reference", "data", "tensor", "blas"]
            + (ProcessInfo.processInfo.activeProcessorCount > 1 ? ["independent"] : [])))
        let steps = rows.filter { $0["kind"] as? String == "train_step" }
        XCTAssertEqual(Set(steps.compactMap { $0["posterior"] as? String }), ["diagonal", "full", "covariance"])
        XCTAssertTrue(steps.contains { ($0["samples"] as? Int ?? 1) > 1 }, "an IWAE row")
        for row in steps {
            for key in ["batch", "latent", "posterior", "samples", "threads", "samples_per_second", "gflops",
                        "peak_fraction", "efficiency", "bytes_allocated_per_step"] {
                XCTAssertNotNil(row[key], "train_step row lacks \(key)")
            }
            XCTAssertGreaterThan(row["samples_per_second"] as? Double ?? 0, 0)
            if row["parallelism"] as? String == "tensor" {
                XCTAssertGreaterThan(row["efficiency_unsynchronized"] as? Double ?? 0, 0,
                                     "tensor rows also time their GEMMs without the stages' barriers")
            }
        }
        let scaling = rows.filter { $0["kind"] as? String == "scaling" }
        XCTAssertTrue(scaling.contains { $0["competing_process"] as? Bool == true }, "a row under competition")
        XCTAssertTrue(scaling.contains { $0["competing_process"] as? Bool == false })
        for row in scaling where row["parallelism"] as? String == "independent" {
            XCTAssertGreaterThan(row["speedup"] as? Double ?? 0, 0, "the independent copies' row is timed against one")
            XCTAssertEqual(row["competing_process"] as? Bool, false)
        }
        for row in scaling where row["competing_process"] as? Bool == false && row["threads"] as? Int ?? 1 > 1
            && row["parallelism"] as? String != "independent" {
            XCTAssertGreaterThan(row["gemm_speedup"] as? Double ?? 0, 0, "quiet scaling rows time the GEMMs alone")
            if row["parallelism"] as? String == "tensor" {
                XCTAssertGreaterThan(row["gemm_speedup_unsynchronized"] as? Double ?? 0, 0,
                                     "the tensor row also times its GEMMs without the stages' barriers")
            } else {
                XCTAssertNil(row["gemm_speedup_unsynchronized"], "only tensor parallelism has stages to drop")
            }
        }
    }

    /// `--only` runs just the sections named (and the drift table, which every run ends with); an unknown section is
    /// refused with the list of sections.
    func testOnlyRunsTheSectionsNamed() throws {
        let bench = try debugBench()
        let (text, object) = try runSmoke(bench, ["--only", "cholesky,eval"])
        for heading in ["## Cholesky", "## Evaluation", "## Machine drift"] {
            XCTAssertTrue(text.contains(heading), "missing section \(heading)")
        }
        for heading in ["## GEMM", "## Training step", "## Strategies", "## Thread scaling"] {
            XCTAssertFalse(text.contains(heading), "\(heading) was not asked for")
        }
        let rows = object["rows"] as! [[String: Any]]
        XCTAssertEqual(Set(rows.map { $0["kind"] as! String }), ["potrf", "batched_cholesky", "eval_iwae"])
        let machine = try XCTUnwrap(object["machine"] as? [String: Any])
        XCTAssertGreaterThan(machine["gemm_peak_start"] as? Double ?? 0, 0, "the peak is timed without the GEMM table")

        let (status, _, message) = try run(bench, ["--smoke", "--only", "scaling,gemms"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(message.contains("unknown section 'gemms'") && message.contains("gemm, cholesky"), message)
    }

    /// A `--json` path that cannot be written is refused before any table runs, naming the path; a missing
    /// directory is created.
    func testJSONPathIsCheckedBeforeTheRun() throws {
        let bench = try debugBench()
        let root = NSTemporaryDirectory() + "bench-json-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/a-file"
        FileManager.default.createFile(atPath: file, contents: Data())
        for path in [file + "/bench.json", root] {
            let (status, printed, message) = try run(bench, ["--smoke", "--json", path])
            XCTAssertEqual(status, 1, message)
            XCTAssertTrue(message.hasPrefix("error: cannot write \(path)") && message.contains("--json"), message)
            XCTAssertFalse(printed.contains("##"), "no table runs before the refusal: \(printed)")
        }
        let nested = root + "/new/bench.json"
        let (status, _, message) = try run(bench, ["--smoke", "--only", "cholesky", "--json", nested])
        XCTAssertEqual(status, 0, message)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: nested))))
    }

    /// Runs `bench arguments`; its exit status, standard output and standard error.
    func run(_ bench: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.arguments = arguments
        let error = Pipe(), output = Pipe()
        process.standardError = error
        process.standardOutput = output
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let message = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, printed, message)
    }

    /// Acceptance: no allocation in the training step. The release build (what users run; a debug build boxes
    /// generic values) allocates nothing per step after warm-up, with every posterior, with importance samples, on
    /// one and two threads, for data and tensor parallelism and single-threaded BLAS, and at batch 32 of the full
    /// model with its GEMMs in small-matrix pieces (where the kernel has them). scripts/test.sh builds it.
    func testReleaseTrainingStepAllocatesNothing() throws {
        let debug = URL(fileURLWithPath: try LatentCommand.executable()).deletingLastPathComponent()
        let bench = debug.deletingLastPathComponent().appendingPathComponent("release/latent-bench").path
        guard FileManager.default.isExecutableFile(atPath: bench) else {
            XCTFail("no release latent-bench at \(bench): run `swift build -c release --product latent-bench` " +
                    "(scripts/test.sh does)")
            return
        }
        let rows = try runSmoke(bench).object["rows"] as! [[String: Any]]
        let steps = rows.filter {
            ["train_step", "scaling", "small_matrix_pieces", "estimator_cost"].contains($0["kind"] as? String)
                && (["data", "tensor"].contains($0["parallelism"] as? String) || $0["threads"] as? Int == 1)
        }
        XCTAssertGreaterThanOrEqual(steps.count, 10)
        XCTAssertTrue(steps.contains { $0["threads"] as? Int == 2 }, "a 2-thread row")
        XCTAssertTrue(steps.contains { $0["parallelism"] as? String == "tensor" }, "a tensor-parallel row")
        XCTAssertTrue(steps.contains { $0["kind"] as? String == "estimator_cost" }, "STL and DReG steps")
        for row in steps {
            let what = "\(row["kind"]!) batch \(row["batch"]!) \(row["posterior"]!) m = \(row["samples"]!) " +
                "\(row["threads"]!) threads \(row["parallelism"]!)"
            XCTAssertEqual(row["bytes_allocated_per_step"] as? Double, 0, what)
            XCTAssertEqual(row["allocations_per_step"] as? Double, 0, what)
        }
    }
}
