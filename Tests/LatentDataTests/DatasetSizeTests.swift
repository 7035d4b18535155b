import Foundation
@testable import LatentData
import TestSupport
import XCTest

/// A data set's sizes read from its IDX headers alone (the first bytes inflated for a gzip file), so that the memory
/// check can come before the data set is decompressed.
final class DatasetSizeTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir = nil }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = dir.file(name)
        try IDXFixture.write(bytes, to: path)
        return path
    }

    func testPlainAndGzipHeaders() throws {
        let images = IDXFixture.imageFile(count: 7, rows: 3, columns: 5, pixels: IDXFixture.randomPixels(105, seed: 1))
        let plain = try XCTUnwrap(IDXFileSize(path: try write(images, "plain")))
        XCTAssertEqual(plain, IDXFileSize(count: 7, itemBytes: 15, headerBytes: 16))
        let compressed = try IDXFixture.gzip(images)
        let gzip = try XCTUnwrap(IDXFileSize(path: try write(compressed, "images.gz")))
        XCTAssertEqual([gzip.count, gzip.itemBytes, gzip.headerBytes, gzip.fileBytes], [7, 15, 16, compressed.count])
        XCTAssertTrue(gzip.compressed)
        let labels = try XCTUnwrap(IDXFileSize(path: try write(try IDXFixture.gzip(IDXFixture.labelFile([1, 2])), "l")))
        XCTAssertEqual([labels.count, labels.itemBytes, labels.headerBytes], [2, 1, 8])
    }

    /// What the header declares is what counts, however little follows it: 2³² − 1 images of 28 × 28 pixels are
    /// 3.4 TB before a byte of them is inflated.
    func testADeclaredSizeIsReadWithoutTheData() throws {
        let bytes = try IDXFixture.gzip(IDXFixture.header([0x803, UInt32.max, 28, 28]) + [1, 2, 3])
        let size = try XCTUnwrap(IDXFileSize(path: try write(bytes, "huge.gz")))
        XCTAssertEqual(size.payloadBytes, Int(UInt32.max) * 784)
    }

    func testNotAnIDXFileHasNoSize() throws {
        XCTAssertNil(IDXFileSize(path: try write(Array("not an IDX file at all".utf8), "text")))
        XCTAssertNil(IDXFileSize(path: try write([0x1F, 0x8B, 0x08, 0, 1, 2], "broken.gz")))
        XCTAssertNil(IDXFileSize(path: try write(IDXFixture.header([0x803, 1, 0, 28]), "no-rows")))
        XCTAssertNil(IDXFileSize(path: dir.file("missing")))
    }

    func testADirectorysFourFilesInLoadOrder() throws {
        let names = Dataset.fileNames
        let train = IDXFixture.imageFile(count: 3, rows: 2, columns: 2, pixels: Array(repeating: 0, count: 12))
        _ = try write(try IDXFixture.gzip(train), names[0] + ".gz")
        _ = try write(IDXFixture.labelFile([0, 1, 2]), names[1])
        _ = try write(IDXFixture.imageFile(count: 1, rows: 2, columns: 2, pixels: [0, 0, 0, 0]), names[2])
        let missing = DatasetSize(directory: dir.path)
        XCTAssertNil(missing, "a missing file leaves loading to name it")
        _ = try write(IDXFixture.labelFile([5]), names[3])
        let size = try XCTUnwrap(DatasetSize(directory: dir.path))
        XCTAssertEqual(size.files.map(\.count), [3, 3, 1, 1])
        let loaded = DatasetSize(try Dataset.load(directory: dir.path, expectedPixels: 4))
        XCTAssertEqual(size, loaded.withFileSizes(of: size))
    }
}

extension DatasetSize {
    /// This size with the files' on-disk sizes and compression of `other` (a loaded data set has neither).
    func withFileSizes(of other: DatasetSize) -> DatasetSize {
        var copy = self
        copy.trainImages.fileBytes = other.trainImages.fileBytes
        copy.trainImages.compressed = other.trainImages.compressed
        copy.trainLabels.fileBytes = other.trainLabels.fileBytes
        copy.testImages.fileBytes = other.testImages.fileBytes
        copy.testLabels.fileBytes = other.testLabels.fileBytes
        return copy
    }
}
