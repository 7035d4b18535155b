import Foundation
import LatentData
import TestSupport
import XCTest

/// IDX files written by hand (plain and through the system's gzip), read back, and every way they can be broken.
final class IDXReaderTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir = nil }

    let pixels = IDXFixture.randomPixels(3 * 4 * 5, seed: 1)
    var imageBytes: [UInt8] { IDXFixture.imageFile(count: 3, rows: 4, columns: 5, pixels: pixels) }
    let labels: [UInt8] = [7, 0, 9]

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = dir.file(name)
        try IDXFixture.write(bytes, to: path)
        return path
    }

    /// Runs `body`, expecting a DataError equal to `expected` (or matching `match`), with a one-line description.
    func expectDataError<R>(_ body: @autoclosure () throws -> R, _ match: (DataError) -> Bool, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("\(what): no error thrown", file: file, line: line)
        } catch let error as DataError {
            XCTAssertTrue(match(error), "\(what): unexpected \(error)", file: file, line: line)
            XCTAssertFalse(error.description.isEmpty, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "\(what): multi-line description", file: file, line: line)
        } catch {
            XCTFail("\(what): not a DataError: \(error)", file: file, line: line)
        }
    }

    func testPlainImagesAndLabelsRoundTrip() throws {
        let set = try IDXReader.images(path: try write(imageBytes, "images"))
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual(set.rows, 4)
        XCTAssertEqual(set.columns, 5)
        XCTAssertEqual(set.pixelsPerImage, 20)
        XCTAssertEqual(set.pixels, pixels)
        XCTAssertEqual(try IDXReader.labels(path: try write(IDXFixture.labelFile(labels), "labels")), labels)
    }

    func testGzipImagesAndLabelsRoundTrip() throws {
        let set = try IDXReader.images(path: try write(try IDXFixture.gzip(imageBytes), "images.gz"))
        XCTAssertEqual(set.pixels, pixels)
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual(try IDXReader.labels(path: try write(try IDXFixture.gzip(IDXFixture.labelFile(labels)), "l.gz")),
                       labels)
        // Gzip is recognized by its signature, not by the file name.
        XCTAssertEqual(try IDXReader.images(path: try write(try IDXFixture.gzip(imageBytes), "no-suffix")).pixels, pixels)
    }

    func testLargeGzipSpanningSeveralInflateChunks() throws {
        // More than the reader's 1 MiB output chunk, and incompressible enough to need several input passes.
        let count = 1500, big = IDXFixture.randomPixels(count * 28 * 28, seed: 9)
        let bytes = IDXFixture.imageFile(count: count, rows: 28, columns: 28, pixels: big)
        let set = try IDXReader.images(path: try write(try IDXFixture.gzip(bytes), "big.gz"))
        XCTAssertEqual(set.count, count)
        XCTAssertEqual(set.pixels, big)
    }

    func testConcatenatedGzipMembers() throws {
        let bytes = imageBytes
        let half = bytes.count / 2
        let joined = try IDXFixture.gzip(Array(bytes[0..<half])) + IDXFixture.gzip(Array(bytes[half...]))
        XCTAssertEqual(try IDXReader.readBytes(path: try write(joined, "two-members.gz")), bytes)
    }

    func testHeaderOnlyFilesGiveEmptySets() throws {
        let set = try IDXReader.parseImages(IDXFixture.imageFile(count: 0, rows: 28, columns: 28, pixels: []), path: "x")
        XCTAssertEqual(set.count, 0)
        XCTAssertEqual(set.pixels, [])
        XCTAssertEqual(try IDXReader.parseLabels(IDXFixture.labelFile([]), path: "y"), [])
    }

    func testExtraTrailingBytesAreIgnored() throws {
        let set = try IDXReader.parseImages(imageBytes + [1, 2, 3], path: "x")
        XCTAssertEqual(set.pixels, pixels)
    }

    func testWrongMagic() throws {
        // (A label file long enough to hold an image header.)
        let tenLabels = IDXFixture.labelFile([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        expectDataError(try IDXReader.images(path: try write(tenLabels, "labels-as-images")),
                        { $0 == .badMagic(path: self.dir.file("labels-as-images"), found: 0x801, expected: 0x803) },
                        "label file read as images")
        expectDataError(try IDXReader.labels(path: try write(imageBytes, "images-as-labels")),
                        { $0 == .badMagic(path: self.dir.file("images-as-labels"), found: 0x803, expected: 0x801) },
                        "image file read as labels")
        let text = Array("this is not an IDX file at all".utf8)
        expectDataError(try IDXReader.parseImages(text, path: "t"), {
            if case .badMagic = $0 { return true } else { return false }
        }, "text as images")
        // Right magic but a 0×0 image size is not a valid image file.
        expectDataError(try IDXReader.parseImages(IDXFixture.imageFile(count: 1, rows: 0, columns: 5, pixels: []),
                                                  path: "z"), { _ in true }, "zero rows")
    }

    func testTruncatedPayload() throws {
        expectDataError(try IDXReader.images(path: try write(Array(imageBytes.dropLast()), "short")),
                        { $0 == .truncated(path: self.dir.file("short"), expectedBytes: 60, foundBytes: 59) },
                        "one pixel missing")
        expectDataError(try IDXReader.parseImages(Array(imageBytes.prefix(10)), path: "h"),
                        { $0 == .truncated(path: "h", expectedBytes: 16, foundBytes: 10) }, "header cut")
        expectDataError(try IDXReader.parseImages([], path: "e"),
                        { $0 == .truncated(path: "e", expectedBytes: 16, foundBytes: 0) }, "empty file")
        expectDataError(try IDXReader.parseLabels(IDXFixture.labelFile(labels, count: 5), path: "l"),
                        { $0 == .truncated(path: "l", expectedBytes: 5, foundBytes: 3) }, "labels short")
        expectDataError(try IDXReader.parseLabels([0, 0, 8], path: "l3"),
                        { $0 == .truncated(path: "l3", expectedBytes: 8, foundBytes: 3) }, "label header cut")
        // A header claiming the maximum count must fail cleanly, not allocate or crash.
        let huge = IDXFixture.imageFile(count: Int(UInt32.max), rows: 28, columns: 28, pixels: [1, 2, 3])
        expectDataError(try IDXReader.parseImages(huge, path: "huge"),
                        { $0 == .truncated(path: "huge", expectedBytes: Int(UInt32.max) * 784, foundBytes: 3) },
                        "huge count")
        expectDataError(try IDXReader.parseLabels(IDXFixture.labelFile([1], count: Int(UInt32.max)), path: "hl"),
                        { if case .truncated = $0 { return true } else { return false } }, "huge label count")
        // Every prefix of a valid file fails with `truncated` (never crashes, never returns short data).
        for cut in 0..<imageBytes.count {
            expectDataError(try IDXReader.parseImages(Array(imageBytes.prefix(cut)), path: "p"),
                            { if case .truncated = $0 { return true } else { return false } }, "image prefix \(cut)")
        }
    }

    func isCorrupt(_ e: DataError) -> Bool { if case .corruptCompression = e { return true } else { return false } }

    func testCorruptGzip() throws {
        let gz = try IDXFixture.gzip(imageBytes)
        // A gzip stream cut anywhere after its signature is corrupt.
        for cut in 2..<gz.count {
            expectDataError(try IDXReader.readBytes(path: try write(Array(gz.prefix(cut)), "cut.gz")), isCorrupt,
                            "gzip cut at \(cut) of \(gz.count)")
        }
        // A flipped byte in the compressed data or trailer: either zlib's checks fail, or (CRC-32 and length
        // verified) the output is exactly the original.
        for position in 10..<gz.count {
            var bad = gz
            bad[position] ^= 0x5A
            let path = try write(bad, "flip.gz")
            do {
                let out = try IDXReader.readBytes(path: path)
                XCTAssertEqual(out, imageBytes, "flip at \(position) decoded to different bytes without an error")
            } catch let error as DataError {
                XCTAssertTrue(isCorrupt(error), "flip at \(position): \(error)")
                XCTAssertFalse(error.description.contains("\n"))
            }
        }
        // Flipped bytes in the middle of the stream specifically must be detected.
        var middle = gz
        for i in (gz.count / 2 - 2)...(gz.count / 2 + 2) { middle[i] ^= 0xFF }
        expectDataError(try IDXReader.images(path: try write(middle, "middle.gz")), isCorrupt, "middle flipped")
        // The bare signature.
        expectDataError(try IDXReader.readBytes(path: try write([0x1F, 0x8B], "sig.gz")), isCorrupt, "signature only")
        // Garbage after a complete member.
        expectDataError(try IDXReader.readBytes(path: try write(gz + [0x00, 0x01, 0x02, 0x03, 0x04], "trail.gz")),
                        isCorrupt, "trailing garbage")
    }

    func testMissingAndUnreadableFiles() throws {
        let missing = dir.file("nope")
        expectDataError(try IDXReader.images(path: missing),
                        { $0 == .missingFile(path: missing, expected: ["nope"]) }, "missing file")
        // A directory where a file is expected cannot be read.
        let sub = dir.file("subdir")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        expectDataError(try IDXReader.images(path: sub), { _ in true }, "directory as file")
    }
}
