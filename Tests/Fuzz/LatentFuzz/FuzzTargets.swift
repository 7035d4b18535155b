import Foundation
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

/// The code under fuzzing, shared by the libFuzzer entry point and the replay executable: each target takes the raw
/// bytes of one input and must return (whatever the bytes) without trapping; properties that fail call `violation`.
enum FuzzTarget: String, CaseIterable, Sendable {
    /// `IDXReader.gunzip` (when the input starts with the gzip signature, as `readBytes` does), then
    /// `parseImages` and `parseLabels` on the result.
    case idx
    /// `Checkpoint.decode` on the input as is and with its trailing CRC-32 recomputed (so that byte mutations reach
    /// the checks behind the checksum); a decoded checkpoint must re-encode and decode to the same values, and one
    /// whose step passes `validatePosition` must give the training loop a batch inside an epoch to continue from.
    /// When fuzzing, `CheckpointMutator` writes most inputs: well-framed files with mutated (often hostile) headers.
    case checkpoint

    /// Runs this target on one input.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .idx: FuzzTargets.idx(bytes)
        case .checkpoint: FuzzTargets.checkpoint(bytes)
        }
    }
}

/// The fuzz targets' bodies.
enum FuzzTargets {
    static let path = "fuzz-input"

    /// A property that does not hold: trap, so that libFuzzer records the input as a crash.
    static func violation(_ message: String) -> Never {
        FileHandle.standardError.write(Data("fuzz property violated: \(message)\n".utf8))
        fatalError(message)
    }

    /// Formats an error the way the CLI would (descriptions are user-facing, so they are exercised too).
    static func describe(_ error: Error) {
        let text = String(describing: error)
        if text.isEmpty { violation("empty error description for \(type(of: error))") }
    }

    // MARK: - IDX

    static func idx(_ input: [UInt8]) {
        var bytes = input
        if input.count >= 2 && input[0] == 0x1F && input[1] == 0x8B {
            do {
                bytes = try IDXReader.gunzip(input, path: path)
            } catch {
                describe(error)
                return
            }
        }
        do {
            let set = try IDXReader.parseImages(bytes, path: path)
            let declared = Int(bigEndian(bytes, 4)) * Int(bigEndian(bytes, 8)) * Int(bigEndian(bytes, 12))
            guard set.rows > 0, set.columns > 0, set.pixels.count == set.count * set.rows * set.columns,
                  set.pixels.count == declared, 16 + set.pixels.count <= bytes.count,
                  set.pixels.elementsEqual(bytes[16..<(16 + set.pixels.count)]) else {
                violation("parseImages returned \(set.count)×\(set.rows)×\(set.columns) with \(set.pixels.count) "
                          + "pixels from \(bytes.count) bytes")
            }
        } catch {
            describe(error)
        }
        do {
            let labels = try IDXReader.parseLabels(bytes, path: path)
            guard labels.count == Int(bigEndian(bytes, 4)), labels.elementsEqual(bytes[8..<(8 + labels.count)]) else {
                violation("parseLabels returned \(labels.count) labels from \(bytes.count) bytes")
            }
        } catch {
            describe(error)
        }
    }

    static func bigEndian(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    // MARK: - Checkpoint

    static func checkpoint(_ input: [UInt8]) {
        decodeCheckpoint(input)
        if input.count >= 4 { decodeCheckpoint(resealed(input)) }
    }

    /// The bytes with their last four replaced by the little-endian CRC-32 of everything before them.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = Array(bytes.dropLast(4))
        let crc = Checkpoint.crc32(b)
        for i in 0..<4 { b.append(UInt8((crc >> (8 * UInt32(i))) & 0xFF)) }
        return b
    }

    static func decodeCheckpoint(_ bytes: [UInt8]) {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.decode(bytes, path: path)
        } catch {
            describe(error)
            return
        }
        let n = checkpoint.parameters.count
        guard checkpoint.firstMoment.count == n, checkpoint.secondMoment.count == n,
              VariationalAutoencoder<Float>.parameterCount(checkpoint.configuration) == n else {
            violation("decoded checkpoint has \(n)/\(checkpoint.firstMoment.count)/\(checkpoint.secondMoment.count) "
                      + "values for \(checkpoint.configuration)")
        }
        // What was loaded must save and load back unchanged (a resumed run saves it again).
        let again: [UInt8]
        do {
            again = try checkpoint.encoded()
        } catch {
            violation("a decoded checkpoint does not re-encode: \(error)")
        }
        do {
            let back = try Checkpoint.decode(again, path: path)
            guard back.configuration == checkpoint.configuration, back.state == checkpoint.state,
                  back.parameters.map(\.bitPattern) == checkpoint.parameters.map(\.bitPattern),
                  back.firstMoment.map(\.bitPattern) == checkpoint.firstMoment.map(\.bitPattern),
                  back.secondMoment.map(\.bitPattern) == checkpoint.secondMoment.map(\.bitPattern) else {
                violation("re-encoded checkpoint decodes to different values")
            }
        } catch {
            violation("re-encoded checkpoint does not decode: \(error)")
        }
        let state = checkpoint.state
        for images in [state.trainSet?.count, state.testSet?.count, state.trainLimit, 1].compactMap({ $0 }) {
            for total in [state.step, state.step &+ 1] { checkPosition(state, images: images, totalSteps: total) }
        }
    }

    /// What `TrainingSession.resume` relies on: a position that `validatePosition` accepts for a training set of
    /// `images` images is the start of a batch inside an epoch (when the run goes on), computed without overflow.
    static func checkPosition(_ state: TrainingState, images: Int, totalSteps: Int) {
        do {
            try state.validatePosition(trainingImages: images, totalSteps: totalSteps, path: path)
        } catch {
            describe(error)
            return
        }
        let perEpoch = images / state.batch + (images % state.batch == 0 ? 0 : 1)
        let (start, overflow) = state.epoch.multipliedReportingOverflow(by: perEpoch)
        guard !overflow, perEpoch >= 1 else {
            violation("position accepted for epoch \(state.epoch) of \(perEpoch) steps (\(images) images)")
        }
        guard state.step < totalSteps else { return }  // the run is over: the loop does not start
        let batch = state.step - start
        let examples = state.epochSums?.examples ?? 0
        let most = batch.multipliedReportingOverflow(by: state.batch)
        guard (0..<perEpoch).contains(batch), most.overflow || examples <= most.partialValue else {
            violation("step \(state.step), epoch \(state.epoch) accepted with \(perEpoch) steps per epoch: the loop "
                      + "would continue at batch \(batch) (\(examples) examples so far)")
        }
    }
}
