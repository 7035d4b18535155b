import Foundation
internal import CZlib

/// Reads IDX files (the MNIST format), gzip-compressed or plain: unsigned-byte images (magic 0x803) and labels (0x801).
@usableFromInline package enum IDXReader {
    static let imageMagic: UInt32 = 0x0000_0803
    static let labelMagic: UInt32 = 0x0000_0801

    /// The bytes of a file, decompressed if it starts with the gzip signature.
    @usableFromInline package static func readBytes(path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError.missingFile(path: path, expected: [(path as NSString).lastPathComponent])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable(path: path, reason: "permission denied or not a regular file")
        }
        let bytes = [UInt8](data)
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B { return try gunzip(bytes, path: path) }
        return bytes
    }

    /// Inflates a whole gzip member (and any concatenated members) with zlib, failing on corrupt or truncated input.
    @usableFromInline package static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
        var stream = z_stream()
        var status = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw DataError.corruptCompression(path: path, reason: "zlib init failed") }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        output.reserveCapacity(input.count * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var finished = false
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
            stream.avail_in = UInt32(inBuf.count)
            while true {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress!
                    stream.avail_out = UInt32(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return out.count - Int(stream.avail_out)
                }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END {
                    if stream.avail_in == 0 { finished = true; break }
                    // Another gzip member follows: reset and go on.
                    guard inflateReset(&stream) == Z_OK else { break }
                    continue
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw DataError.corruptCompression(path: path, reason: "the compressed data ends early: truncated file")
                }
                if status != Z_OK {
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw DataError.corruptCompression(path: path, reason: message)
                }
                if stream.avail_in == 0 && produced == 0 { break }
            }
        }
        guard finished else {
            throw DataError.corruptCompression(path: path, reason: "unexpected end of compressed data")
        }
        return output
    }

    static func bigEndian(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    /// Parses an IDX image file: count × rows × columns unsigned bytes.
    @usableFromInline package static func images(path: String) throws -> ImageSet {
        try parseImages(try readBytes(path: path), path: path)
    }

    /// Parses the bytes of an IDX image file (exposed for fuzzing and tests).
    @usableFromInline package static func parseImages(_ b: [UInt8], path: String) throws -> ImageSet {
        guard b.count >= 16 else { throw DataError.truncated(path: path, expectedBytes: 16, foundBytes: b.count) }
        let magic = bigEndian(b, 0)
        guard magic == imageMagic else { throw DataError.badMagic(path: path, found: magic, expected: imageMagic) }
        let count = Int(bigEndian(b, 4)), rows = Int(bigEndian(b, 8)), columns = Int(bigEndian(b, 12))
        guard rows > 0, columns > 0, rows < 1 << 15, columns < 1 << 15 else {
            throw DataError.badDimensions(path: path, rows: rows, columns: columns)
        }
        let (pixels, overflow) = count.multipliedReportingOverflow(by: rows * columns)
        guard !overflow else {
            throw DataError.truncated(path: path, expectedBytes: Int.max, foundBytes: b.count - 16)
        }
        guard b.count - 16 >= pixels else {
            throw DataError.truncated(path: path, expectedBytes: pixels, foundBytes: b.count - 16)
        }
        return ImageSet(count: count, rows: rows, columns: columns, pixels: Array(b[16..<(16 + pixels)]))
    }

    /// Parses an IDX label file: count unsigned bytes.
    @usableFromInline package static func labels(path: String) throws -> [UInt8] {
        try parseLabels(try readBytes(path: path), path: path)
    }

    /// Parses the bytes of an IDX label file (exposed for fuzzing and tests).
    @usableFromInline package static func parseLabels(_ b: [UInt8], path: String) throws -> [UInt8] {
        guard b.count >= 8 else { throw DataError.truncated(path: path, expectedBytes: 8, foundBytes: b.count) }
        let magic = bigEndian(b, 0)
        guard magic == labelMagic else { throw DataError.badMagic(path: path, found: magic, expected: labelMagic) }
        let count = Int(bigEndian(b, 4))
        guard b.count - 8 >= count else {
            throw DataError.truncated(path: path, expectedBytes: count, foundBytes: b.count - 8)
        }
        return Array(b[8..<(8 + count)])
    }
}

/// Grey-level images as stored in IDX: `count` images of rows×columns bytes (0 = background, 255 = ink).
public struct ImageSet: Sendable {
    /// The number of images.
    public let count: Int
    /// Rows of pixels per image (28 for MNIST).
    public let rows: Int
    /// Columns of pixels per image (28 for MNIST).
    public let columns: Int
    /// All images one after another, each `rows` rows of `columns` grey levels.
    public let pixels: [UInt8]
    /// rows × columns: a model's input dimension for these images.
    public var pixelsPerImage: Int { rows * columns }

    /// Images from their grey levels, taken as they are: `pixels` should hold count × rows × columns bytes.
    public init(count: Int, rows: Int, columns: Int, pixels: [UInt8]) {
        self.count = count
        self.rows = rows
        self.columns = columns
        self.pixels = pixels
    }

    /// The first `limit` images (all when nil or larger).
    public func prefix(_ limit: Int?) -> ImageSet {
        guard let limit, limit < count else { return self }
        return ImageSet(count: limit, rows: rows, columns: columns, pixels: Array(pixels[0..<(limit * pixelsPerImage)]))
    }

    /// The images at the given indices, in that order.
    @usableFromInline package func subset(_ indices: [Int]) -> ImageSet {
        var out = [UInt8]()
        out.reserveCapacity(indices.count * pixelsPerImage)
        for i in indices { out.append(contentsOf: pixels[(i * pixelsPerImage)..<((i + 1) * pixelsPerImage)]) }
        return ImageSet(count: indices.count, rows: rows, columns: columns, pixels: out)
    }
}
