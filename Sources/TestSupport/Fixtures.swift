import Foundation
import LatentCore

/// Bytes of MNIST-style IDX files, built by hand so that readers are tested against an independent writer.
public enum IDXFixture {
    /// Big-endian 32-bit words, the IDX header format.
    public static func header(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { w in [UInt8(w >> 24), UInt8((w >> 16) & 0xFF), UInt8((w >> 8) & 0xFF), UInt8(w & 0xFF)] }
    }

    /// An image file: magic, count, rows, columns, then the pixels as given (the header may lie about the count).
    public static func imageFile(count: Int, rows: Int, columns: Int, pixels: [UInt8], magic: UInt32 = 0x803) -> [UInt8] {
        header([magic, UInt32(count), UInt32(rows), UInt32(columns)]) + pixels
    }

    /// A label file: magic, count (defaults to the number of labels), then the labels.
    public static func labelFile(_ labels: [UInt8], count: Int? = nil, magic: UInt32 = 0x801) -> [UInt8] {
        header([magic, UInt32(count ?? labels.count)]) + labels
    }

    /// Deterministic pseudo-random grey levels.
    public static func randomPixels(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = RandomStream(seed: seed, purpose: .sampling)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// Compresses bytes with the system's `gzip` (an implementation independent of the reader's zlib calls).
    public static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let dir = try TemporaryDirectory()
        let input = dir.file("input")
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let output = dir.file("output.gz")
        guard FileManager.default.createFile(atPath: output, contents: nil) else {
            throw FixtureError.cannotCreate(output)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FileManager.default.fileExists(atPath: "/bin/gzip")
                                    ? "/bin/gzip" : "/usr/bin/gzip")
        process.arguments = ["-c", "-n", input]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        guard process.terminationStatus == 0 else { throw FixtureError.gzipFailed(process.terminationStatus) }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// Writes bytes to a path.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

public enum FixtureError: Error {
    case gzipFailed(Int32)
    /// A fixture file could not be created (its directory is not writable).
    case cannotCreate(String)
}

/// A fresh directory under the system's temporary directory, removed when the value is released.
public final class TemporaryDirectory {
    public let path: String

    public init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("latent-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// `path/name`.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
