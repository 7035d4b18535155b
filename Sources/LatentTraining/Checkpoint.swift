import Foundation
import LatentCore
import LatentData
import LatentEvaluation
import LatentModels

/// Training state stored beside the parameters: what resuming and evaluation need to know.
///
/// `epoch` counts completed epochs; a checkpoint written mid-epoch (on SIGINT/SIGTERM or `--checkpoint-every`)
/// also carries the partial sums of the epoch in progress, so a resumed run writes the same metrics as an
/// uninterrupted one. Random draws are keyed by (seed, step, row) and the epoch's order by (seed, epoch), so
/// no generator state beyond these counters is needed to continue bit for bit.
public struct TrainingState: Codable, Equatable, Sendable {
    /// The run's `--seed`: with the counters below, it determines every random draw still to come.
    public var seed: UInt64
    /// Steps taken so far, skipped batches included.
    public var step: Int
    /// Epochs completed so far.
    public var epoch: Int
    /// The batch size B (`--batch`).
    public var batch: Int
    /// Adam's learning rate (`--lr`).
    public var learningRate: Double
    /// The run's `--threads`, which the order of the floating-point sums depends on.
    public var threads: Int
    /// The dataset directory (`--data`).
    public var data: String
    /// Adam's update count (differs from `step` when batches were skipped as non-finite).
    public var optimizerStep: Int?
    /// The term sums of the epoch in progress when the checkpoint was written mid-epoch; nil at an epoch's end.
    public var epochSums: TermSums?
    /// Batches skipped as non-finite so far (`--on-nan skip-batch`); nil in checkpoints written before it was recorded.
    public var skippedBatches: Int?
    /// Cholesky factorizations retried with a raised δ so far (covariance posterior).
    public var factorizationRetries: Int?
    /// The run's `--parallelism` (as asked, e.g. "auto"), `--train-limit` and `--test-limit`, which the results also
    /// depend on; checkpoints written before these existed have no `parallelism`.
    public var parallelism: String?
    /// The run's `--train-limit`: training used only the first this many images (nil: all of them).
    public var trainLimit: Int?
    /// The run's `--test-limit`: evaluation used only the first this many test images (nil: all of them).
    public var testLimit: Int?
    /// Processes that trained together (`mpirun -np`); nil in checkpoints written before it was recorded (one).
    public var ranks: Int?
    /// The training images the run uses (after `trainLimit`); nil in checkpoints before format 3.
    public var trainSet: ImageSetFingerprint?
    /// The test images the run evaluates on (after `testLimit`); nil in checkpoints before format 3.
    public var testSet: ImageSetFingerprint?
    /// A state from its fields; the optional ones default to nil, as in checkpoints written before they existed.
    public init(seed: UInt64, step: Int, epoch: Int, batch: Int, learningRate: Double, threads: Int, data: String,
                optimizerStep: Int? = nil, epochSums: TermSums? = nil, skippedBatches: Int? = nil,
                factorizationRetries: Int? = nil, parallelism: String? = nil, trainLimit: Int? = nil,
                testLimit: Int? = nil, ranks: Int? = nil, trainSet: ImageSetFingerprint? = nil,
                testSet: ImageSetFingerprint? = nil) {
        self.seed = seed
        self.step = step
        self.epoch = epoch
        self.batch = batch
        self.learningRate = learningRate
        self.threads = threads
        self.data = data
        self.optimizerStep = optimizerStep
        self.epochSums = epochSums
        self.skippedBatches = skippedBatches
        self.factorizationRetries = factorizationRetries
        self.parallelism = parallelism
        self.trainLimit = trainLimit
        self.testLimit = testLimit
        self.ranks = ranks
        self.trainSet = trainSet
        self.testSet = testSet
    }
}

/// A versioned binary checkpoint: magic, version, JSON header (configuration and training state), the flat
/// parameter buffer and Adam's two moment buffers as little-endian Float32, and a CRC-32 of everything before it.
///
/// Format 2 changed the covariance family's encoder head to a lower-triangular A (MATH.md §2); format-1 files of the
/// other families read as before, those of the covariance family are refused. Format 3 adds the data's fingerprints
/// (`TrainingState.trainSet`, `testSet`), which resuming checks; files without them (formats 1 and 2) still read, and
/// resuming says it cannot verify their data. Every header field is range-checked on reading
/// (`TrainingState.validate`, `ModelConfiguration.validate`).
///
/// Saving writes `checkpoint.tmp`, flushes it to disk and renames it over `checkpoint`, so a crash at any moment
/// leaves the previous complete checkpoint in place.
public struct Checkpoint: Sendable {
    package static let magic: [UInt8] = Array("LATENTCK".utf8)
    package static let version: UInt32 = 3
    /// The checkpoint's file name inside a run directory.
    public static let fileName = "checkpoint"
    /// The checkpoint file of the run directory `directory`.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }

    struct Header: Codable {
        var configuration: ModelConfiguration
        var state: TrainingState
        var parameterCount: Int
    }

    /// The model's shape and objective: what the parameters are the parameters of.
    public var configuration: ModelConfiguration
    /// The counters and options that resuming continues from.
    public var state: TrainingState
    /// The model's flat parameter buffer.
    public var parameters: [Float]
    /// Adam's first-moment estimates m₁, one per parameter (MATH.md §3).
    public var firstMoment: [Float]
    /// Adam's second-moment estimates m₂, one per parameter (MATH.md §3).
    public var secondMoment: [Float]

    package init(configuration: ModelConfiguration, state: TrainingState, parameters: [Float],
                firstMoment: [Float], secondMoment: [Float]) {
        self.configuration = configuration
        self.state = state
        self.parameters = parameters
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
    }

    /// The serialized bytes, checksum included.
    package func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // identical runs must write identical files
        let header = try encoder.encode(Header(configuration: configuration, state: state,
                                                     parameterCount: parameters.count))
        var bytes = Checkpoint.magic
        append(Checkpoint.version, to: &bytes)
        append(UInt32(header.count), to: &bytes)
        bytes.append(contentsOf: header)
        for buffer in [parameters, firstMoment, secondMoment] {
            bytes.reserveCapacity(bytes.count + buffer.count * 4)
            for v in buffer { append(v.bitPattern, to: &bytes) }
        }
        append(Checkpoint.crc32(bytes), to: &bytes)
        return bytes
    }

    /// Parses and verifies bytes read from `path` (magic, version, header, sizes, checksum).
    package static func decode(_ bytes: [UInt8], path: String) throws -> Checkpoint {
        guard bytes.count >= magic.count + 12 else {
            if bytes.starts(with: magic.prefix(bytes.count)) || bytes.isEmpty { throw CheckpointError.truncated(path: path) }
            throw CheckpointError.badMagic(path: path)
        }
        guard Array(bytes[0..<magic.count]) == magic else { throw CheckpointError.badMagic(path: path) }
        var cursor = magic.count
        let found = readUInt32(bytes, &cursor)
        guard found <= version, found >= 1 else {
            throw CheckpointError.newerVersion(path: path, found: found, supported: version)
        }
        let headerLength = Int(readUInt32(bytes, &cursor))
        guard headerLength <= bytes.count - cursor - 4 else { throw CheckpointError.truncated(path: path) }
        let storedChecksum = UInt32(bytes[bytes.count - 4]) | UInt32(bytes[bytes.count - 3]) << 8
            | UInt32(bytes[bytes.count - 2]) << 16 | UInt32(bytes[bytes.count - 1]) << 24
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[cursor..<(cursor + headerLength)]))
        } catch {
            let reason = (error as? DecodingError).map(decodingProblem) ?? "\(error)"  // names the key
            throw crc32(Array(bytes[0..<(bytes.count - 4)])) == storedChecksum
                ? CheckpointError.badHeader(path: path, reason: reason) : CheckpointError.checksumMismatch(path: path)
        }
        cursor += headerLength
        let n = header.parameterCount
        guard n >= 0, n < Int.max / 16 else { throw CheckpointError.badHeader(path: path, reason: "parameter count") }
        let expectedLength = cursor + 3 * n * 4 + 4
        guard bytes.count >= expectedLength else { throw CheckpointError.truncated(path: path) }
        guard bytes.count == expectedLength else { throw CheckpointError.checksumMismatch(path: path) }
        guard crc32(Array(bytes[0..<(bytes.count - 4)])) == storedChecksum else {
            throw CheckpointError.checksumMismatch(path: path)
        }
        try header.configuration.validate(checkpoint: path)
        // Checked before the sizes: a format-1 covariance head would otherwise look like a corrupt file.
        guard found >= 2 || header.configuration.posterior != .covariance else {
            throw CheckpointError.obsoleteCovariance(path: path, found: found)
        }
        try header.state.validate(path: path)
        let required = VariationalAutoencoder<Float>.parameterCount(header.configuration)
        guard required == n else { throw CheckpointError.sizeMismatch(path: path, expected: required, found: n) }
        func floats() -> [Float] {
            var out = [Float](repeating: 0, count: n)
            for i in 0..<n { out[i] = Float(bitPattern: readUInt32(bytes, &cursor)) }
            return out
        }
        let p = floats(), m = floats(), v = floats()
        return Checkpoint(configuration: header.configuration, state: header.state, parameters: p,
                          firstMoment: m, secondMoment: v)
    }

    /// Loads `DIR/checkpoint` (or a file path).
    public static func load(from path: String) throws -> Checkpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(path: path)
        }
        let file = isDirectory.boolValue ? Checkpoint.path(in: path) : path
        guard FileManager.default.fileExists(atPath: file) else { throw CheckpointError.missing(path: file) }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError.unwritable(path: file, reason: "cannot be read")
        }
        return try decode([UInt8](data), path: file)
    }

    /// Writes atomically into `directory/checkpoint` (`AtomicFile`).
    public func save(to directory: String) throws {
        let bytes = try encoded()
        do {
            try AtomicFile.write(bytes, to: Checkpoint.path(in: directory))
        } catch {
            throw CheckpointError.unwritable(path: error.path, reason: error.reason)
        }
    }

    /// The CRC-32 of `bytes` (`CRC32`, the same as zlib's).
    package static func crc32(_ bytes: [UInt8]) -> UInt32 { CRC32.checksum(bytes) }
}

private func append(_ v: UInt32, to bytes: inout [UInt8]) {
    bytes.append(UInt8(v & 0xFF))
    bytes.append(UInt8((v >> 8) & 0xFF))
    bytes.append(UInt8((v >> 16) & 0xFF))
    bytes.append(UInt8(v >> 24))
}

private func readUInt32(_ bytes: [UInt8], _ cursor: inout Int) -> UInt32 {
    defer { cursor += 4 }
    return UInt32(bytes[cursor]) | UInt32(bytes[cursor + 1]) << 8 | UInt32(bytes[cursor + 2]) << 16
        | UInt32(bytes[cursor + 3]) << 24
}

/// A model's parameters to and from a ``Checkpoint``.
extension VariationalAutoencoder {
    /// The flat parameter count a configuration implies (without allocating a model).
    package static func parameterCount(_ c: ModelConfiguration) -> Int {
        let enc = [c.inputs] + c.hidden + [c.posteriorParameterCount]
        let dec = [c.latent] + c.hidden.reversed() + [c.inputs]
        func count(_ w: [Int]) -> Int { (0..<(w.count - 1)).reduce(0) { $0 + w[$1] * w[$1 + 1] + w[$1 + 1] } }
        return count(enc) + count(dec) + (c.prior == .mixture ? 2 * c.components * c.latent : 0)
            + (c.likelihood == .gaussian ? c.inputs : 0)
    }

    /// A checkpoint of this Float model with its optimizer.
    package func checkpoint(adam: Adam<Float>, state: TrainingState) -> Checkpoint where T == Float {
        Checkpoint(configuration: configuration, state: state, parameters: store.parameters.array,
                   firstMoment: adam.firstMoment.array, secondMoment: adam.secondMoment.array)
    }

    /// Copies a checkpoint's parameters into this model (of the checkpoint's configuration).
    public func load(_ checkpoint: Checkpoint) where T == Float { load(checkpoint, adam: nil) }

    /// Copies a checkpoint's parameters in (and its moments into `adam` when given).
    package func load(_ checkpoint: Checkpoint, adam: Adam<Float>?) where T == Float {
        for i in 0..<parameterCount { store.parameters[i] = checkpoint.parameters[i] }
        if let adam {
            for i in 0..<parameterCount {
                adam.firstMoment[i] = checkpoint.firstMoment[i]
                adam.secondMoment[i] = checkpoint.secondMoment[i]
            }
        }
    }
}
