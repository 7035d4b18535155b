import LatentCore

/// Encoder, posterior family, prior, decoder and likelihood over one flat parameter store (MATH.md §1–3).
public final class VariationalAutoencoder<T: BLASScalar>: @unchecked Sendable {
    /// The shape and objective this model was built from.
    public let configuration: ModelConfiguration
    @usableFromInline package let store = ParameterStore<T>()
    @usableFromInline package let encoder: MLP
    @usableFromInline package let decoder: MLP
    @usableFromInline package let posterior: AnyPosterior<T>
    /// The mixture prior's parameters, when the configuration has one (nil: N(0, I)).
    @usableFromInline package let mixture: GaussianMixturePrior?
    /// The decoder's observation model (its own parameters, if any, come after the prior's in the store).
    @usableFromInline package let likelihood: any Likelihood
    /// Training's Cholesky factorizations that needed a raised jitter (covariance posterior), once each.
    @usableFromInline package let factorizationRetries = FactorizationCounter()
    /// The same for evaluation (NELBO, IWAE bounds, posterior statistics), once per example and evaluation pass.
    @usableFromInline package let evaluationFactorizationRetries = FactorizationCounter()

    /// Builds the encoder, posterior, prior, decoder and likelihood the configuration describes and reserves their
    /// parameters in one flat store; ``initialize(seed:)`` gives them their starting values.
    public init(_ configuration: ModelConfiguration) {
        self.configuration = configuration
        posterior = AnyPosterior(configuration, retries: factorizationRetries)
        encoder = MLP(widths: [configuration.inputs] + configuration.hidden + [configuration.posteriorParameterCount],
                      activation: configuration.activation, name: "encoder", store: store)
        decoder = MLP(widths: [configuration.latent] + configuration.hidden.reversed() + [configuration.inputs],
                      activation: configuration.activation, name: "decoder", store: store)
        mixture = configuration.prior == .mixture
            ? GaussianMixturePrior(components: configuration.components, latent: configuration.latent, store: store)
            : nil
        likelihood = configuration.likelihood.make(inputs: configuration.inputs, store: store)
        store.allocate()
    }

    /// The number of scalars in the flat parameter store: every weight, bias and prior or likelihood parameter.
    public var parameterCount: Int { store.count }

    /// The objective this model trains (`Objective.of`), with the configured gradient estimator.
    @usableFromInline package var objective: any TrainingObjective {
        Objective.of(self, samples: configuration.samples, estimator: configuration.estimator)
    }

    /// PyTorch's default Linear initialization: weights and biases uniform in ±1/√fan_in.
    public func initialize(seed: UInt64) {
        var rng = RandomStream(seed: seed, purpose: .initialization)
        let p = store.parameters.pointer
        for layer in encoder.layers + decoder.layers {
            let bound = 1 / Double(layer.inputs).squareRoot()
            for view in [layer.weight, layer.bias] {
                for i in view.range { p[i] = T((rng.uniform() * 2 - 1) * bound) }
            }
        }
        mixture?.initialize(parameters: p, rng: &rng)
        // Every family starts near q = N(μ, I): its log-scales (s, or d with L_ii or A_ii = e^d) start near 0. The
        // covariance family's strictly lower entries of A start 1/√k as large, so that row i's i of them add about as
        // much to Σ_ii as one entry would, at every k (MATH.md §2).
        if configuration.posterior == .covariance, let last = encoder.layers.last {
            let k = configuration.latent, scale = T(1 / Double(k).squareRoot())
            for output in (2 * k)..<(2 * k + k * (k - 1) / 2) {
                for h in 0..<last.inputs { p[last.weight.offset + output * last.inputs + h] *= scale }
                p[last.bias.offset + output] *= scale
            }
        }
    }

    /// FLOPs of one training step on `rows` examples with `samples` decoder passes each (MATH.md §8: forward ×3).
    @usableFromInline package func trainingFLOPs(rows: Int, samples: Int = 1) -> Double {
        3 * (encoder.forwardFLOPs(rows: rows) + decoder.forwardFLOPs(rows: rows * samples))
    }
}
