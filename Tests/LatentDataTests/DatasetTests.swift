import Foundation
import LatentData
import TestSupport
import XCTest

/// `Dataset.load` on synthetic MNIST-layout directories, and on the installed Fashion-MNIST.
final class DatasetTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir = nil }

    /// Writes the four standard files; `gzip` chooses which of them are compressed.
    func writeDataset(train: Int = 6, test: Int = 4, rows: Int = 28, columns: Int = 28, trainLabels: Int? = nil,
                      testLabels: Int? = nil, gzip: [Bool] = [false, false, false, false], skip: Int? = nil) throws {
        let d = rows * columns
        let files: [[UInt8]] = [
            IDXFixture.imageFile(count: train, rows: rows, columns: columns, pixels: IDXFixture.randomPixels(train * d, seed: 1)),
            IDXFixture.labelFile((0..<(trainLabels ?? train)).map { UInt8($0 % 10) }),
            IDXFixture.imageFile(count: test, rows: rows, columns: columns, pixels: IDXFixture.randomPixels(test * d, seed: 2)),
            IDXFixture.labelFile((0..<(testLabels ?? test)).map { UInt8(9 - $0 % 10) }),
        ]
        for (i, name) in Dataset.fileNames.enumerated() where i != skip {
            if gzip[i] {
                try IDXFixture.write(try IDXFixture.gzip(files[i]), to: dir.file(name + ".gz"))
            } else {
                try IDXFixture.write(files[i], to: dir.file(name))
            }
        }
    }

    func expectDataError(_ body: () throws -> Dataset, _ expected: DataError, file: StaticString = #filePath,
                         line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? DataError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), "multi-line description: \(error)", file: file, line: line)
        }
    }

    func testLoadsPlainFiles() throws {
        try writeDataset()
        let data = try Dataset.load(directory: dir.path)
        XCTAssertEqual(data.train.count, 6)
        XCTAssertEqual(data.test.count, 4)
        XCTAssertEqual(data.train.pixels, IDXFixture.randomPixels(6 * 784, seed: 1))
        XCTAssertEqual(data.test.pixels, IDXFixture.randomPixels(4 * 784, seed: 2))
        XCTAssertEqual(data.trainLabels, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(data.testLabels, [9, 8, 7, 6])
    }

    func testLoadsGzipAndMixedFiles() throws {
        try writeDataset(gzip: [true, false, true, true])
        let data = try Dataset.load(directory: dir.path)
        XCTAssertEqual(data.train.pixels, IDXFixture.randomPixels(6 * 784, seed: 1))
        XCTAssertEqual(data.testLabels, [9, 8, 7, 6])
    }

    func testCountMismatchNamesTheSplitAndItsFiles() throws {
        try writeDataset(train: 6, trainLabels: 5)
        let trainImages = dir.file(Dataset.fileNames[0]), trainLabels = dir.file(Dataset.fileNames[1])
        expectDataError({ try Dataset.load(directory: dir.path) },
                        .countMismatch(split: "train", imagesPath: trainImages, images: 6, labelsPath: trainLabels,
                                       labels: 5))
        dir = try TemporaryDirectory()
        try writeDataset(test: 4, testLabels: 7, gzip: [true, true, true, true])
        let testImages = dir.file(Dataset.fileNames[2] + ".gz"), testLabels = dir.file(Dataset.fileNames[3] + ".gz")
        expectDataError({ try Dataset.load(directory: dir.path) },
                        .countMismatch(split: "test", imagesPath: testImages, images: 4, labelsPath: testLabels,
                                       labels: 7))
        let mismatch = DataError.countMismatch(split: "test", imagesPath: testImages, images: 4, labelsPath: testLabels,
                                               labels: 7)
        let message = "\(mismatch)"
        for part in ["test", testImages, testLabels, "4 images", "7 labels"] {
            XCTAssertTrue(message.contains(part), "\(message) lacks \(part)")
        }
    }

    func testLabelsMustBeClassIds() throws {
        try writeDataset()
        let path = dir.file(Dataset.fileNames[3])
        try IDXFixture.write(IDXFixture.labelFile([9, 0, 200, 3]), to: path)
        expectDataError({ try Dataset.load(directory: dir.path) },
                        .labelOutOfRange(path: path, index: 2, value: 200, classes: 10))
        let message = "\(DataError.labelOutOfRange(path: path, index: 2, value: 200, classes: 10))"
        for part in [path, "label 2 is 200", "0…9"] {
            XCTAssertTrue(message.contains(part), "\(message) lacks \(part)")
        }
        // 10 is the first value past the class ids; 9 is the last one.
        try IDXFixture.write(IDXFixture.labelFile([9, 9, 9, 10]), to: path)
        expectDataError({ try Dataset.load(directory: dir.path) },
                        .labelOutOfRange(path: path, index: 3, value: 10, classes: 10))
        try IDXFixture.write(IDXFixture.labelFile([9, 9, 9, 9]), to: path)
        XCTAssertEqual(try Dataset.load(directory: dir.path).testLabels, [9, 9, 9, 9])
    }

    func testMissingDirectory() {
        let path = dir.file("does-not-exist")
        expectDataError({ try Dataset.load(directory: path) }, .missingDirectory(path: path))
    }

    func testRegularFileInsteadOfDirectory() throws {
        let path = dir.file("a-file")
        try IDXFixture.write([1, 2, 3], to: path)
        expectDataError({ try Dataset.load(directory: path) }, .notADirectory(path: path))
        let message = "\(DataError.notADirectory(path: path))"
        XCTAssertTrue(message.contains("not a directory"), message)
        XCTAssertFalse(message.contains("does not exist"), message)
    }

    func testMissingFile() throws {
        for skip in 0..<4 {
            dir = try TemporaryDirectory()
            try writeDataset(skip: skip)
            expectDataError({ try Dataset.load(directory: dir.path) },
                            .missingFile(path: dir.path, expected: [Dataset.fileNames[skip]]))
        }
    }

    func testWrongImageSize() throws {
        try writeDataset(rows: 10, columns: 10)
        expectDataError({ try Dataset.load(directory: dir.path, expectedPixels: 784) },
                        .wrongImageSize(path: dir.file(Dataset.fileNames[0]), rows: 10, columns: 10, expected: 784))
        // Without an expected size the same files load.
        let data = try Dataset.load(directory: dir.path, expectedPixels: nil)
        XCTAssertEqual(data.train.pixelsPerImage, 100)
        XCTAssertEqual(try Dataset.load(directory: dir.path, expectedPixels: 100).test.count, 4)
    }

    /// The message says what the model needs (784 = 28×28 pixels) and names no flag that does not exist.
    func testWrongImageSizeMessageGivesTheRealFix() {
        let error = DataError.wrongImageSize(path: "/d/train-images-idx3-ubyte", rows: 20, columns: 20, expected: 784)
        let message = "\(error)"
        for part in ["20×20", "400 pixels", "784 pixels", "28×28", "--data"] {
            XCTAssertTrue(message.contains(part), "\(message) lacks \(part)")
        }
        XCTAssertFalse(message.contains("--inputs"), "latent has no --inputs flag: \(message)")
    }

    func testCorruptGzipInDataset() throws {
        try writeDataset(gzip: [true, true, true, true])
        let path = dir.file(Dataset.fileNames[2] + ".gz")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes = Array(bytes.prefix(bytes.count / 2))
        try IDXFixture.write(bytes, to: path)
        XCTAssertThrowsError(try Dataset.load(directory: dir.path)) { error in
            guard case .corruptCompression(let p, _)? = error as? DataError else {
                return XCTFail("expected corruptCompression, got \(error)")
            }
            XCTAssertEqual(p, path)
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testEveryErrorDescriptionIsOneLine() {
        let all: [DataError] = [
            .missingDirectory(path: "/x"), .missingFile(path: "/x", expected: ["a", "b"]),
            .unreadable(path: "/x", reason: "denied"), .corruptCompression(path: "/x", reason: "invalid distance"),
            .badMagic(path: "/x", found: 0x1234, expected: 0x803), .truncated(path: "/x", expectedBytes: 10, foundBytes: 3),
            .countMismatch(split: "train", imagesPath: "/x/i", images: 3, labelsPath: "/x/l", labels: 2),
            .wrongImageSize(path: "/x", rows: 10, columns: 10, expected: 784), .notADirectory(path: "/x"),
            .labelOutOfRange(path: "/x", index: 0, value: 200, classes: 10),
        ]
        for e in all {
            XCTAssertFalse(e.description.isEmpty)
            XCTAssertFalse(e.description.contains("\n"), e.description)
        }
    }

    func testImageSetPrefixAndSubset() {
        let set = ImageSet(count: 3, rows: 1, columns: 2, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(set.prefix(2).pixels, [1, 2, 3, 4])
        XCTAssertEqual(set.prefix(2).count, 2)
        XCTAssertEqual(set.prefix(nil).count, 3)
        XCTAssertEqual(set.prefix(10).count, 3)
        XCTAssertEqual(set.subset([2, 0]).pixels, [5, 6, 1, 2])
        XCTAssertEqual(set.subset([]).count, 0)
    }

    /// The installed Fashion-MNIST (scripts/setup installs it): 60 000 / 10 000 images of 28×28, labels 0…9.
    func testFashionMNISTRealDatasetLoads() throws {
        let data = try Dataset.load()
        XCTAssertEqual(data.train.count, 60_000)
        XCTAssertEqual(data.test.count, 10_000)
        for set in [data.train, data.test] {
            XCTAssertEqual(set.rows, 28)
            XCTAssertEqual(set.columns, 28)
            XCTAssertEqual(set.pixels.count, set.count * 784)
        }
        XCTAssertEqual(data.trainLabels.count, 60_000)
        XCTAssertEqual(data.testLabels.count, 10_000)
        XCTAssertTrue(data.trainLabels.allSatisfy { $0 <= 9 })
        XCTAssertTrue(data.testLabels.allSatisfy { $0 <= 9 })
        // Fashion-MNIST is balanced: every class has 6000 training and 1000 test images.
        var trainCounts = [Int](repeating: 0, count: 10), testCounts = trainCounts
        for l in data.trainLabels { trainCounts[Int(l)] += 1 }
        for l in data.testLabels { testCounts[Int(l)] += 1 }
        XCTAssertEqual(trainCounts, [Int](repeating: 6000, count: 10))
        XCTAssertEqual(testCounts, [Int](repeating: 1000, count: 10))
    }
}
