import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentData

/// The fingerprint a checkpoint records of its data: the count and the CRC-32 of the images' IDX bytes.
final class ImageSetFingerprintTests: XCTestCase {
    /// The CRC-32 of an IDX image file, computed by the checkpoints' own table-driven CRC (not zlib's).
    func crc(_ bytes: [UInt8]) -> UInt32 { CRC32.checksum(bytes) }

    func testIsTheCRCOfTheDecompressedFileAndOfThePrefixAsAFile() throws {
        let dir = try TemporaryDirectory()
        let pixels = IDXFixture.randomPixels(5 * 12, seed: 4)
        let file = IDXFixture.imageFile(count: 5, rows: 3, columns: 4, pixels: pixels)
        try IDXFixture.write(try IDXFixture.gzip(file), to: dir.file("images.gz"))
        let images = try IDXReader.images(path: dir.file("images.gz"))
        XCTAssertEqual(ImageSetFingerprint(images), ImageSetFingerprint(count: 5, crc32: crc(file)))
        // With a limit, the fingerprint is that of the IDX file holding only the images used.
        let two = IDXFixture.imageFile(count: 2, rows: 3, columns: 4, pixels: Array(pixels.prefix(24)))
        XCTAssertEqual(ImageSetFingerprint(images.prefix(2)), ImageSetFingerprint(count: 2, crc32: crc(two)))
    }

    func testChangesWithAnyPixelOrTheShape() {
        let pixels = IDXFixture.randomPixels(4 * 6, seed: 9)
        let original = ImageSetFingerprint(ImageSet(count: 4, rows: 2, columns: 3, pixels: pixels))
        for index in [0, 11, 23] {
            var changed = pixels
            changed[index] ^= 1
            XCTAssertNotEqual(ImageSetFingerprint(ImageSet(count: 4, rows: 2, columns: 3, pixels: changed)), original)
        }
        XCTAssertNotEqual(ImageSetFingerprint(ImageSet(count: 4, rows: 3, columns: 2, pixels: pixels)), original)
        XCTAssertEqual(ImageSetFingerprint(ImageSet(count: 4, rows: 2, columns: 3, pixels: pixels)), original)
    }
}
