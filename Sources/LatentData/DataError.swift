/// Problems with dataset files, each with what was expected and how to fix it.
public enum DataError: Error, CustomStringConvertible, Equatable {
    /// The dataset directory does not exist (Fashion-MNIST not installed, or a wrong `--data`).
    case missingDirectory(path: String)
    /// The dataset path names a file where the directory of the four IDX files was expected.
    case notADirectory(path: String)
    /// A required file is absent from `path`; `expected` names it (found plain or with `.gz`).
    case missingFile(path: String, expected: [String])
    /// The file exists but cannot be read (permissions, or not a regular file).
    case unreadable(path: String, reason: String)
    /// The file starts with the gzip signature but zlib cannot inflate it; `reason` is zlib's.
    case corruptCompression(path: String, reason: String)
    /// The IDX header's magic number is not that of the expected kind of file (0x803 images, 0x801 labels).
    case badMagic(path: String, found: UInt32, expected: UInt32)
    /// The file holds fewer bytes than its header promises (`Int.max` expected when the promise overflows).
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    /// The image and label files of one split ("train" or "test") disagree on how many examples there are.
    case countMismatch(split: String, imagesPath: String, images: Int, labelsPath: String, labels: Int)
    /// The images are rows×columns, but the model expects `expected` pixels per image.
    case wrongImageSize(path: String, rows: Int, columns: Int, expected: Int)
    /// The IDX header declares an image size no image file holds (a side of 0 or of 2¹⁵ or more).
    case badDimensions(path: String, rows: Int, columns: Int)
    /// There are no images at `path` (a split of the dataset is empty): nothing to train or evaluate on.
    case empty(path: String)
    /// A label outside the class ids 0..<classes; `index` counts labels from 0.
    case labelOutOfRange(path: String, index: Int, value: Int, classes: Int)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .missingDirectory(path):
            return "dataset directory \(path) does not exist; install Fashion-MNIST with "
                + "`sudo apt-get install dataset-fashion-mnist` (or run scripts/setup.sh), or pass --data DIR"
        case let .notADirectory(path):
            return "dataset path \(path) is a file, not a directory; pass --data the directory that holds the four "
                + "IDX files (\(Dataset.fileNames.joined(separator: ", ")), optionally .gz)"
        case let .missingFile(path, expected):
            return "dataset file missing in \(path); expected \(expected.joined(separator: ", ")) (optionally .gz); "
                + "install with `sudo apt-get install dataset-fashion-mnist` or pass --data DIR"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason); check the file's permissions or pass another --data DIR"
        case let .corruptCompression(path, reason):
            return "\(path) is not a valid gzip file (\(reason)); re-download or reinstall the dataset "
                + "(`sudo apt-get install --reinstall dataset-fashion-mnist`)"
        case let .badMagic(path, found, expected):
            return "\(path) is not an IDX file of the expected kind (magic 0x\(String(found, radix: 16)), "
                + "expected 0x\(String(expected, radix: 16))); point --data at MNIST-style IDX files"
        case let .truncated(path, expected, found):
            return "\(path) is truncated: its header promises \(expected) bytes of data, the file has \(found); "
                + "re-download or reinstall the dataset"
        case let .countMismatch(split, imagesPath, images, labelsPath, labels):
            return "the \(split) files disagree: \(imagesPath) holds \(images) images but \(labelsPath) holds "
                + "\(labels) labels; use the matching image and label files of one dataset"
        case let .badDimensions(path, rows, columns):
            return "\(path) declares \(rows)×\(columns) images, which no IDX image file holds; the file is corrupt"
        case let .empty(path):
            return "\(path) holds no images; point --data at a complete dataset (or raise --train-limit/--test-limit)"
        case let .wrongImageSize(path, rows, columns, expected):
            let side = Int(Double(expected).squareRoot().rounded())
            let shape = side * side == expected ? "\(side)×\(side)" : "\(expected)-pixel"
            return "\(path) holds \(rows)×\(columns) images (\(rows * columns) pixels), but the model expects "
                + "\(expected) pixels per image (\(shape)); point --data at a dataset of \(shape) images "
                + "such as Fashion-MNIST or MNIST"
        case let .labelOutOfRange(path, index, value, classes):
            return "\(path): label \(index) is \(value), but labels are class ids 0…\(classes - 1); the file is "
                + "corrupt or not a \(classes)-class dataset such as Fashion-MNIST"
        }
    }
}
