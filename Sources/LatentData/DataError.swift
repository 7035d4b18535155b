/// Problems with dataset files, each with what was expected and how to fix it.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case missingDirectory(path: String)
    case missingFile(path: String, expected: [String])
    case unreadable(path: String, reason: String)
    case corruptCompression(path: String, reason: String)
    case badMagic(path: String, found: UInt32, expected: UInt32)
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    case countMismatch(images: Int, labels: Int)
    case wrongImageSize(path: String, rows: Int, columns: Int, expected: Int)
    case badDimensions(path: String, rows: Int, columns: Int)
    case empty(path: String)

    public var description: String {
        switch self {
        case let .missingDirectory(path):
            return "dataset directory \(path) does not exist; install Fashion-MNIST with "
                + "`sudo apt-get install dataset-fashion-mnist` (or run scripts/setup.sh), or pass --data DIR"
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
        case let .countMismatch(images, labels):
            return "the image file holds \(images) images but the label file \(labels) labels; "
                + "use matching files of one dataset"
        case let .badDimensions(path, rows, columns):
            return "\(path) declares \(rows)×\(columns) images, which no IDX image file holds; the file is corrupt"
        case let .empty(path):
            return "\(path) holds no images; point --data at a complete dataset (or raise --train-limit/--test-limit)"
        case let .wrongImageSize(path, rows, columns, expected):
            return "\(path) holds \(rows)×\(columns) images (\(rows * columns) pixels), the model expects \(expected) inputs; "
                + "use 28×28 images or a model with matching --inputs"
        }
    }
}
