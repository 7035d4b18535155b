import Foundation
import LatentCore
import LatentData
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The binary checkpoint format: round trip, every kind of damage, and atomic saving.
final class CheckpointTests: XCTestCase {
    let configuration = ModelConfiguration(inputs: 4, hidden: [3], latent: 2, activation: .tanh)

    func makeCheckpoint(seed: UInt64 = 1) -> Checkpoint {
        let n = VariationalAutoencoder<Float>.parameterCount(configuration)
        var rng = RandomStream(seed: seed, purpose: .sampling)
        func values() -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        var p = values()
        // Values whose bit patterns must survive exactly.
        p[0] = -0.0
        p[1] = .leastNonzeroMagnitude
        p[2] = .greatestFiniteMagnitude
        p[3] = -.infinity
        let state = TrainingState(seed: 12_345_678_901, step: 777, epoch: 3, batch: 64, learningRate: 3e-4, threads: 2,
                                  data: "/data/with \"quotes\" and ünïcode",
                                  trainSet: ImageSetFingerprint(count: 20_000, crc32: 0xDEAD_BEEF),
                                  testSet: ImageSetFingerprint(count: 1, crc32: 0))
        return Checkpoint(configuration: configuration, state: state, parameters: p, firstMoment: values(),
                          secondMoment: values().map(abs))
    }

    func assertSame(_ a: Checkpoint, _ b: Checkpoint, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.configuration, b.configuration, file: file, line: line)
        XCTAssertEqual(a.state, b.state, file: file, line: line)
        XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.firstMoment.map(\.bitPattern), b.firstMoment.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.secondMoment.map(\.bitPattern), b.secondMoment.map(\.bitPattern), file: file, line: line)
    }

    func expectError(_ bytes: [UInt8], _ expected: CheckpointError, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.decode(bytes, path: "ck"), what, file: file, line: line) { error in
            XCTAssertEqual(error as? CheckpointError, expected, what, file: file, line: line)
        }
    }

    /// Little-endian UInt32 at `offset` replaced by `value`, and the trailing CRC-32 recomputed (a well-formed file).
    func withWord(_ bytes: [UInt8], at offset: Int, _ value: UInt32, fixChecksum: Bool = true) -> [UInt8] {
        var b = bytes
        for i in 0..<4 { b[offset + i] = UInt8((value >> (8 * UInt32(i))) & 0xFF) }
        return fixChecksum ? resealed(b) : b
    }

    func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = Array(bytes.dropLast(4))
        let crc = Checkpoint.crc32(b)
        for i in 0..<4 { b.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
        return b
    }

    func testEncodeDecodeRoundTrip() throws {
        let original = makeCheckpoint()
        let bytes = try original.encoded()
        XCTAssertEqual(Array(bytes.prefix(8)), Array("LATENTCK".utf8))
        assertSame(try Checkpoint.decode(bytes, path: "ck"), original)
        XCTAssertNotEqual(try makeCheckpoint(seed: 2).encoded(), bytes)
    }

    /// Equal checkpoints must encode to equal bytes, so that two runs with one seed write identical files
    /// (the header is JSON: its key order must not depend on the process's hash seed).
    func testEncodingIsDeterministic() throws {
        let original = makeCheckpoint()
        let first = try original.encoded()
        for attempt in 0..<5 {
            let again = try original.encoded()
            XCTAssertTrue(again == first, "encoding \(attempt + 2) differs from the first: header "
                          + "\(String(decoding: again[16..<headerEnd(again)], as: UTF8.self)) vs "
                          + "\(String(decoding: first[16..<headerEnd(first)], as: UTF8.self))")
        }
    }

    func testCRC32KnownValue() {
        // The CRC-32 check value of "123456789".
        XCTAssertEqual(Checkpoint.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(Checkpoint.crc32([]), 0)
    }

    func headerEnd(_ bytes: [UInt8]) -> Int {
        let length = Int(bytes[12]) | Int(bytes[13]) << 8 | Int(bytes[14]) << 16 | Int(bytes[15]) << 24
        return 16 + length
    }

    func testFlippedByteIsChecksumMismatch() throws {
        let bytes = try makeCheckpoint().encoded()
        let start = headerEnd(bytes)
        // Every byte of the parameters, moments and checksum.
        for position in start..<bytes.count {
            var bad = bytes
            bad[position] ^= 0x10
            expectError(bad, .checksumMismatch(path: "ck"), "flip at \(position)")
        }
        // Inside the JSON header: still an error (never a crash, never a silently different checkpoint).
        for position in 16..<start {
            var bad = bytes
            bad[position] ^= 0x01
            XCTAssertThrowsError(try Checkpoint.decode(bad, path: "ck"), "header flip at \(position)") { error in
                XCTAssertNotNil(error as? CheckpointError, "header flip at \(position): \(error)")
            }
        }
    }

    func testTruncatedIsTruncated() throws {
        let bytes = try makeCheckpoint().encoded()
        for length in 0..<bytes.count {
            expectError(Array(bytes.prefix(length)), .truncated(path: "ck"), "cut to \(length) of \(bytes.count)")
        }
    }

    func testBadMagic() throws {
        var bytes = try makeCheckpoint().encoded()
        bytes.replaceSubrange(0..<8, with: Array("NOTLATEN".utf8))
        expectError(bytes, .badMagic(path: "ck"), "replaced magic")
        expectError(Array("hello, world".utf8), .badMagic(path: "ck"), "short text file")
        expectError(Array("{\"a\": 1, \"b\": [1, 2, 3], \"c\": \"a long enough JSON document\"}".utf8),
                    .badMagic(path: "ck"), "JSON file")
    }

    func testNewerVersion() throws {
        let bytes = try makeCheckpoint().encoded()
        let next = Checkpoint.version + 1
        expectError(withWord(bytes, at: 8, next),
                    .newerVersion(path: "ck", found: next, supported: Checkpoint.version), "version \(next)")
        expectError(withWord(bytes, at: 8, 0xFFFF_FFFF, fixChecksum: false),
                    .newerVersion(path: "ck", found: 0xFFFF_FFFF, supported: Checkpoint.version), "version max")
    }

    func testSizeMismatchAndBadHeaderWithValidChecksum() throws {
        // Buffers that do not fit the configuration, sealed with a correct checksum.
        let small = Checkpoint(configuration: configuration, state: makeCheckpoint().state, parameters: [1, 2, 3],
                               firstMoment: [0, 0, 0], secondMoment: [0, 0, 0])
        let required = VariationalAutoencoder<Float>.parameterCount(configuration)
        expectError(try small.encoded(), .sizeMismatch(path: "ck", expected: required, found: 3), "three parameters")
        // A header that is not the expected JSON, sealed with a correct checksum.
        var bytes = Array("LATENTCK".utf8)
        let header = Array("{}".utf8)
        bytes += [1, 0, 0, 0, UInt8(header.count), 0, 0, 0] + header + [0, 0, 0, 0]
        XCTAssertThrowsError(try Checkpoint.decode(resealed(bytes), path: "ck")) { error in
            guard case .badHeader(let path, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "ck")
            XCTAssertFalse("\(error)".contains("\n"), "\(error)")
        }
    }

    func testParameterCountMatchesModel() {
        for c in [configuration, ModelConfiguration(inputs: 7, hidden: [5, 4, 3], latent: 3),
                  ModelConfiguration(inputs: 784, hidden: [300, 300], latent: 10)] {
            XCTAssertEqual(VariationalAutoencoder<Float>.parameterCount(c), VariationalAutoencoder<Float>(c).parameterCount)
        }
    }

    func testSaveLoadReplaceAndNoTemporaryLeft() throws {
        let dir = try TemporaryDirectory()
        let first = makeCheckpoint(seed: 1), second = makeCheckpoint(seed: 2)
        try first.save(to: dir.path)
        let file = dir.file(Checkpoint.fileName)
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".tmp"))
        assertSame(try Checkpoint.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), path: file), first)
        assertSame(try Checkpoint.load(from: dir.path), first)
        assertSame(try Checkpoint.load(from: file), first)
        // A stale temporary file from an interrupted save does not get in the way, and is gone afterwards.
        try IDXFixture.write([1, 2, 3], to: file + ".tmp")
        try second.save(to: dir.path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".tmp"))
        assertSame(try Checkpoint.load(from: dir.path), second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [Checkpoint.fileName])
    }

    func isUnwritable(_ error: Error) -> Bool {
        if case .unwritable? = error as? CheckpointError { return true } else { return false }
    }

    func testSaveToUnwritablePathThrows() throws {
        let checkpoint = makeCheckpoint()
        // (Tests may run as root, so permissions cannot be relied on: use paths no one can create.)
        for path in ["/proc/latent-no-such-dir", "/proc/self/no-such-dir"] {
            XCTAssertThrowsError(try checkpoint.save(to: path), path) { error in
                XCTAssertTrue(self.isUnwritable(error), "\(path): \(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
        let dir = try TemporaryDirectory()
        let regularFile = dir.file("file")
        try IDXFixture.write([0], to: regularFile)
        XCTAssertThrowsError(try checkpoint.save(to: regularFile)) { XCTAssertTrue(self.isUnwritable($0), "\($0)") }
        XCTAssertThrowsError(try checkpoint.save(to: dir.file("missing/sub"))) { XCTAssertTrue(self.isUnwritable($0), "\($0)") }
        // A directory where the checkpoint file should be: the rename fails and the temporary file is removed.
        let blocked = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: blocked.file(Checkpoint.fileName), withIntermediateDirectories: false)
        try IDXFixture.write([0], to: blocked.file(Checkpoint.fileName + "/x"))
        XCTAssertThrowsError(try checkpoint.save(to: blocked.path)) { XCTAssertTrue(self.isUnwritable($0), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: blocked.file(Checkpoint.fileName + ".tmp")))
    }

    func testLoadMissing() throws {
        let dir = try TemporaryDirectory()
        XCTAssertThrowsError(try Checkpoint.load(from: dir.file("nope"))) {
            XCTAssertEqual($0 as? CheckpointError, .missing(path: dir.file("nope")))
        }
        XCTAssertThrowsError(try Checkpoint.load(from: dir.path)) {
            XCTAssertEqual($0 as? CheckpointError, .missing(path: dir.file(Checkpoint.fileName)))
        }
    }

    func testModelAndOptimizerRoundTrip() throws {
        let model = VariationalAutoencoder<Float>(configuration)
        model.initialize(seed: 3)
        let adam = Adam<Float>(count: model.parameterCount, learningRate: 1e-3)
        for i in 0..<model.parameterCount {
            adam.firstMoment[i] = Float(i) * 0.5
            adam.secondMoment[i] = Float(i) * 0.25
        }
        let state = TrainingState(seed: 3, step: 10, epoch: 1, batch: 5, learningRate: 1e-3, threads: 1, data: "d",
                                  trainSet: ImageSetFingerprint(count: 50, crc32: 1),
                                  testSet: ImageSetFingerprint(count: 5, crc32: 2))
        let bytes = try model.checkpoint(adam: adam, state: state).encoded()
        let restored = VariationalAutoencoder<Float>(configuration)
        let restoredAdam = Adam<Float>(count: model.parameterCount, learningRate: 1e-3)
        restored.load(try Checkpoint.decode(bytes, path: "ck"), adam: restoredAdam)
        XCTAssertEqual(restored.store.parameters.array, model.store.parameters.array)
        XCTAssertEqual(restoredAdam.firstMoment.array, adam.firstMoment.array)
        XCTAssertEqual(restoredAdam.secondMoment.array, adam.secondMoment.array)
    }

    func testErrorDescriptionsAreSingleLines() {
        let all: [CheckpointError] = [
            .missing(path: "/p"), .unwritable(path: "/p", reason: "No such file or directory"), .badMagic(path: "/p"),
            .newerVersion(path: "/p", found: 2, supported: 1), .truncated(path: "/p"), .checksumMismatch(path: "/p"),
            .sizeMismatch(path: "/p", expected: 3, found: 2), .badHeader(path: "/p", reason: "bad"),
            .obsoleteCovariance(path: "/p", found: 1),
        ]
        for e in all {
            XCTAssertFalse(e.description.isEmpty)
            XCTAssertFalse(e.description.contains("\n"), e.description)
        }
    }

    /// Format 1 stored the covariance family's full k×k A: such a file is refused with its own message (not read as
    /// the lower-triangular head, nor reported as corrupt), while format-1 files of the other families still load.
    func testFormatOneCovarianceIsRefusedOtherFamiliesLoad() throws {
        for posterior in PosteriorKind.allCases {
            let configuration = ModelConfiguration(model: .vae, posterior: posterior, inputs: 4, hidden: [3], latent: 3)
            let n = VariationalAutoencoder<Float>.parameterCount(configuration)
            let values = (0..<n).map { Float($0) / Float(n) }
            let current = Checkpoint(configuration: configuration, state: makeCheckpoint().state, parameters: values,
                                     firstMoment: values, secondMoment: values)
            let bytes = try current.encoded()
            XCTAssertEqual(Array(bytes[8..<12]), [UInt8(Checkpoint.version), 0, 0, 0])
            assertSame(try Checkpoint.decode(bytes, path: "ck"), current)
            let formatOne = withWord(bytes, at: 8, 1)
            if posterior == .covariance {
                expectError(formatOne, .obsoleteCovariance(path: "ck", found: 1), "format-1 covariance")
                XCTAssertTrue("\(CheckpointError.obsoleteCovariance(path: "ck", found: 1))".contains("retrain"))
            } else {
                assertSame(try Checkpoint.decode(formatOne, path: "ck"), current)
            }
        }
        // A format-1 covariance file has the old head's parameter count (k + k² outputs): still refused as obsolete.
        let old = ModelConfiguration(model: .vae, posterior: .covariance, inputs: 4, hidden: [3], latent: 3)
        // k + k² outputs against 2k + k(k−1)/2, each with 3 weights and a bias.
        let oldCount = VariationalAutoencoder<Float>.parameterCount(old) + ((3 + 9) - (6 + 3)) * (3 + 1)
        let values = [Float](repeating: 0.5, count: oldCount)
        let bytes = try Checkpoint(configuration: old, state: makeCheckpoint().state, parameters: values,
                                   firstMoment: values, secondMoment: values).encoded()
        expectError(withWord(bytes, at: 8, 1), .obsoleteCovariance(path: "ck", found: 1), "format-1 head size")
    }
}
