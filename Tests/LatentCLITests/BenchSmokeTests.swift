import Foundation
import XCTest

/// `latent-bench --smoke` (tiny shapes, one repetition) runs every section and writes every kind of row.
/// Timing thresholds are never asserted here: performance is measured by `latent-bench` itself on a quiet machine.
final class BenchSmokeTests: XCTestCase {
    func testBenchSmokeModePrintsEveryRow() throws {
        let latent = URL(fileURLWithPath: try LatentCommand.executable())
        let bench = latent.deletingLastPathComponent().appendingPathComponent("latent-bench").path
        // `swift build --build-tests` (what scripts/test.sh runs) builds every product, latent-bench included.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: bench),
                      "latent-bench is not built next to \(latent.path); run `swift build --build-tests`")
        let json = NSTemporaryDirectory() + "bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bench)
        process.arguments = ["--smoke", "--json", json]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        for heading in ["## GEMM", "## Cholesky", "## Training step", "## Thread scaling", "## Evaluation"] {
            XCTAssertTrue(text.contains(heading), "missing section \(heading)")
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        XCTAssertNotNil(object["machine"])
        let rows = object["rows"] as! [[String: Any]]
        let kinds = Set(rows.map { $0["kind"] as! String })
        XCTAssertEqual(kinds, ["gemm", "potrf", "train_step", "scaling", "eval_iwae"])
        let steps = rows.filter { $0["kind"] as? String == "train_step" }
        XCTAssertEqual(Set(steps.compactMap { $0["posterior"] as? String }), ["diagonal", "full", "covariance"])
        XCTAssertTrue(steps.contains { ($0["samples"] as? Int ?? 1) > 1 }, "an IWAE row")
        for row in steps {
            for key in ["batch", "latent", "posterior", "samples", "threads", "samples_per_second", "gflops",
                        "efficiency", "bytes_allocated_per_step"] {
                XCTAssertNotNil(row[key], "train_step row lacks \(key)")
            }
            XCTAssertGreaterThan(row["samples_per_second"] as? Double ?? 0, 0)
        }
        let scaling = rows.filter { $0["kind"] as? String == "scaling" }
        XCTAssertTrue(scaling.contains { $0["competing_process"] as? Bool == true }, "a row under competition")
        XCTAssertTrue(scaling.contains { $0["competing_process"] as? Bool == false })
    }
}
