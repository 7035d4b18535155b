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

    func train(posterior: String, extra: [String] = []) throws -> URL {
        let out = root.appendingPathComponent(posterior)
        let r = try LatentCommand.run(["train", "--data", data.path, "--hidden", "8", "--latent", "2", "--batch", "10",
                                       "--iterations", "5", "--posterior", posterior, "--out", out.path] + extra)
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
            XCTAssertEqual(g["samples"] as? Int, 1)
            let snr = g["snr"] as! [String: Double]
            XCTAssertEqual(Set(snr.keys), ["mean_over_coordinates", "ratio_of_norms"])
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

    /// `--samples 1,3`: the standard, stl and dreg rows for every m and group, with "samples" and "snr", for a
    /// dense posterior and the mixture prior too.
    func testSamplesListMeasuresTheImportanceWeightedEstimators() throws {
        let run = try train(posterior: "full", extra: ["--model", "iwae", "--samples", "3", "--prior", "mixture",
                                                       "--components", "3", "--estimator", "dreg"])
        let r = try LatentCommand.run(["grad-variance", "--checkpoint", run.path, "--data", data.path, "--draws", "12",
                                       "--batch", "5", "--samples", "1,3", "--threads", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let groups = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["groups"]
            as! [[String: Any]]
        var seen = [String]()
        for g in groups {
            seen.append("\(g["samples"]!)/\(g["group"]!)/\(g["estimator"]!)")
            let snr = g["snr"] as! [String: Double]
            XCTAssertGreaterThan(snr["ratio_of_norms"]!, 0)
            XCTAssertGreaterThan(snr["mean_over_coordinates"]!, 0)
            for key in ["variance", "mse", "ratio"] { XCTAssertNotNil(g[key] as? Double, key) }
        }
        XCTAssertEqual(seen, ["1", "3"].flatMap { m in
            ["encoder", "decoder"].flatMap { g in ["standard", "stl", "dreg"].map { "\(m)/\(g)/\($0)" } }
        })
        let table = try LatentCommand.run(["grad-variance", "--checkpoint", run.path, "--data", data.path, "--draws",
                                           "4", "--batch", "2", "--samples", "2"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("SNR (ratio of norms)"), table.stdout)
    }

    func testBadSampleListsAreRefused() throws {
        let run = try train(posterior: "diagonal")
        for (list, expected) in [("0,10", "--samples must list sample counts between 1 and 1000 (got 0)"),
                                 ("10,10", "--samples lists 10 twice"), ("1,,2", "--samples")] {
            let r = try LatentCommand.run(["grad-variance", "--checkpoint", run.path, "--data", data.path,
                                           "--samples", list])
            XCTAssertNotEqual(r.status, 0, list)
            XCTAssertTrue(r.stderrLines.first?.contains(expected) ?? false, "\(list): \(r.stderr)")
        }
    }
}
