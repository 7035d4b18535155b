import Foundation

/// A labelled train/test image dataset in the MNIST layout (Fashion-MNIST by default).
public struct Dataset: Sendable {
    /// The training images.
    public var train: ImageSet
    /// The class id (0..<10) of each training image, in the same order.
    public var trainLabels: [UInt8]
    /// The test images: the held-out split that evaluation reports on.
    public var test: ImageSet
    /// The class id (0..<10) of each test image, in the same order.
    public var testLabels: [UInt8]

    /// Where Debian's `dataset-fashion-mnist` installs the IDX files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    @usableFromInline package static let fileNames = [
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    ]

    /// A dataset from images and labels already in memory, taken as they are (``load(directory:expectedPixels:)``
    /// is what checks them).
    public init(train: ImageSet, trainLabels: [UInt8], test: ImageSet, testLabels: [UInt8]) {
        self.train = train
        self.trainLabels = trainLabels
        self.test = test
        self.testLabels = testLabels
    }

    /// Labels are class ids below this: the ten classes of MNIST and Fashion-MNIST.
    @usableFromInline package static let classCount = 10

    /// The path of the IDX file `name` in `directory`, its `.gz` form first; nil when neither exists.
    package static func file(_ name: String, in directory: String) -> String? {
        for candidate in [name + ".gz", name] {
            let path = (directory as NSString).appendingPathComponent(candidate)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// Loads the four standard files from `directory` (plain or `.gz`), checking magic numbers, counts, image size
    /// and that every label is a class id.
    public static func load(directory: String = defaultDirectory, expectedPixels: Int? = 784) throws -> Dataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw DataError.missingDirectory(path: directory)
        }
        guard isDirectory.boolValue else { throw DataError.notADirectory(path: directory) }
        func locate(_ name: String) throws -> String {
            guard let path = file(name, in: directory) else {
                throw DataError.missingFile(path: directory, expected: [name])
            }
            return path
        }
        let trainImagesPath = try locate(fileNames[0])
        let testImagesPath = try locate(fileNames[2])
        let trainLabelsPath = try locate(fileNames[1]), testLabelsPath = try locate(fileNames[3])
        let train = try IDXReader.images(path: trainImagesPath)
        let trainLabels = try classLabels(path: trainLabelsPath)
        let test = try IDXReader.images(path: testImagesPath)
        let testLabels = try classLabels(path: testLabelsPath)
        guard train.count == trainLabels.count else {
            throw DataError.countMismatch(split: "train", imagesPath: trainImagesPath, images: train.count,
                                          labelsPath: trainLabelsPath, labels: trainLabels.count)
        }
        guard test.count == testLabels.count else {
            throw DataError.countMismatch(split: "test", imagesPath: testImagesPath, images: test.count,
                                          labelsPath: testLabelsPath, labels: testLabels.count)
        }
        if let expectedPixels {
            for (set, path) in [(train, trainImagesPath), (test, testImagesPath)] where set.pixelsPerImage != expectedPixels {
                throw DataError.wrongImageSize(path: path, rows: set.rows, columns: set.columns, expected: expectedPixels)
            }
        }
        return Dataset(train: train, trainLabels: trainLabels, test: test, testLabels: testLabels)
    }

    /// The labels of an IDX label file, each checked to be a class id below `classCount`.
    static func classLabels(path: String) throws -> [UInt8] {
        let labels = try IDXReader.labels(path: path)
        if let index = labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError.labelOutOfRange(path: path, index: index, value: Int(labels[index]), classes: classCount)
        }
        return labels
    }
}
