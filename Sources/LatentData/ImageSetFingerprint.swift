internal import CZlib

/// What a set of images is, in a few bytes: their count and a CRC-32 of their IDX bytes. A checkpoint records the
/// fingerprints of the data it was trained and evaluated on, so that resuming on changed data is refused.
public struct ImageSetFingerprint: Codable, Equatable, Sendable {
    /// The number of images.
    public var count: Int
    /// The CRC-32 (zlib's, as for checkpoints and PNG) of the IDX image file that holds exactly these images: the
    /// 16-byte header (magic 0x803, count, rows, columns; big-endian) and the pixels. For a whole file as `IDXReader`
    /// reads it, that is the CRC-32 of the file's decompressed bytes.
    public var crc32: UInt32

    /// A fingerprint from its fields (as a checkpoint header stores them).
    public init(count: Int, crc32: UInt32) {
        self.count = count
        self.crc32 = crc32
    }

    /// The fingerprint of `images`: zlib's CRC-32, which runs at memory speed, so hashing a whole data set costs
    /// about as much as reading it.
    public init(_ images: ImageSet) {
        let words = [IDXReader.imageMagic, UInt32(truncatingIfNeeded: images.count),
                     UInt32(truncatingIfNeeded: images.rows), UInt32(truncatingIfNeeded: images.columns)]
        let header = words.flatMap { w in [UInt8(w >> 24), UInt8((w >> 16) & 0xFF), UInt8((w >> 8) & 0xFF), UInt8(w & 0xFF)] }
        var crc = ImageSetFingerprint.crc32(header, continuing: 0)
        crc = ImageSetFingerprint.crc32(images.pixels, continuing: crc)
        self.init(count: images.count, crc32: crc)
    }

    /// zlib's CRC-32 of `bytes`, continuing from `crc`, in pieces that fit its 32-bit length.
    static func crc32(_ bytes: [UInt8], continuing crc: UInt32) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var c = UInt(crc), offset = 0
            while offset < buffer.count {
                let length = min(buffer.count - offset, 1 << 30)
                c = CZlib.crc32(c, buffer.baseAddress! + offset, UInt32(length))
                offset += length
            }
            return UInt32(truncatingIfNeeded: c)
        }
    }
}
