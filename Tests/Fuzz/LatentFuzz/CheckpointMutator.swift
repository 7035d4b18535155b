import Foundation
import LatentModels
import LatentEvaluation
import LatentTraining

/// A structure-aware mutator for checkpoint files (libFuzzer's `LLVMFuzzerCustomMutator` for the checkpoint
/// target). Foundation's JSON parser is not instrumented, so byte mutations of the header get no coverage feedback,
/// and any change of its length breaks the length field, the file size and the CRC-32. This mutator changes the
/// header's JSON, as bytes or as values (fields set to edge-case numbers, enums swapped, keys dropped), then writes a
/// consistent file around it: header length, parameters for the header's `parameterCount`, checksum. Its outputs
/// are real checkpoint files, so a crash it leads to replays with a plain `Checkpoint.decode`.
struct CheckpointMutator {
    /// SplitMix64, seeded by libFuzzer (mutations must be reproducible from the seed).
    var state: UInt64
    init(seed: UInt32) { state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// A file's parts, when it has the checkpoint framing (magic, version, header length, header, payload, CRC).
    struct Frame {
        var version: [UInt8]
        var header: [UInt8]
        var payload: [UInt8]

        init?(_ b: [UInt8]) {
            guard b.count >= 20, Array(b[0..<8]) == Checkpoint.magic else { return nil }
            let length = Int(b[12]) | Int(b[13]) << 8 | Int(b[14]) << 16 | Int(b[15]) << 24
            guard length <= b.count - 20 else { return nil }
            version = Array(b[8..<12])
            header = Array(b[16..<(16 + length)])
            payload = Array(b[(16 + length)..<(b.count - 4)])
        }

        /// Magic, version, header length, header, payload, CRC-32.
        var bytes: [UInt8] {
            var b = Checkpoint.magic + version
            let length = UInt32(truncatingIfNeeded: header.count)
            for i in 0..<4 { b.append(UInt8((length >> (8 * UInt32(i))) & 0xFF)) }
            b += header
            b += payload
            let crc = Checkpoint.crc32(b)
            for i in 0..<4 { b.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
            return b
        }
    }

    /// Mutates `input` into a new input of at most `maxSize` bytes; `byteMutate` is libFuzzer's own mutation
    /// (`LLVMFuzzerMutate`) of a buffer's first `count` bytes within its capacity, returning the new count.
    mutating func mutate(_ input: [UInt8], maxSize: Int,
                         byteMutate: (inout [UInt8], Int) -> Int) -> [UInt8] {
        func plain() -> [UInt8] {
            var buffer = input + [UInt8](repeating: 0, count: max(0, maxSize - input.count))
            let count = byteMutate(&buffer, input.count)
            return Array(buffer.prefix(count))
        }
        // A quarter of the time, and for anything that is not framed like a checkpoint: libFuzzer's mutations.
        guard below(4) != 0, var frame = Frame(input) else { return plain() }
        switch below(4) {
        case 0:  // the header's bytes (libFuzzer's mutations, the dictionary's JSON tokens), the framing kept right
            var buffer = frame.header + [UInt8](repeating: 0, count: max(0, maxSize - input.count))
            frame.header = Array(buffer.prefix(byteMutate(&buffer, frame.header.count)))
        case 1:  // values aimed at the range checks behind the CRC
            guard let header = hostileValues(frame.header) else { return plain() }
            frame.header = header
        default:  // one or more of the header's values
            guard let header = mutateValues(frame.header) else { return plain() }
            frame.header = header
        }
        resizePayload(&frame, maxSize: maxSize)
        let output = frame.bytes
        return output.count <= maxSize ? output : plain()
    }

    /// Sizes the payload for the header's `parameterCount` (when it fits), sometimes first setting that count to
    /// what the configuration needs (so that mutated configurations decode all the way).
    mutating func resizePayload(_ frame: inout Frame, maxSize: Int) {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(frame.header), options: [.mutableContainers]))
                as? [String: Any] else { return }
        if below(2) == 0, let configuration = object["configuration"],
           let data = try? JSONSerialization.data(withJSONObject: configuration, options: [.sortedKeys]),
           let decoded = try? JSONDecoder().decode(ModelConfiguration.self, from: data),
           let required = Self.parameterCountIfSmall(decoded) {
            object["parameterCount"] = required
            if let header = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                frame.header = [UInt8](header)
            }
        }
        guard let n = (object["parameterCount"] as? NSNumber)?.intValue, n >= 0, n <= maxSize / 12,
              12 * n + frame.header.count + 20 <= maxSize else { return }
        let size = 12 * n
        if frame.payload.count > size {
            frame.payload.removeLast(frame.payload.count - size)
        } else {
            while frame.payload.count < size { frame.payload.append(UInt8(truncatingIfNeeded: next())) }
        }
    }

    /// The parameter count of a configuration whose sizes are all small (the library's formula, which traps on
    /// overflow, is left to the decoder under test).
    static func parameterCountIfSmall(_ c: ModelConfiguration) -> Int? {
        let sizes = [c.inputs, c.latent, c.components] + c.hidden
        guard c.hidden.count < 64, sizes.allSatisfy({ $0 > -(1 << 12) && $0 < 1 << 12 }) else { return nil }
        return VariationalAutoencoder<Float>.parameterCount(c)
    }

    static let interestingIntegers: [Int] = [
        0, 1, 2, 3, -1, -2, 255, 256, 4096, 65_535, 65_536, Int(Int32.max), Int(Int32.max) + 1, Int(UInt32.max),
        Int(UInt32.max) + 1, 3_037_000_499, 3_037_000_500, Int.max / 16, Int.max / 12, Int.max / 2, Int.max - 1,
        Int.max, Int.min, Int.min + 1,
    ]
    static let interestingDoubles: [Double] = [
        0, -0.0, 1, -1, 1e-3, .leastNonzeroMagnitude, .leastNormalMagnitude, 1e300, .greatestFiniteMagnitude,
        -.greatestFiniteMagnitude,
    ]
    static let enumValues = [
        "model": ["vae", "gmvae", "iwae"], "posterior": ["diagonal", "full", "covariance"],
        "activation": ["elu", "relu", "tanh", "identity"], "prior": ["normal", "mixture"],
        "likelihood": ["bernoulli", "gaussian"], "binarization": ["dynamic", "none"],
        "estimator": ["standard", "stl", "dreg"], "parallelism": ["auto", "reference", "data", "tensor", "blas"],
    ]

    /// A number near or far from `current`.
    mutating func number(near current: Any?) -> Any {
        let old = (current as? NSNumber)?.intValue ?? 0
        switch below(5) {
        case 0: return Self.interestingDoubles[below(Self.interestingDoubles.count)]
        case 1: return old &+ (below(9) - 4)
        case 2: return Int(truncatingIfNeeded: next())
        default: return Self.interestingIntegers[below(Self.interestingIntegers.count)]
        }
    }

    /// One of `values`.
    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }

    /// Counters near the edges of what a header may hold: negative, zero, one, the limits and past them.
    var edgeCounts: [Int] {
        [-5, -1, 0, 1, 2, 7, TrainingState.epochLimit, TrainingState.epochLimit + 1, TrainingState.stepLimit,
         TrainingState.stepLimit + 1, Int(UInt32.max), Int(UInt32.max) + 1, Int.max, Int.min]
    }

    /// The header with a value a damaged or edited file could hold, aimed at one range check behind the CRC-32: a
    /// negative or huge counter, a step that does not (or just does) fit its epoch and data set, fingerprints of
    /// impossible sizes, partial sums that count too much, a configuration the command line refuses.
    mutating func hostileValues(_ header: [UInt8]) -> [UInt8]? {
        guard var root = (try? JSONSerialization.jsonObject(with: Data(header), options: [.mutableContainers]))
                as? [String: Any] else { return nil }
        var state = root["state"] as? [String: Any] ?? [:]
        var configuration = root["configuration"] as? [String: Any] ?? [:]
        func int(_ key: String, _ fallback: Int) -> Int { (state[key] as? NSNumber)?.intValue ?? fallback }
        switch below(11) {
        case 0:
            state[pick(["step", "epoch", "batch", "threads", "optimizerStep", "skippedBatches", "factorizationRetries",
                        "trainLimit", "testLimit", "ranks"])] = pick(edgeCounts)
        case 1, 2:  // a step around the boundaries of an epoch of the recorded data set, with or without partial sums
            let images = max(1, (state["trainSet"] as? [String: Any]).flatMap { ($0["count"] as? NSNumber)?.intValue }
                ?? 40)
            let batch = max(1, int("batch", 4))
            let perEpoch = images / batch + (images % batch == 0 ? 0 : 1)
            let epoch = pick([0, 1, 2, int("epoch", 1), int("epoch", 1) &+ 1])
            state["epoch"] = epoch
            state["step"] = epoch &* perEpoch &+ pick([-perEpoch - 1, -perEpoch, -perEpoch + 1, -1, 0, 1, perEpoch - 1,
                                                     perEpoch, -7, 7])
            if below(2) == 0 { state.removeValue(forKey: "epochSums") }
            else { state["epochSums"] = ["rec": 1.5, "kl": 0.5, "loss": 2.0, "examples": pick([0, 1, batch, -1])] }
        case 3:
            let key = pick(["trainSet", "testSet"])
            if below(4) == 0 { state.removeValue(forKey: key) }
            else { state[key] = ["count": pick(edgeCounts), "crc32": pick([0, -1, Int(UInt32.max), Int(UInt32.max) + 1])] }
        case 4:
            state["epochSums"] = ["rec": pick(Self.interestingDoubles), "kl": pick(Self.interestingDoubles),
                                  "loss": pick(Self.interestingDoubles), "examples": pick(edgeCounts)]
        case 5:
            state[pick(["learningRate", "step", "epoch"])] = pick(Self.interestingDoubles.map { -$0 } + [0, 1e-3])
        case 6:
            configuration["hidden"] = pick([[], [0], [-3], [1], [3, 0], Array(repeating: 1, count: 65)] as [[Int]])
        case 7:  // objective, prior and estimator combinations
            configuration["model"] = pick(["vae", "gmvae", "iwae"])
            configuration["prior"] = pick(["normal", "mixture"])
            configuration["estimator"] = pick(["standard", "stl", "dreg"])
            configuration["samples"] = pick([1, 2, 0, -1, ModelConfiguration.samplesLimit + 1])
        case 8:
            configuration["jitter"] = pick([-1e-3, -0.0, 0, 1e-3, -1e300, 1e300])
        case 9:
            configuration[pick(["latent", "inputs", "components"])] = pick([0, -1, 1, 4096, 4097, ModelConfiguration.sizeLimit + 1])
        default:
            state["parallelism"] = pick(["auto", "reference", "data", "tensor", "blas", "", "fast"])
        }
        root["state"] = state
        root["configuration"] = configuration
        guard let data = try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]) else { return nil }
        return [UInt8](data)
    }

    /// The header with one to three of its values changed, or nil when it is not a JSON object.
    mutating func mutateValues(_ header: [UInt8]) -> [UInt8]? {
        guard var root = (try? JSONSerialization.jsonObject(with: Data(header), options: [.mutableContainers]))
                as? [String: Any] else { return nil }
        for _ in 0...below(3) {
            let section = ["configuration", "state", "parameterCount"][below(3)]
            if section == "parameterCount" {
                root[section] = below(3) == 0 ? Self.interestingIntegers[below(Self.interestingIntegers.count)]
                    : ((root[section] as? NSNumber)?.intValue ?? 0) &+ (below(9) - 4)
                continue
            }
            guard var object = root[section] as? [String: Any], !object.isEmpty else { continue }
            let key = object.keys.sorted()[below(object.count)]
            switch below(8) {
            case 0:
                object.removeValue(forKey: key)
            case 1:
                if let values = Self.enumValues[key] {
                    object[key] = values[below(values.count)] + (below(8) == 0 ? "x" : "")
                } else {
                    object[key] = number(near: object[key])
                }
            case 2 where key == "hidden" || object[key] is [Any]:
                var list = object[key] as? [Any] ?? []
                switch below(3) {
                case 0: list.append(number(near: list.last))
                case 1: if !list.isEmpty { list.removeLast() }
                default: if !list.isEmpty { list[below(list.count)] = number(near: list[below(list.count)]) }
                }
                object[key] = list
            case 3 where key == "epochSums":
                object[key] = ["rec": number(near: 1), "kl": number(near: 1), "loss": number(near: 1),
                               "examples": number(near: 8)]
            case 4:
                object[key] = ["", "x", "-", "\u{0}", "é", "[]"][below(6)]
            default:
                if let values = Self.enumValues[key] { object[key] = values[below(values.count)] }
                else if object[key] is String { object[key] = "/data/\(below(100))" }
                else { object[key] = number(near: object[key]) }
            }
            root[section] = object
        }
        guard let data = try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]) else { return nil }
        return [UInt8](data)
    }
}
