import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

#if FUZZING

/// The target chosen by `LATENT_FUZZ_TARGET` (`idx` or `checkpoint`), read once.
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["LATENT_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        let message = "LatentFuzz: set LATENT_FUZZ_TARGET to one of \(names) (got '\(name)')\n"
        FileHandle.standardError.write(Data(message.utf8))
        exit(2)
    }
    return target
}()

/// libFuzzer's entry point: one input per call (built with `-sanitize=fuzzer -DFUZZING`, see scripts/fuzz.sh).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    selectedTarget.run(bytes)
    return 0
}

/// libFuzzer's driver (its `main` calls this too); needs `-enable-experimental-feature Extern`.
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// libFuzzer's default mutation of `data[0..<size]` within `maxSize` bytes; returns the new size.
@_extern(c, "LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// libFuzzer's hook for custom mutations: `CheckpointMutator` for the checkpoint target, the default ones otherwise.
@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzCustomMutator(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int,
                              _ seed: UInt32) -> Int {
    guard let data, maxSize > 0 else { return 0 }
    guard selectedTarget == .checkpoint else { return LLVMFuzzerMutate(data, size, maxSize) }
    var mutator = CheckpointMutator(seed: seed)
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let output = mutator.mutate(input, maxSize: maxSize) { buffer, count in
        buffer.withUnsafeMutableBufferPointer { b in b.isEmpty ? 0 : LLVMFuzzerMutate(b.baseAddress!, count, b.count) }
    }
    for (i, byte) in output.prefix(maxSize).enumerated() { data[i] = byte }
    return min(output.count, maxSize)
}

/// The process entry point. SwiftPM links every Swift executable with `--defsym main=LatentFuzz_main` (so that tests
/// can link executables), which hides libFuzzer's own `main`; this symbol takes its place and starts the driver.
@_cdecl("LatentFuzz_main")
public func latentFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    _ = selectedTarget  // fail on a bad LATENT_FUZZ_TARGET before libFuzzer starts
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzTestOneInput)
}

#else

/// Without the fuzzer: replays inputs through the same targets (a regression runner), or writes the seed corpus.
@main
enum LatentFuzzMain {
    static let usage = """
        usage: LatentFuzz idx|checkpoint PATH...   run each file (or each file in each directory) through the target
               LatentFuzz write-seeds DIR          write the plain seed inputs (DIR/idx, DIR/checkpoint)
        """

    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        if command == "write-seeds", arguments.count == 2 {
            try writeSeeds(to: arguments[1])
            return
        }
        guard let target = FuzzTarget(rawValue: command), arguments.count > 1 else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            for file in try files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("LatentFuzz: cannot read \(file)\n".utf8))
                    exit(1)
                }
                FileHandle.standardError.write(Data("\(target.rawValue): \(file)\n".utf8))
                target.run([UInt8](data))
                count += 1
            }
        }
        print("\(target.rawValue): \(count) inputs ran without a crash")
    }

    /// The path itself, or the regular files directly inside it (sorted, hidden files skipped).
    static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            FileHandle.standardError.write(Data("LatentFuzz: no file or directory \(path)\n".utf8))
            exit(1)
        }
        guard isDirectory.boolValue else { return [path] }
        return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            .filter { !$0.hasPrefix(".") }
            .map { (path as NSString).appendingPathComponent($0) }
    }

    /// Small valid inputs: IDX image and label files, and checkpoints encoded by `Checkpoint.encoded()`.
    /// (The gzip seeds are made from the IDX ones with the system's `gzip -n`; see Tests/Fuzz/README.md.)
    static func writeSeeds(to directory: String) throws {
        func write(_ bytes: [UInt8], _ sub: String, _ name: String) throws {
            let dir = (directory as NSString).appendingPathComponent(sub)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent(name)))
        }
        func be(_ words: [UInt32]) -> [UInt8] {
            words.flatMap { [UInt8($0 >> 24), UInt8(($0 >> 16) & 0xFF), UInt8(($0 >> 8) & 0xFF), UInt8($0 & 0xFF)] }
        }
        var rng = RandomStream(seed: 236, purpose: .sampling)
        let pixels = (0..<(3 * 4 * 5)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try write(be([0x803, 3, 4, 5]) + pixels, "idx", "images-3x4x5.idx")
        try write(be([0x803, 0, 28, 28]), "idx", "images-empty-28x28.idx")
        try write(be([0x801, 3]) + [7, 0, 9], "idx", "labels-3.idx")

        // 40 training images at batch 4: 10 steps per epoch.
        let state = TrainingState(seed: 1, step: 10, epoch: 1, batch: 4, learningRate: 1e-3, threads: 1,
                                  data: "/data/fashion-mnist", trainSet: ImageSetFingerprint(count: 40, crc32: 0x1234),
                                  testSet: ImageSetFingerprint(count: 8, crc32: 0xFEDC_BA98))
        // A mid-epoch checkpoint also carries the optional resume fields.
        var midEpoch = state
        midEpoch.step = 12
        midEpoch.optimizerStep = 11
        midEpoch.skippedBatches = 1
        midEpoch.parallelism = "auto"
        midEpoch.ranks = 1
        midEpoch.epochSums = TermSums(rec: 123.5, kl: 4.25, examples: 8)
        let configurations = [
            ("vae-diagonal", ModelConfiguration(inputs: 4, hidden: [3], latent: 2, activation: .tanh), state),
            ("iwae-full", ModelConfiguration(model: .iwae, posterior: .full, inputs: 3, hidden: [2], latent: 2,
                                             activation: .elu, samples: 2), state),
            ("gmvae-covariance", ModelConfiguration(model: .gmvae, posterior: .covariance, inputs: 2, hidden: [2],
                                                    latent: 1, activation: .elu, components: 2), midEpoch),
        ]
        for (name, configuration, state) in configurations {
            let n = VariationalAutoencoder<Float>.parameterCount(configuration)
            func values() -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
            let checkpoint = Checkpoint(configuration: configuration, state: state, parameters: values(),
                                        firstMoment: values(), secondMoment: values().map(abs))
            try write(try checkpoint.encoded(), "checkpoint", "\(name).ck")
        }
    }
}

#endif
