import LatentData

/// Why a checkpoint could not be written or read, and what to do about it.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// No checkpoint (or run directory) exists at `path`.
    case missing(path: String)
    /// A file of the run (checkpoint, metrics, options) could not be created, written or read at `path`.
    case unwritable(path: String, reason: String)
    /// The file does not start with the checkpoint magic: it is not a Latent checkpoint.
    case badMagic(path: String)
    /// The checkpoint's format version `found` is not one this build reads (newer than `supported`, or 0).
    case newerVersion(path: String, found: UInt32, supported: UInt32)
    /// The file ends before the lengths its header promises: an incomplete write.
    case truncated(path: String)
    /// The CRC-32 (or the file's exact length) does not match its contents: the file is corrupt.
    case checksumMismatch(path: String)
    /// The header's parameter count differs from what its model configuration needs.
    case sizeMismatch(path: String, expected: Int, found: Int)
    /// The JSON header cannot be decoded (a field of the wrong type or missing).
    case badHeader(path: String, reason: String)
    /// The checkpoint's model configuration differs from the one in the run's `options.json`.
    case configurationMismatch(path: String)
    /// A run directory's `options.json` and checkpoint disagree on a training option (`field`, its options.json key).
    case optionsMismatch(path: String, field: String)
    /// A directory given to `--resume` without the run's `options.json`.
    case missingOptions(directory: String)
    /// A covariance-family checkpoint of format 1, whose encoder emitted a full k×k A (format 2: lower triangular).
    case obsoleteCovariance(path: String, found: UInt32)
    /// A header field (`field`, its JSON key path, e.g. `state.step`) outside what `latent train` can write;
    /// `problem` says what it must be and what it is.
    case invalidField(path: String, field: String, problem: String)
    /// The `split` ("training" or "test") set in `data` is not the one the checkpoint at `path` was trained on.
    case dataChanged(path: String, split: String, data: String, recorded: ImageSetFingerprint,
                     found: ImageSetFingerprint)
    /// A run's `options.json` at `path` that cannot be resumed; `problem` names its key and what is wrong with it.
    case badOptions(path: String, problem: String)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .missing(path):
            return "no checkpoint at \(path); pass the --out directory of a finished `latent train` run"
        case let .unwritable(path, reason):
            return "cannot write \(path): \(reason); choose a writable --out directory"
        case let .badMagic(path):
            return "\(path) is not a Latent checkpoint (bad magic); pass the directory written by `latent train --out`"
        case let .newerVersion(path, found, supported):
            return "\(path) has checkpoint format \(found), this build reads up to \(supported); update latent"
        case let .truncated(path):
            return "\(path) is truncated; it was not written by a complete save (use the run's previous checkpoint)"
        case let .checksumMismatch(path):
            return "\(path) is corrupt (checksum mismatch); retrain or restore the file from a backup"
        case let .sizeMismatch(path, expected, found):
            return "\(path) holds \(found) parameters but its configuration needs \(expected); the file is corrupt"
        case let .configurationMismatch(path):
            return "the checkpoint in \(path) was written for a different model configuration than its options.json; "
                + "start a new run with another --out"
        case let .optionsMismatch(path, field):
            return "the options.json in \(path) disagrees with its checkpoint on \(field) (edited, or from another "
                + "run); restore it, or start a new run with another --out"
        case let .missingOptions(directory):
            return "\(directory) has no options.json, so it cannot be resumed; pass the --out directory of a "
                + "`latent train` run (its checkpoint alone still works with eval, sample, …)"
        case let .obsoleteCovariance(path, found):
            return "\(path) has checkpoint format \(found), whose covariance posterior emits a full k×k A; this build's "
                + "emits a lower-triangular A (format \(Checkpoint.version)) and cannot read it; retrain with this build"
        case let .badHeader(path, reason):
            return "\(path) has an unreadable header (\(reason)); the file is corrupt"
        case let .invalidField(path, field, problem):
            return "\(path) has an invalid header: \(field) \(problem); the file was damaged or edited, restore it "
                + "from a backup or retrain"
        case let .dataChanged(path, split, data, recorded, found):
            let change = recorded.count != found.count
                ? "holds \(found.count) images, the checkpoint \(path) was trained with \(recorded.count)"
                : "holds as many images (\(found.count)) as when the checkpoint \(path) was written, but others "
                    + "(CRC-32 \(hex(found.crc32)), recorded \(hex(recorded.crc32)))"
            return "the \(split) set in \(data) changed since the run: it \(change); restore the run's data (or pass "
                + "--data a copy of it), or start a new run with another --out"
        case let .badOptions(path, problem):
            return "\(path): \(problem); edit it to the value the run was started with, or start a new run with "
                + "another --out"
        }
    }
}

/// A CRC-32 as eight hex digits.
private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
