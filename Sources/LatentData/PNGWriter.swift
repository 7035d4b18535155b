import Foundation
import LatentCore
internal import CPNG

/// Why an image could not be laid out, encoded or written, and what to do about it.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// Images of this many pixels cannot be drawn as square tiles: the number is not a perfect square.
    case notSquare(pixels: Int)
    /// The image or grid would have no pixels (no images, or a side of 0).
    case empty(width: Int, height: Int)
    /// A pixel buffer holds `found` values where its image size needs `expected`.
    case sizeMismatch(expected: Int, found: Int)
    /// libpng failed to encode the image; `reason` is libpng's message.
    case encodingFailed(reason: String)
    /// The PNG file (or its directory) could not be created or written.
    case unwritable(path: String, reason: String)
    /// Wider or taller than `PNGWriter.maximumSide`; a dimension too large to count is `Int.max`.
    case tooLarge(width: Int, height: Int)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .notSquare(pixels):
            return "cannot draw images of \(pixels) pixels: not a square number; image grids need square inputs such as 784 = 28×28"
        case let .empty(width, height):
            return "cannot write an empty \(width)×\(height) image; ask for at least one image"
        case let .sizeMismatch(expected, found):
            return "image buffer holds \(found) values, its size needs \(expected); this is a bug in the caller"
        case let .encodingFailed(reason):
            return "libpng could not encode the image (\(reason)); check that libpng-dev is installed correctly"
        case let .unwritable(path, reason):
            return "cannot write \(path): \(reason); choose a writable --out path"
        case let .tooLarge(width, height):
            let image = width == Int.max || height == Int.max ? "an image this large" : "a \(width)×\(height) image"
            return "cannot write \(image): PNG images are at most \(PNGWriter.maximumSide) pixels per side; "
                + "ask for fewer images"
        }
    }
}

/// An 8-bit grayscale picture, row-major, 0 = black and 255 = white: what the PNG writer encodes.
public struct GrayImage: Sendable, Equatable {
    /// Columns of pixels.
    public let width: Int
    /// Rows of pixels.
    public let height: Int
    /// `height` rows of `width` bytes.
    public var pixels: [UInt8]

    /// A `width`×`height` image filled with one grey level.
    public init(width: Int, height: Int, fill: UInt8 = 0) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: fill, count: max(0, width * height))
    }

    /// An image over given bytes; throws when their count is not width × height.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard pixels.count == width * height else {
            throw ImageError.sizeMismatch(expected: width * height, found: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Maps an intensity in [0, 1] to a grey level (clamped; NaN becomes black).
    @inlinable
    package static func level<T: BinaryFloatingPoint>(_ intensity: T) -> UInt8 {
        guard intensity > 0 else { return 0 }
        guard intensity < 1 else { return 255 }
        return UInt8((Double(intensity) * 255).rounded())
    }
}

/// Lays equally sized tiles (images as intensities in [0, 1]) out in a grid with padding between and around them.
///
/// Width = columns·tileWidth + (columns + 1)·padding, height likewise with rows; cells past the last tile stay `fill`.
@usableFromInline package enum ImageGrid {
    /// Default padding in pixels between and around tiles.
    @usableFromInline package static let defaultPadding = 2
    /// Default grey level of the padding: mid-dark grey, so tiles with a black background stay distinguishable.
    @usableFromInline package static let defaultFill: UInt8 = 64

    /// The side of a square image of `pixels` pixels (28 for 784); throws when `pixels` is not a square number.
    @usableFromInline package static func squareSide(pixels: Int) throws -> Int {
        guard pixels > 0 else { throw ImageError.notSquare(pixels: pixels) }
        var side = Int(Double(pixels).squareRoot().rounded())
        while side * side > pixels { side -= 1 }
        while (side + 1) * (side + 1) <= pixels { side += 1 }
        guard side * side == pixels else { throw ImageError.notSquare(pixels: pixels) }
        return side
    }

    /// The number of columns of a near-square grid of `count` tiles: ⌈√count⌉ (exact for every Int, no overflow).
    @usableFromInline package static func squareColumns(count: Int) -> Int {
        guard count > 1 else { return 1 }
        func square(_ n: Int) -> Int {
            let (product, overflow) = n.multipliedReportingOverflow(by: n)
            return overflow ? Int.max : product
        }
        var columns = Int(Double(count).squareRoot())
        while square(columns) < count { columns += 1 }
        return columns
    }

    /// Width and height of a grid of `count` tiles in `columns` columns: columns·tileWidth + (columns + 1)·padding
    /// by rows·tileHeight + (rows + 1)·padding, rows = ⌈count/columns⌉; `Int.max` for a side too large to count.
    @usableFromInline package static func size(count: Int, columns: Int, tileWidth: Int, tileHeight: Int,
                            padding: Int = defaultPadding) -> (width: Int, height: Int) {
        let pad = max(0, padding), columns = max(1, columns)
        let rows = count / columns + (count % columns == 0 ? 0 : 1)
        func side(_ tiles: Int, _ tile: Int) -> Int {
            let (body, o1) = tiles.multipliedReportingOverflow(by: tile)
            let (gaps, o2) = tiles.addingReportingOverflow(1)
            let (padded, o3) = gaps.multipliedReportingOverflow(by: pad)
            let (total, o4) = body.addingReportingOverflow(padded)
            return o1 || o2 || o3 || o4 ? Int.max : total
        }
        return (side(columns, tileWidth), side(rows, tileHeight))
    }

    /// The most tiles of side `tile` that fit along one side of an image the PNG writer accepts:
    /// the largest n with n·tile + (n + 1)·padding ≤ `PNGWriter.maximumSide`.
    @usableFromInline package static func maximumTiles(tile: Int, padding: Int = defaultPadding) -> Int {
        let pad = max(0, padding)
        return max(0, (PNGWriter.maximumSide - pad) / (max(1, tile) + pad))
    }

    /// Composes `count` tiles stored one after another in `tiles` (each tileHeight rows of tileWidth intensities).
    @usableFromInline package static func compose<T: BinaryFloatingPoint>(
        tiles: [T], count: Int, tileWidth: Int, tileHeight: Int, columns: Int,
        padding: Int = defaultPadding, fill: UInt8 = defaultFill
    ) throws -> GrayImage {
        let tilePixels = tileWidth * tileHeight
        guard count > 0, columns > 0, tileWidth > 0, tileHeight > 0 else {
            throw ImageError.empty(width: max(0, columns) * max(0, tileWidth), height: max(0, count) * max(0, tileHeight))
        }
        guard tiles.count >= count * tilePixels else {
            throw ImageError.sizeMismatch(expected: count * tilePixels, found: tiles.count)
        }
        let (width, height) = size(count: count, columns: columns, tileWidth: tileWidth, tileHeight: tileHeight,
                                   padding: padding)
        guard width <= PNGWriter.maximumSide, height <= PNGWriter.maximumSide else {
            throw ImageError.tooLarge(width: width, height: height)
        }
        let pad = max(0, padding)
        var image = GrayImage(width: width, height: height, fill: fill)
        for tile in 0..<count {
            let left = pad + (tile % columns) * (tileWidth + pad)
            let top = pad + (tile / columns) * (tileHeight + pad)
            for y in 0..<tileHeight {
                let source = tile * tilePixels + y * tileWidth
                let target = (top + y) * image.width + left
                for x in 0..<tileWidth { image.pixels[target + x] = GrayImage.level(tiles[source + x]) }
            }
        }
        return image
    }
}

/// Encodes grayscale images as PNG through libpng's simplified write API (8-bit, one channel, no alpha).
public enum PNGWriter {
    /// The largest width or height written, in pixels: a 8192×8192 grid is 64 MiB of grey levels and its tiles'
    /// Float decoder means about 256 MiB, while libpng's own default limit (10⁶ per side) would need terabytes.
    @usableFromInline package static let maximumSide = 8192

    /// The PNG file bytes of `image` (also what the training report embeds as a data URI).
    @usableFromInline package static func encode(_ image: GrayImage) throws -> [UInt8] {
        guard image.width > 0, image.height > 0 else { throw ImageError.empty(width: image.width, height: image.height) }
        guard image.width <= maximumSide, image.height <= maximumSide else {
            throw ImageError.tooLarge(width: image.width, height: image.height)
        }
        guard image.pixels.count == image.width * image.height else {
            throw ImageError.sizeMismatch(expected: image.width * image.height, found: image.pixels.count)
        }
        var control = png_image()
        control.version = png_uint_32(PNG_IMAGE_VERSION)
        control.width = png_uint_32(image.width)
        control.height = png_uint_32(image.height)
        control.format = png_uint_32(PNG_FORMAT_GRAY)
        let stride = png_int_32(image.width)
        return try image.pixels.withUnsafeBytes { raw -> [UInt8] in
            var size: png_alloc_size_t = 0
            guard png_image_write_to_memory(&control, nil, &size, 0, raw.baseAddress, stride, nil) != 0, size > 0 else {
                throw ImageError.encodingFailed(reason: message(of: &control))
            }
            var bytes = [UInt8](repeating: 0, count: Int(size))
            let ok = bytes.withUnsafeMutableBytes { out in
                png_image_write_to_memory(&control, out.baseAddress, &size, 0, raw.baseAddress, stride, nil)
            }
            guard ok != 0 else { throw ImageError.encodingFailed(reason: message(of: &control)) }
            png_image_free(&control)
            return Array(bytes.prefix(Int(size)))
        }
    }

    /// Encodes `image` and writes it to `path`, creating missing parent directories.
    public static func write(_ image: GrayImage, to path: String) throws {
        try writeFile(try encode(image), to: path)
    }

    /// Writes `bytes` to `path` (parent directories created), with the operating system's reason on failure: a regular
    /// file is replaced atomically (`AtomicFile`), so a failed write (a full disk) leaves the previous file whole; a
    /// device or pipe is written in place.
    @usableFromInline package static func writeFile(_ bytes: [UInt8], to path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw ImageError.unwritable(path: path, reason: "cannot create the directory \(parent)")
            }
        }
        var status = stat()
        if stat(path, &status) != 0 || status.st_mode & S_IFMT == S_IFREG {
            do {
                return try AtomicFile.write(bytes, to: path)
            } catch {
                throw ImageError.unwritable(path: path, reason: error.reason)
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ImageError.unwritable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard writeAll(bytes, to: fd) else { throw ImageError.unwritable(path: path, reason: String(cString: strerror(errno))) }
    }

    /// libpng's message after a failed simplified-API call (and frees its state).
    private static func message(of control: inout png_image) -> String {
        let text = withUnsafeBytes(of: control.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        png_image_free(&control)
        return text.isEmpty ? "unknown error" : text
    }
}

/// Writes every byte to the open file descriptor; false on the first failed write (errno says why).
private func writeAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
    bytes.withUnsafeBytes { raw in
        var written = 0
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n <= 0 { return false }
            written += n
        }
        return true
    }
}
