import Foundation
import LatentCore
import XCTest

/// CRC-32 against its published check value and zlib's, and atomic replacement of a file.
final class FileTests: XCTestCase {
    func testCRC32CheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        // Continuing over a split gives the checksum of the whole.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let first = bytes[..<333].withUnsafeBytes { CRC32.checksum($0) }
        let whole = bytes[333...].withUnsafeBytes { CRC32.checksum($0, continuing: first) }
        XCTAssertEqual(whole, CRC32.checksum(bytes))
    }

    func testAtomicWriteReplacesAndLeavesNoTemporary() throws {
        let directory = NSTemporaryDirectory() + "latent-atomic-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.bin"
        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write([4, 5], to: path)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), [4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.bin"])
        XCTAssertThrowsError(try AtomicFile.write([1], to: directory + "/missing/out.bin")) { error in
            XCTAssertTrue("\(error)".contains("missing/out.bin"), "\(error)")
        }
    }
}
