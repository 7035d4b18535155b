import Foundation
import XCTest

/// `--estimator` on `train` and `compare`: stored in the run's options, kept on resume, refused where it does not
/// apply, and absent from old runs meaning `standard`.
final class EstimatorCLITests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-estimator-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data)
    }

    override func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func arguments(_ out: URL, _ extra: [String]) -> [String] {
        ["train", "--data", data.path, "--hidden", "16", "--latent", "3", "--epochs", "1", "--batch", "20",
         "--threads", "2", "--seed", "7", "--out", out.path] + extra
    }

    func configuration(_ out: URL) throws -> [String: Any] {
        let options = try JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("options.json"))) as! [String: Any]
        return options["configuration"] as! [String: Any]
    }

    func testTrainStoresTheEstimatorAndResumesWithIt() throws {
        let out = root.appendingPathComponent("dreg")
        let r = try LatentCommand.run(arguments(out, ["--model", "iwae", "--samples", "3", "--estimator", "dreg"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("dreg gradient"), r.stderr)
        XCTAssertEqual(try configuration(out)["estimator"] as? String, "dreg")
        let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("dreg gradient"), resumed.stderr)
    }

    func testDefaultIsStandardAndAnOldRunWithoutTheKeyResumes() throws {
        let out = root.appendingPathComponent("old")
        XCTAssertEqual(try LatentCommand.run(arguments(out, [])).status, 0)
        XCTAssertEqual(try configuration(out)["estimator"] as? String, "standard")
        // A run written before the flag existed: no "estimator" in options.json.
        let url = out.appendingPathComponent("options.json")
        var options = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var configuration = options["configuration"] as! [String: Any]
        configuration["estimator"] = nil
        options["configuration"] = configuration
        try JSONSerialization.data(withJSONObject: options).write(to: url)
        let resumed = try LatentCommand.run(["train", "--resume", out.path, "--epochs", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("standard gradient"), resumed.stderr)
    }

    func testDReGOutsideIWAEAndUnknownNamesAreRefused() throws {
        for extra in [["--estimator", "dreg"], ["--model", "gmvae", "--components", "3", "--estimator", "dreg"],
                      ["--estimator", "reinforce"]] {
            let r = try LatentCommand.run(arguments(root.appendingPathComponent("x"), extra))
            XCTAssertNotEqual(r.status, 0, "\(extra) succeeded")
            XCTAssertTrue(r.stderrLines.first?.contains("--estimator") == true, "\(extra): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        }
    }

    func testSTLOnTheBoundNotesItsBiasAndCompareTakesTheFlag() throws {
        let stl = try LatentCommand.run(arguments(root.appendingPathComponent("stl"),
                                                  ["--model", "iwae", "--samples", "3", "--estimator", "stl"]))
        XCTAssertEqual(stl.status, 0, stl.stderr)
        XCTAssertTrue(stl.stderr.contains("--estimator stl is biased"), stl.stderr)
        let out = root.appendingPathComponent("compare")
        let compare = try LatentCommand.run(["compare", "--data", data.path, "--hidden", "16", "--latent", "2",
                                             "--iterations", "4", "--batch", "10", "--threads", "1", "--iw", "0",
                                             "--posteriors", "diagonal,full", "--estimator", "stl", "--out", out.path])
        XCTAssertEqual(compare.status, 0, compare.stderr)
        for family in ["diagonal", "full"] {
            XCTAssertEqual(try configuration(out.appendingPathComponent(family))["estimator"] as? String, "stl")
        }
    }
}
