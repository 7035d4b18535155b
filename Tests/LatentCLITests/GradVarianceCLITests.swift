import Foundation
import XCTest

/// `latent grad-variance` end to end on a tiny model: the JSON contract, and the one-line refusal for dense posteriors.
final class GradVarianceCLITests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-gv-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 100, test: 30)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func train(posterior: String) throws -> URL {
        let out = root.appendingPathComponent(posterior)
        let r = try LatentCommand.run(["train", "--data", data.path, "--hidden", "8", "--latent", "2", "--batch", "10",
                                       "--iterations", "5", "--posterior", posterior, "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func testJSONHasEveryGroupAndEstimator() throws {
        let run = try train(posterior: "diagonal")
        let r = try LatentCommand.run(["grad-variance", "--checkpoint", run.path, "--data", data.path, "--draws", "20",
                                       "--batch", "10", "--reference-draws", "40", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let groups = object["groups"] as! [[String: Any]]
        var seen = Set<String>()
        for g in groups {
            seen.insert("\(g["group"]!)/\(g["estimator"]!)")
            XCTAssertGreaterThanOrEqual(g["variance"] as! Double, 0)
            XCTAssertNotNil(g["mse"])
        }
        for group in ["encoder", "decoder"] {
            for estimator in ["reparametrization", "score_function", "score_function_baseline"] {
                XCTAssertTrue(seen.contains("\(group)/\(estimator)"), "missing \(group)/\(estimator)")
            }
        }
    }

    /// Draw counts past the limit are usage errors (2 × --draws used to overflow into a trap); a batch larger than
    /// the test set is a one-line error, before anything is allocated.
    func testHugeCountsAreRefusedWithTheLimit() throws {
        let run = try train(posterior: "diagonal")
        let base = ["grad-variance", "--checkpoint", run.path, "--data", data.path]
        for (flags, expected) in [(["--draws", "\(Int.max)"], "--draws must be at most 1000000 (got \(Int.max))"),
                                  (["--reference-draws", "\(Int.max)"], "--reference-draws must be at most 2000000"),
                                  (["--draws", "1000001"], "--draws must be at most 1000000")] {
            let r = try LatentCommand.run(base + flags, timeout: 30)
            XCTAssertTrue(r.exitedNormally, r.stderr)
            XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
            XCTAssertEqual(r.status, 64, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderrLines.first?.contains(expected) ?? false, "\(flags): \(r.stderr)")
        }
        let r = try LatentCommand.run(base + ["--batch", "\(Int.max)", "--draws", "2"], timeout: 30)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderrLines, ["error: --batch must be between 1 and the 30 test images available "
                                       + "(got \(Int.max))"])
    }

    func testDensePosteriorIsRefusedInOneLine() throws {
        let run = try train(posterior: "full")
        let r = try LatentCommand.run(["grad-variance", "--checkpoint", run.path, "--data", data.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("diagonal"), r.stderr)
    }
}
