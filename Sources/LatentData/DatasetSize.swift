import Foundation
internal import CZlib

/// What an IDX file declares in its header, read without loading it: a data set's memory is known before it is
/// decompressed, so a run too large for its memory can be refused first.
package struct IDXFileSize: Sendable, Equatable {
    /// Items (images or labels) the header declares.
    package var count: Int
    /// Bytes per item: rows × columns for images, 1 for labels.
    package var itemBytes: Int
    /// The header's own bytes (16 for images, 8 for labels).
    package var headerBytes: Int
    /// The file's size on disk.
    package var fileBytes: Int
    /// Whether the file is gzip-compressed.
    package var compressed: Bool

    /// The items' bytes: what the loaded set keeps.
    package var payloadBytes: Int { count * itemBytes }
    /// The file's bytes once decompressed (header and items).
    package var decompressedBytes: Int { headerBytes + payloadBytes }

    /// A file as it would be once loaded (for a data set already in memory).
    package init(count: Int, itemBytes: Int, headerBytes: Int) {
        (self.count, self.itemBytes, self.headerBytes) = (count, itemBytes, headerBytes)
        fileBytes = headerBytes + count * itemBytes
        compressed = false
    }

    /// The header of the IDX file at `path` (the first bytes inflated when it is gzip-compressed); nil when it cannot
    /// be read or is not an IDX image or label file, which loading then reports in full.
    package init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), (try? handle.seek(toOffset: 0)) != nil,
              let head = try? handle.read(upToCount: 1 << 16) else { return nil }
        var bytes = [UInt8](head)
        compressed = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        if compressed {
            guard let inflated = IDXFileSize.inflatePrefix(bytes, count: 16) else { return nil }
            bytes = inflated
        }
        guard bytes.count >= 8 else { return nil }
        func word(_ at: Int) -> Int { Int(IDXReader.bigEndian(bytes, at)) }
        fileBytes = Int(size)
        count = word(4)
        switch UInt32(word(0)) {
        case IDXReader.labelMagic:
            (itemBytes, headerBytes) = (1, 8)
        case IDXReader.imageMagic:
            guard bytes.count >= 16 else { return nil }
            let rows = word(8), columns = word(12)
            guard rows > 0, columns > 0, rows < 1 << 15, columns < 1 << 15 else { return nil }
            (itemBytes, headerBytes) = (rows * columns, 16)
        default:
            return nil
        }
    }

    /// The first `count` bytes of a gzip stream's content (fewer when it ends first), or nil when it is not one.
    static func inflatePrefix(_ input: [UInt8], count: Int) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return nil
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: count)
        var input = input
        let produced: Int = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                while stream.avail_out > 0 {
                    let status = inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK else { break }
                }
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<produced])
    }
}

/// The four IDX files of a data set as their headers declare them (`Dataset.load` reads them in this order).
package struct DatasetSize: Sendable, Equatable {
    package var trainImages: IDXFileSize
    package var trainLabels: IDXFileSize
    package var testImages: IDXFileSize
    package var testLabels: IDXFileSize

    /// Every file in the order `Dataset.load` reads them.
    package var files: [IDXFileSize] { [trainImages, trainLabels, testImages, testLabels] }

    /// The headers of the files `Dataset.load(directory:)` would read; nil when one is missing or unreadable
    /// (loading then names the problem).
    package init?(directory: String) {
        func header(_ name: String) -> IDXFileSize? { Dataset.file(name, in: directory).flatMap(IDXFileSize.init(path:)) }
        let names = Dataset.fileNames
        guard let trainImages = header(names[0]), let trainLabels = header(names[1]),
              let testImages = header(names[2]), let testLabels = header(names[3]) else { return nil }
        (self.trainImages, self.trainLabels, self.testImages, self.testLabels) =
            (trainImages, trainLabels, testImages, testLabels)
    }

    /// The sizes of a data set already in memory.
    package init(_ dataset: Dataset) {
        trainImages = IDXFileSize(count: dataset.train.count, itemBytes: dataset.train.pixelsPerImage, headerBytes: 16)
        trainLabels = IDXFileSize(count: dataset.trainLabels.count, itemBytes: 1, headerBytes: 8)
        testImages = IDXFileSize(count: dataset.test.count, itemBytes: dataset.test.pixelsPerImage, headerBytes: 16)
        testLabels = IDXFileSize(count: dataset.testLabels.count, itemBytes: 1, headerBytes: 8)
    }
}
