import Foundation
import XCTest

/// Resources bounded before they are taken: a run that cannot get its threads or its memory ends at once with one
/// line and status 1, never a spin, a trap or a backtrace; the memory estimate bounds the run's peak resident memory.
/// Each run is under `timeout -s KILL`, so a hang fails the test instead of outliving it.
final class ResourceLimitTests: XCTestCase {
    var root: URL!
    var data: URL { root.appendingPathComponent("data") }
    var out: URL { root.appendingPathComponent("run") }

    override func setUpWithError() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-limits-\(UUID().uuidString)")
        try SyntheticDataset.write(to: data, train: 2000, test: 500)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// `latent train` on the synthetic data set, as a shell command line.
    func train(_ flags: String) -> String {
        "\"$LATENT\" train --data '\(data.path)' --out '\(out.path)' --iterations 2 \(flags)"
    }

    /// Asserts a refusal: status 1, one line on stderr containing every fragment, quick, and no run written.
    func assertRefused(_ run: Shell.Run, within seconds: Double, mentioning fragments: [String],
                       file: StaticString = #filePath, line: UInt = #line) {
        let message = "status \(run.status) after \(run.seconds) s: \(run.stderr.prefix(2000))"
        XCTAssertEqual(run.status, 1, message, file: file, line: line)
        XCTAssertEqual(run.stderrLines.count, 1, message, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(run.stderr.contains(fragment), "no “\(fragment)”: \(message)", file: file, line: line)
        }
        XCTAssertLessThan(run.seconds, seconds, message, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint").path),
                       "a checkpoint was written", file: file, line: line)
    }

    func testThreadsPastTheCapAreRefusedAtOnce() throws {
        for threads in [1000, 100_000] {
            let run = try Shell.run("exec timeout -s KILL 30 " + train("--threads \(threads)"))
            assertRefused(run, within: 5, mentioning: ["--threads", "256", "\(threads)"])
        }
    }

    /// Under a pids control group of 40 tasks, 100 data-parallel workers (and 64 OpenBLAS threads) cannot start.
    func testAThreadThatCannotStartIsAOneLineError() throws {
        let group = try ControlGroup("pids", limit: 40)
        defer { group.remove() }
        for flags in ["--threads 100 --batch 200 --parallelism data", "--threads 64 --parallelism blas"] {
            let run = try Shell.run("echo $$ > '\(group.procs)' && exec timeout -s KILL 30 " + train(flags))
            assertRefused(run, within: 10, mentioning: ["cannot start worker thread", "lower --threads"])
        }
    }

    /// `--hidden 4096,4096 --latent 64` was estimated at 0.6 GB and killed, in a 1.5 GB memory control group, while
    /// its checkpoint was being encoded.
    func testALargeModelPastItsMemoryControlGroupIsRefusedBeforeTraining() throws {
        let group = try ControlGroup("memory", limit: 1_500_000_000)
        defer { group.remove() }
        let run = try Shell.run("echo $$ > '\(group.procs)' && exec timeout -s KILL 120 "
            + train("--hidden 4096,4096 --latent 64"))
        assertRefused(run, within: 10, mentioning: ["control group", "checkpoint encoding", "--hidden"])
    }

    /// The default run under `ulimit -v 500000` spun forever inside OpenBLAS's buffer allocation.
    func testTheDefaultRunUnderASmallAddressSpaceIsRefused() throws {
        let run = try Shell.run("ulimit -v 500000 && exec timeout -s KILL 30 " + train(""))
        assertRefused(run, within: 10, mentioning: ["address space", "ulimit -v"])
    }

    /// A large model under `ulimit -v 2000000` trained its epoch, then died encoding the checkpoint with a backtrace.
    func testALargeModelPastItsAddressSpaceIsRefusedBeforeTraining() throws {
        let run = try Shell.run("ulimit -v 2000000 && exec timeout -s KILL 120 "
            + train("--hidden 4096,4096 --latent 64"))
        assertRefused(run, within: 10, mentioning: ["address space", "checkpoint encoding", "--hidden"])
        XCTAssertFalse(run.stderr.contains("epoch"), run.stderr)
    }

    /// A training set whose header declares 739 824 images (580 MB once inflated, 2.5 MB compressed) is refused from
    /// its header under `ulimit -v 1000000`, before it is decompressed; it was decompressed until an allocation failed.
    func testADataSetTooLargeForTheLimitIsRefusedFromItsHeader() throws {
        let count = 739_824
        let images = data.appendingPathComponent("train-images-idx3-ubyte.gz").path
        let labels = data.appendingPathComponent("train-labels-idx1-ubyte").path
        let written = try Shell.run("""
            { printf '\\000\\000\\010\\003\\000\\013\\111\\360\\000\\000\\000\\034\\000\\000\\000\\034'; \
            head -c \(count * 784) /dev/zero; } | gzip -1 > '\(images)' && \
            { printf '\\000\\000\\010\\001\\000\\013\\111\\360'; head -c \(count) /dev/zero; } > '\(labels)'
            """)
        XCTAssertEqual(written.status, 0, written.stderr)
        let run = try Shell.run("ulimit -v 1000000 && exec timeout -s KILL 60 " + train(""))
        assertRefused(run, within: 5, mentioning: ["loading the data set", "ulimit -v", "--data"])
    }

    /// `latent train --dry-run` prints an estimate at least the run's peak resident memory and within 1.5× of it.
    func testTheEstimateBoundsThePeakResidentMemory() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else {
            throw XCTSkip("/usr/bin/time is not installed, so the peak resident memory cannot be read")
        }
        let shapes = ["--hidden 2048,2048 --latent 64", "--latent 128 --posterior full --hidden 500",
                      "--model iwae --samples 100 --batch 50 --hidden 1000,1000",
                      "--batch 1000000 --hidden 1000 --parallelism data",
                      "--model gmvae --batch 32 --hidden 1000 --threads 3"]
        for shape in shapes {
            let dryRun = try Shell.run("exec timeout -s KILL 30 " + train(shape + " --dry-run"))
            XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
            let estimate = try XCTUnwrap(Self.estimatedBytes(dryRun.stdout), dryRun.stdout)
            let run = try Shell.run("exec timeout -s KILL 300 /usr/bin/time -f 'peak %M' " + train(shape))
            XCTAssertEqual(run.status, 0, run.stderr)
            let kilobytes = try XCTUnwrap(run.stderrLines.last { $0.hasPrefix("peak ") }.flatMap {
                Double($0.dropFirst(5))
            }, run.stderr)
            let peak = kilobytes * 1024
            XCTAssertGreaterThanOrEqual(estimate, peak, "\(shape): \(dryRun.stdout)")
            XCTAssertLessThanOrEqual(estimate, 1.5 * peak, "\(shape): peak \(peak / 1e6) MB; \(dryRun.stdout)")
        }
    }

    /// The bytes of "estimated peak memory 123 MB" or "… 1.23 GB".
    static func estimatedBytes(_ text: String) -> Double? {
        guard let range = text.range(of: "estimated peak memory ") else { return nil }
        let words = text[range.upperBound...].split(separator: " ")
        guard words.count >= 2, let value = Double(words[0]) else { return nil }
        switch words[1] {
        case "MB": return value * 1e6
        case "GB": return value * 1e9
        default: return nil
        }
    }
}

/// Runs a `/bin/sh` command line with `$LATENT` set to the built executable.
enum Shell {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    static func run(_ script: String) throws -> Run {
        let start = Date()
        // The scripts bound their own commands with `timeout -s KILL`; this only keeps a broken one from hanging.
        let result = try LatentCommand.run(executable: "/bin/sh", ["-c", script],
                                           environment: ["LATENT": try LatentCommand.executable()], timeout: 900)
        return Run(status: result.status, stdout: result.stdout, stderr: result.stderr,
                   seconds: Date().timeIntervalSince(start))
    }
}

/// A control group of its own under this process's (cgroup v1's hierarchy of `controller`, or v2's unified one),
/// with `limit` written to its limit file; the test is skipped when none can be made here.
struct ControlGroup {
    let path: String
    var procs: String { path + "/cgroup.procs" }

    /// `controller` is "pids" or "memory"; `limit` a task count or bytes.
    init(_ controller: String, limit: Int) throws {
        let name = "latent-test-\(UUID().uuidString)"
        let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        var candidates: [(parent: String, file: String)] = []
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[1].split(separator: ",").contains(Substring(controller)) {
                candidates.append(("/sys/fs/cgroup/\(controller)" + fields[2],
                                   controller == "pids" ? "pids.max" : "memory.limit_in_bytes"))
            } else if fields[0] == "0" && fields[1].isEmpty {
                candidates.append(("/sys/fs/cgroup" + fields[2], controller == "pids" ? "pids.max" : "memory.max"))
            }
        }
        for (parent, file) in candidates where FileManager.default.fileExists(atPath: parent + "/cgroup.procs") {
            let path = (parent as NSString).appendingPathComponent(name)
            guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)) != nil
            else { continue }
            if (try? "\(limit)\n".write(toFile: path + "/" + file, atomically: false, encoding: .utf8)) != nil {
                self.path = path
                return
            }
            rmdir(path)
        }
        throw XCTSkip("no \(controller) control group can be created here (needs a writable cgroup hierarchy)")
    }

    func remove() { rmdir(path) }
}
