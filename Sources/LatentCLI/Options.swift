import ArgumentParser
import Foundation
import LatentData
import LatentModels

extension ModelKind: ExpressibleByArgument {}
extension PosteriorKind: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}

/// Comma-separated positive integers, e.g. `300,300`.
struct IntegerList: ExpressibleByArgument {
    var values: [Int]
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        values = parts.map { $0! }
    }
    init(_ values: [Int]) { self.values = values }
    var defaultValueDescription: String { values.map(String.init).joined(separator: ",") }
}

/// The model's shape and objective.
struct ModelOptions: ParsableArguments {
    @Option(help: "Objective: vae (ELBO, standard normal prior).")
    var model: ModelKind = .vae
    @Option(help: "Posterior family: diagonal.")
    var posterior: PosteriorKind = .diagonal
    @Option(help: "Latent dimension k.")
    var latent: Int = 10
    @Option(help: "Hidden layer widths of encoder and decoder (the decoder mirrors them).")
    var hidden: IntegerList = IntegerList([300, 300])
    @Option(help: "Hidden activation: elu, relu, tanh.")
    var activation: Activation = .elu

    var configuration: ModelConfiguration {
        ModelConfiguration(model: model, posterior: posterior, hidden: hidden.values, latent: latent,
                           activation: activation)
    }

    func validate() throws {
        guard latent > 0 else { throw ValidationError("--latent must be at least 1 (got \(latent))") }
        guard hidden.values.allSatisfy({ $0 > 0 }) else { throw ValidationError("--hidden widths must be positive") }
    }
}

/// Where the data comes from.
struct DataOptions: ParsableArguments {
    @Option(help: "Directory with the four MNIST-style IDX files (plain or .gz).")
    var data: String = Dataset.defaultDirectory
}

/// Rejects NaN and infinities, which ArgumentParser's Double parsing accepts.
func requireFinite(_ value: Double, _ flag: String) throws {
    guard value.isFinite else { throw ValidationError("\(flag) must be a finite number (got \(value))") }
}
