import Foundation
import LatentCore
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// One case of `Fixtures/*.json` (copied from shared/vectors): a tiny model with fixed weights, inputs and noise.
struct ReferenceVector {
    let json: [String: Any]
    let name: String

    init(_ file: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(file + ".json")
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        name = file
    }

    var dims: [String: Any] { json["dims"] as! [String: Any] }
    var inputs: Int { dims["inputs"] as! Int }
    var hidden: [Int] { dims["hidden"] as! [Int] }
    var latent: Int { dims["latent"] as! Int }
    var batch: Int { dims["batch"] as! Int }
    var samples: Int { json["samples"] as! Int }
    var posterior: PosteriorKind { PosteriorKind(rawValue: json["posterior"] as! String)! }
    var expected: [String: Any] { json["expected"] as! [String: Any] }
    var x: [Double] { flatten(json["x"]!) }
    var eps: [Double] { flatten(json["eps"]!) }

    var prior: PriorKind { PriorKind(rawValue: json["prior"] as! String)! }
    var priorParameters: [String: Any]? { json["prior_params"] as? [String: Any] }
    var components: Int { priorParameters.map { flatten($0["means"]!).count / latent } ?? 1 }
    /// The gradient estimator of the case (absent: standard).
    var estimator: PathwiseEstimator { (json["estimator"] as? String).map { PathwiseEstimator(rawValue: $0)! } ?? .standard }

    var configuration: ModelConfiguration {
        let kind: ModelKind = samples > 1 ? .iwae : (prior == .mixture ? .gmvae : .vae)
        return ModelConfiguration(model: kind, posterior: posterior, inputs: inputs, hidden: hidden, latent: latent,
                                  activation: .elu, samples: samples, jitter: json["delta"] as? Double ?? 1e-3,
                                  prior: prior, components: components, estimator: estimator)
    }

    /// A Double model holding the case's weights.
    func makeModel() -> VariationalAutoencoder<Double> {
        let model = VariationalAutoencoder<Double>(configuration)
        let layers = model.encoder.layers + model.decoder.layers
        let specs = (json["encoder"] as! [[String: Any]]) + (json["decoder"] as! [[String: Any]])
        for (layer, spec) in zip(layers, specs) {
            for (view, key) in [(layer.weight, "weight"), (layer.bias, "bias")] {
                let values = flatten(spec[key]!)
                precondition(values.count == view.count, "\(name): \(key) has \(values.count) values")
                for (i, v) in values.enumerated() { model.store.parameters[view.offset + i] = v }
            }
        }
        if let mixture = model.mixture, let prior = priorParameters {
            for (view, key) in [(mixture.means, "means"), (mixture.logVariances, "log_variances")] {
                for (i, v) in flatten(prior[key]!).enumerated() { model.store.parameters[view.offset + i] = v }
            }
        }
        return model
    }

    /// The expected gradient in the model's flat layout.
    func expectedGradient(for model: VariationalAutoencoder<Double>) -> [Double] {
        var g = [Double](repeating: .nan, count: model.parameterCount)
        let layers = model.encoder.layers + model.decoder.layers
        let specs = (json["encoder"] as! [[String: Any]]) + (json["decoder"] as! [[String: Any]])
        for (layer, spec) in zip(layers, specs) {
            for (view, key) in [(layer.weight, "d_weight"), (layer.bias, "d_bias")] {
                for (i, v) in flatten(spec[key]!).enumerated() { g[view.offset + i] = v }
            }
        }
        if let mixture = model.mixture, let prior = priorParameters {
            for (view, key) in [(mixture.means, "d_means"), (mixture.logVariances, "d_log_variances")] {
                for (i, v) in flatten(prior[key]!).enumerated() { g[view.offset + i] = v }
            }
        }
        return g
    }
}

/// Flattens nested JSON arrays of numbers in row-major order.
func flatten(_ value: Any) -> [Double] {
    if let d = value as? Double { return [d] }
    if let i = value as? Int { return [Double(i)] }
    if let n = value as? NSNumber { return [n.doubleValue] }
    if let a = value as? [Any] { return a.flatMap(flatten) }
    fatalError("unexpected JSON value \(value)")
}
