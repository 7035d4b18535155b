import Foundation
import LatentData
import XCTest

/// Replays the idx fuzz target's inputs (Tests/Fuzz/corpus/idx, the seeds, and Tests/Fuzz/regressions/idx, every
/// crash scripts/fuzz.sh found) through the IDX reader the way the target does: each must parse or throw a DataError.
final class FuzzRegressionTests: XCTestCase {
    /// Tests/Fuzz, found from this file's path.
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// The non-hidden files of Tests/Fuzz/`kind`/idx, sorted by name.
    func inputs(_ kind: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent("idx")
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            .filter { !$0.hasPrefix(".") }
            .map { ("\(kind)/idx/\($0)", [UInt8](try Data(contentsOf: directory.appendingPathComponent($0)))) }
    }

    /// What the idx target does with one input; returns whether it parsed as images or as labels.
    @discardableResult
    func replay(_ name: String, _ input: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> Bool {
        func expectDataError(_ error: Error, _ what: String) {
            XCTAssertTrue(error is DataError, "\(name): \(what) threw \(type(of: error)): \(error)",
                          file: file, line: line)
            XCTAssertFalse(String(describing: error).isEmpty, "\(name): empty description", file: file, line: line)
        }
        // gunzip is also fed inputs without the gzip signature (readBytes would not call it for those).
        var inflated: [UInt8]?
        do { inflated = try IDXReader.gunzip(input, path: name) } catch { expectDataError(error, "gunzip") }
        let isGzip = input.count >= 2 && input[0] == 0x1F && input[1] == 0x8B
        guard let bytes = isGzip ? inflated : input else { return false }
        var parsed = false
        do {
            let set = try IDXReader.parseImages(bytes, path: name)
            XCTAssertEqual(set.pixels.count, set.count * set.rows * set.columns, name, file: file, line: line)
            XCTAssertEqual(Array(bytes[16..<(16 + set.pixels.count)]), set.pixels, name, file: file, line: line)
            parsed = true
        } catch {
            expectDataError(error, "parseImages")
        }
        do {
            let labels = try IDXReader.parseLabels(bytes, path: name)
            XCTAssertEqual(Array(bytes[8..<(8 + labels.count)]), labels, name, file: file, line: line)
            parsed = true
        } catch {
            expectDataError(error, "parseLabels")
        }
        return parsed
    }

    /// The seeds are valid IDX files (plain, gzip and two-member gzip): each parses as images or labels.
    func testSeedCorpusParses() throws {
        let seeds = try inputs("corpus")
        XCTAssertGreaterThanOrEqual(seeds.count, 6, "Tests/Fuzz/corpus/idx is missing seeds")
        XCTAssertTrue(seeds.contains { $0.name.hasSuffix(".gz") }, "no gzip seed")
        for (name, bytes) in seeds {
            XCTAssertTrue(replay(name, bytes), "\(name) is a seed but parses neither as images nor as labels")
        }
    }

    /// Every input the fuzzer ever crashed on (none yet) must now be rejected or parsed, without a trap.
    func testRegressionInputsDoNotCrash() throws {
        for (name, bytes) in try inputs("regressions") { replay(name, bytes) }
    }

    /// Every prefix of every seed: truncated files (and truncated gzip streams) must throw, not trap.
    func testTruncatedSeedsDoNotCrash() throws {
        for (name, bytes) in try inputs("corpus") {
            for length in 0..<bytes.count { replay("\(name)[..<\(length)]", Array(bytes.prefix(length))) }
        }
    }
}
