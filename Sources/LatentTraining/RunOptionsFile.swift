import Foundation
import LatentModels

/// A run directory's `options.json` as `--resume` reads it: every problem is named by the file's keys (never by a flag
/// that was not given), and the file must agree with the run's checkpoint.
extension TrainingOptions {
    /// Reads `directory/options.json` and checks every value with the rules of `latent train`.
    package static func load(runDirectory directory: String) throws -> TrainingOptions {
        let path = TrainingOptions.path(in: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileManager.default.fileExists(atPath: directory)
                ? CheckpointError.missingOptions(directory: directory) : CheckpointError.missing(path: directory)
        }
        let options: TrainingOptions
        do {
            options = try JSONDecoder().decode(TrainingOptions.self, from: data)
        } catch let error as DecodingError {
            throw CheckpointError.badOptions(path: path, problem: decodingProblem(error))
        } catch {
            throw CheckpointError.badOptions(path: path, problem: "is not the options.json of a latent run")
        }
        // The configuration's settings sit under its key; the others are top-level keys of the same names.
        do {
            try options.configuration.validate()
        } catch let .invalid(setting, requirement, value) {
            throw CheckpointError.badOptions(path: path,
                                             problem: "configuration.\(setting) \(requirement) (got \(value))")
        }
        do {
            try options.validate()
        } catch let .invalid(setting, requirement, value) {
            throw CheckpointError.badOptions(path: path, problem: "\(setting) \(requirement) (got \(value))")
        }
        return options
    }

    /// Refuses a checkpoint that another run wrote: the model configuration and every option the results depend on
    /// must be the same. The data's path is compared only when `comparesData` (when fingerprints cannot tell).
    package func checkAgreement(with checkpoint: Checkpoint, directory: String, comparesData: Bool) throws {
        guard checkpoint.configuration == configuration else {
            throw CheckpointError.configurationMismatch(path: directory)
        }
        let state = checkpoint.state
        var agreement = [("seed", state.seed == seed), ("batch", state.batch == batch),
                         ("learningRate", state.learningRate == learningRate), ("threads", state.threads == threads)]
        if comparesData { agreement.append(("data", state.data == data)) }
        if let recorded = state.parallelism {
            agreement += [("parallelism", recorded == parallelism.rawValue), ("trainLimit", state.trainLimit == trainLimit),
                          ("testLimit", state.testLimit == testLimit)]
        }
        for (key, agrees) in agreement where !agrees {
            throw CheckpointError.optionsMismatch(path: directory, field: key)
        }
    }
}

/// One line naming the key of a decoding error (of options.json or a checkpoint header), e.g. `the key epochs is
/// missing` or `batch is not an integer`.
func decodingProblem(_ error: DecodingError) -> String {
    func name(_ path: [CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            .trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
    switch error {
    case let .keyNotFound(key, context):
        return "the key \(name(context.codingPath + [key])) is missing"
    case let .valueNotFound(_, context):
        return "\(name(context.codingPath)) is null"
    case let .typeMismatch(type, context):
        let kind = type == String.self ? "a string" : type is any BinaryInteger.Type ? "an integer"
            : type is any BinaryFloatingPoint.Type ? "a number" : "\(type)"
        return "\(name(context.codingPath)) is not \(kind)"
    case let .dataCorrupted(context):
        guard !context.codingPath.isEmpty else { return "is not valid JSON" }
        return "\(name(context.codingPath)) is invalid (\(context.debugDescription))"
    @unknown default:
        return "cannot be read (\(error))"
    }
}
