import Foundation
import XCTest

/// Runs the built `latent` executable and captures its output.
enum LatentCommand {
    struct Result {
        var status: Int32
        var exitedNormally: Bool
        var stdout: String
        var stderr: String
        var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
        var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    }

    enum Failure: Error, CustomStringConvertible {
        case executableNotFound([String])
        case timedOut([String])
        var description: String {
            switch self {
            case let .executableNotFound(paths):
                return "the `latent` executable was not found (run `swift build --build-tests`); looked at \(paths)"
            case let .timedOut(arguments): return "latent \(arguments.joined(separator: " ")) timed out"
            }
        }
    }

    /// The package root, from this file's location (Tests/LatentCLITests/LatentCommand.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Where `latent` may be: next to the test bundle first (the build that built these tests, whatever its scratch
    /// path), then the package's usual build directories. `LATENT_EXECUTABLE` overrides all of them.
    static var candidates: [String] {
        var dirs: [URL] = []
        let bundle = Bundle.main.bundleURL
        dirs.append(bundle)
        dirs.append(bundle.deletingLastPathComponent())
        for b in Bundle.allBundles where b.bundleURL.pathExtension == "xctest" {
            dirs.append(b.bundleURL.deletingLastPathComponent())
        }
        if let argument0 = CommandLine.arguments.first {
            let executable = URL(fileURLWithPath: argument0).resolvingSymlinksInPath()
            dirs.append(executable.deletingLastPathComponent())
            // On macOS the test binary sits in X.xctest/Contents/MacOS.
            dirs.append(executable.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent())
        }
        for scratch in [".build-tests", ".build"] {
            dirs.append(packageRoot.appendingPathComponent(scratch).appendingPathComponent("debug"))
        }
        var paths = dirs.map { $0.appendingPathComponent("latent").path }
        if let override = ProcessInfo.processInfo.environment["LATENT_EXECUTABLE"] { paths.insert(override, at: 0) }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    static func executable() throws -> String {
        let paths = candidates
        var isDirectory: ObjCBool = false
        guard let found = paths.first(where: {
            FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
                && FileManager.default.isExecutableFile(atPath: $0)
        }) else { throw Failure.executableNotFound(paths) }
        return found
    }

    /// Runs `latent arguments…` with output to temporary files (no pipe can fill up), killing it after `timeout`.
    static func run(_ arguments: [String], environment: [String: String] = [:], directory: URL? = nil,
                    timeout: TimeInterval = 120) throws -> Result {
        try run(executable: try executable(), arguments, environment: environment, directory: directory,
                timeout: timeout)
    }

    /// Runs any `executable` the same way (the shell of the resource-limit tests).
    static func run(executable: String, _ arguments: [String], environment: [String: String] = [:],
                    directory: URL? = nil, timeout: TimeInterval = 120) throws -> Result {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            _ = done.wait(timeout: .now() + 10)
            throw Failure.timedOut(arguments)
        }
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus, exitedNormally: process.terminationReason == .exit,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

/// A synthetic dataset in the MNIST layout, written without the library (the CLI tests depend on the executable only).
enum SyntheticDataset {
    static let fileNames = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"]

    static func header(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { w in [UInt8(w >> 24), UInt8((w >> 16) & 0xFF), UInt8((w >> 8) & 0xFF), UInt8(w & 0xFF)] }
    }

    /// Deterministic grey levels: mostly background with strokes of ink, like real digits.
    static func pixels(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            let r = state % 100
            return r < 60 ? 0 : r < 80 ? 255 : UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    static func imageFile(count: Int, rows: Int = 28, columns: Int = 28, seed: UInt64) -> [UInt8] {
        header([0x803, UInt32(count), UInt32(rows), UInt32(columns)]) + pixels(count * rows * columns, seed: seed)
    }

    static func labelFile(count: Int) -> [UInt8] {
        header([0x801, UInt32(count)]) + (0..<count).map { UInt8($0 % 10) }
    }

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-gz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in"), output = dir.appendingPathComponent("out.gz")
        try Data(bytes).write(to: input)
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FileManager.default.fileExists(atPath: "/bin/gzip") ? "/bin/gzip" : "/usr/bin/gzip")
        process.arguments = ["-c", "-n", input.path]
        process.standardOutput = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        precondition(process.terminationStatus == 0, "gzip failed")
        return [UInt8](try Data(contentsOf: output))
    }

    /// Writes the four files into `directory` (created if needed): train and test images gzip-compressed, labels plain.
    static func write(to directory: URL, train: Int = 200, test: Int = 50, trainImages: [UInt8]? = nil) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(try gzip(trainImages ?? imageFile(count: train, seed: 1)))
            .write(to: directory.appendingPathComponent(fileNames[0] + ".gz"))
        try Data(labelFile(count: train)).write(to: directory.appendingPathComponent(fileNames[1]))
        try Data(try gzip(imageFile(count: test, seed: 2))).write(to: directory.appendingPathComponent(fileNames[2] + ".gz"))
        try Data(labelFile(count: test)).write(to: directory.appendingPathComponent(fileNames[3]))
    }
}
