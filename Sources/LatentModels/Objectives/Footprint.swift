import LatentCore

/// The sizes of a model's buffers from its configuration alone, so that a run's memory can be estimated before any
/// of them is allocated; the tests check each against the buffers the initializers allocate.
extension VariationalAutoencoder {
    /// The scalars of the flat parameter store a model of `configuration` has: its views reserved as the model's
    /// initializer reserves them, in a store that is never allocated.
    package static func parameterCount(of configuration: ModelConfiguration) -> Int {
        let store = ParameterStore<T>()
        _ = MLP(widths: [configuration.inputs] + configuration.hidden + [configuration.posteriorParameterCount],
                activation: configuration.activation, name: "encoder", store: store)
        _ = MLP(widths: [configuration.latent] + configuration.hidden.reversed() + [configuration.inputs],
                activation: configuration.activation, name: "decoder", store: store)
        if configuration.prior == .mixture {
            _ = GaussianMixturePrior(components: configuration.components, latent: configuration.latent, store: store)
        }
        _ = configuration.likelihood.make(inputs: configuration.inputs, store: store)
        return store.count
    }
}

extension StepWorkspace {
    /// The scalars a workspace of `capacity` examples and `samples` decoder rows each (the configuration's by
    /// default) allocates, as `init(model:capacity:samples:)` does.
    package static func scalars(_ configuration: ModelConfiguration, capacity c: Int, samples: Int? = nil) -> Int {
        let m = samples ?? configuration.samples, k = configuration.latent, d = configuration.inputs
        let encoder = (configuration.hidden + [configuration.posteriorParameterCount]).reduce(0, +)
        let decoder = (configuration.hidden + [d]).reduce(0, +)
        let scratch = AnyPosterior<T>(configuration).scratchPerRow
        var total = c * d + 2 * c * encoder + 2 * c * m * decoder  // x and both MLPs' outputs and gradients
        total += 4 * m * c * k + c * scratch + 4 * c + 2 * c * m + d + 4 * m * c  // the per-example buffers
        if configuration.prior == .mixture {
            total += m * c * configuration.components + MixtureScratch<T>.scalars(configuration, rows: m * c)
        }
        return total
    }

    /// The scalars a view of `examples` examples of a shared workspace allocates itself (its per-call scratch).
    package static func viewScalars(_ configuration: ModelConfiguration, examples: Int) -> Int {
        configuration.inputs + (configuration.prior == .mixture
            ? MixtureScratch<T>.scalars(configuration, rows: configuration.samples * examples) : 0)
    }
}

extension MixtureScratch {
    /// The scalars of the mixture prior's GEMM buffers for `rows` rows, as `init(prior:rows:)` allocates them.
    package static func scalars(_ configuration: ModelConfiguration, rows: Int) -> Int {
        let k = configuration.latent, components = configuration.components
        return 2 * rows * 2 * k + 3 * components * 2 * k + 3 * components
    }
}
