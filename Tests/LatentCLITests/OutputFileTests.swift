import Foundation
import XCTest

/// Output files are replaced whole: on a full disk (a small tmpfs filled up) `report`, `sample` and the other image
/// commands fail in one line that names the file and says the previous one was kept, and that file is intact.
final class OutputFileTests: XCTestCase {
    var root: URL!
    var disk: URL { root.appendingPathComponent("disk") }
    var mounted = false

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-output-\(UUID().uuidString)")
        try SyntheticDataset.write(to: root.appendingPathComponent("data"))
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        let mount = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", disk.path])
        guard mount.status == 0 else {
            throw XCTSkip("cannot mount a small tmpfs to fill up (needs root): \(mount.output)")
        }
        mounted = true
    }

    override func tearDown() {
        if mounted { _ = try? run("/bin/umount", [disk.path]) }
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// Fills the tmpfs to the last byte.
    func fillDisk() {
        let fd = open(disk.appendingPathComponent("filler").path, O_WRONLY | O_CREAT, 0o644)
        defer { close(fd) }
        let chunk = [UInt8](repeating: 1, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) > 0 {}
        var byte: UInt8 = 1
        while write(fd, &byte, 1) > 0 {}
    }

    /// Each command writes a small file, the disk fills up, and it writes a larger one to the same path.
    func testAFullDiskKeepsThePreviousOutputFiles() throws {
        let data = root.appendingPathComponent("data").path
        let run = root.appendingPathComponent("run").path, compare = root.appendingPathComponent("compare").path
        let model = ["--hidden", "16", "--latent", "2", "--iterations", "20", "--batch", "10", "--threads", "1"]
        for arguments in [["train", "--out", run], ["compare", "--posteriors", "diagonal,full", "--iw", "0", "--out", compare]] {
            let r = try LatentCommand.run(arguments + ["--data", data] + model)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        // The smaller file first: a report of one run, then of two families; fewer images in a grid, then more.
        let commands: [(name: String, smaller: [String], larger: [String])] = [
            ("report.html", ["report", "--run", run], ["report", "--run", compare]),
            ("samples.png", ["sample", "--checkpoint", run, "--count", "4"], ["sample", "--checkpoint", run]),
            ("recon.png", ["reconstruct", "--checkpoint", run, "--count", "2"], ["reconstruct", "--checkpoint", run]),
            ("interp.png", ["interpolate", "--checkpoint", run, "--pairs", "1"], ["interpolate", "--checkpoint", run]),
            ("map.png", ["latent-map", "--checkpoint", run, "--grid", "2"], ["latent-map", "--checkpoint", run]),
        ]
        var previous: [Data] = []
        for command in commands {
            let out = disk.appendingPathComponent(command.name)
            let first = try LatentCommand.run(command.smaller + ["--out", out.path])
            XCTAssertEqual(first.status, 0, first.stderr)
            previous.append(try Data(contentsOf: out))
        }
        fillDisk()
        for (command, bytes) in zip(commands, previous) {
            let out = disk.appendingPathComponent(command.name)
            let r = try LatentCommand.run(command.larger + ["--out", out.path])
            XCTAssertTrue(r.exitedNormally, r.stderr)
            XCTAssertEqual(r.status, 1, "\(command.name) cannot be written on a full disk: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(out.path) && r.stderr.contains("No space left on device"), r.stderr)
            XCTAssertTrue(r.stderr.contains("previous \(command.name) was kept"), r.stderr)
            XCTAssertEqual(try Data(contentsOf: out), bytes, "the previous \(command.name) is whole")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path + ".tmp"))
        }
    }
}
