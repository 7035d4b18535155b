import LatentData

/// Which objective a model trains: the ELBO with a standard normal (vae) or mixture (gmvae) prior, or the IWAE bound.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
    case vae, gmvae, iwae
}

/// Everything that fixes a model's shape and objective; stored in checkpoint headers and checked on load.
public struct ModelConfiguration: Codable, Equatable, Sendable {
    public var model: ModelKind = .vae
    public var posterior: PosteriorKind = .diagonal
    public var inputs = 784
    public var hidden = [300, 300]
    public var latent = 10
    public var activation: Activation = .elu
    /// Importance samples per example (IWAE); 1 for the ELBO.
    public var samples = 1
    /// δ in Σ = AAᵀ + δI for the covariance posterior.
    public var jitter = 1e-3
    /// The prior: N(0, I) or the learnable mixture (always the mixture for `gmvae`).
    public var prior: PriorKind = .normal
    /// Mixture components K (mixture prior only).
    public var components = 500
    /// The decoder's observation model.
    public var likelihood: LikelihoodKind = .bernoulli
    /// How training images become inputs: fresh binary draws every step, or the intensities as they are.
    public var binarization: BinarizationMode = .dynamic

    public init(model: ModelKind = .vae, posterior: PosteriorKind = .diagonal, inputs: Int = 784,
                hidden: [Int] = [300, 300], latent: Int = 10, activation: Activation = .elu, samples: Int = 1,
                jitter: Double = 1e-3, prior: PriorKind? = nil, components: Int = 500,
                likelihood: LikelihoodKind = .bernoulli, binarization: BinarizationMode = .dynamic) {
        self.model = model
        self.posterior = posterior
        self.inputs = inputs
        self.hidden = hidden
        self.latent = latent
        self.activation = activation
        self.samples = samples
        self.jitter = jitter
        self.prior = prior ?? (model == .gmvae ? .mixture : .normal)
        self.components = components
        self.likelihood = likelihood
        self.binarization = binarization
    }

    /// Decodes a checkpoint header; keys added after format 1 was first written default to their old meaning.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelKind.self, forKey: .model)
        posterior = try c.decode(PosteriorKind.self, forKey: .posterior)
        inputs = try c.decode(Int.self, forKey: .inputs)
        hidden = try c.decode([Int].self, forKey: .hidden)
        latent = try c.decode(Int.self, forKey: .latent)
        activation = try c.decode(Activation.self, forKey: .activation)
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? 1
        jitter = try c.decodeIfPresent(Double.self, forKey: .jitter) ?? 1e-3
        prior = try c.decodeIfPresent(PriorKind.self, forKey: .prior) ?? (model == .gmvae ? .mixture : .normal)
        components = try c.decodeIfPresent(Int.self, forKey: .components) ?? 500
        likelihood = try c.decodeIfPresent(LikelihoodKind.self, forKey: .likelihood) ?? .bernoulli
        binarization = try c.decodeIfPresent(BinarizationMode.self, forKey: .binarization) ?? .dynamic
    }

    /// Encoder outputs per example for the configured posterior family.
    public var posteriorParameterCount: Int {
        switch posterior {
        case .diagonal: return 2 * latent
        // μ, the log-diagonal and the strictly lower entries of a lower-triangular factor (L, or A of Σ = AAᵀ + δI).
        case .full, .covariance: return 2 * latent + latent * (latent - 1) / 2
        }
    }

    /// Largest layer width, latent dimension or component count a configuration may declare: keeps every
    /// parameter count far from overflow, whatever a checkpoint header says.
    public static let sizeLimit = 1 << 20

    /// Largest importance sample count m for training: every step decodes batch × m rows of `inputs` outputs (and
    /// as many hidden activations and their gradients), about 1.2 GB of Float workspace at batch 100, m = 1000, 784
    /// inputs. Tighter bounds on the IWAE-m estimate come from `latent eval --iw`, streamed in constant memory.
    public static let samplesLimit = 1000

    /// Whether every size is positive and small enough that parameter counts cannot overflow.
    public var hasSaneSizes: Bool {
        hidden.count <= 64 && samples >= 1 && samples <= ModelConfiguration.samplesLimit
            && ([inputs, latent, components] + hidden).allSatisfy { (1...ModelConfiguration.sizeLimit).contains($0) }
            && latent <= 4096
    }

    /// Checks ranges; the message names the flag to change.
    public func validate() throws {
        func fail(_ s: String) -> ConfigurationError { ConfigurationError.invalid(s) }
        guard inputs > 0 else { throw fail("inputs must be positive") }
        guard samples <= ModelConfiguration.samplesLimit else {
            throw fail("--samples must be at most \(ModelConfiguration.samplesLimit) (got \(samples)): each training "
                + "step decodes batch × samples rows; estimate tighter bounds with `latent eval --iw 5000` instead")
        }
        guard hasSaneSizes else {
            throw fail("layer widths, --latent (≤ 4096) and --components must be at most \(ModelConfiguration.sizeLimit)")
        }
        guard latent > 0 else { throw fail("--latent must be at least 1 (got \(latent))") }
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 > 0 }) else {
            throw fail("--hidden must list positive layer widths, e.g. 300,300 (got \(hidden))")
        }
        guard samples > 0 else { throw fail("--samples must be at least 1 (got \(samples))") }
        guard jitter.isFinite, jitter >= 0 else { throw fail("--jitter must be a finite value ≥ 0 (got \(jitter))") }
        guard components > 0 else { throw fail("--components must be at least 1 (got \(components))") }
        guard model == .iwae || samples == 1 else {
            throw fail("--samples \(samples) needs --model iwae (the ELBO uses one sample)")
        }
        guard model != .gmvae || prior == .mixture else { throw fail("--model gmvae uses --prior mixture") }
        guard model != .vae || prior == .normal else {
            throw fail("--prior mixture with --model vae is --model gmvae; use that")
        }
    }
}

/// A configuration or flag value out of range.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case let .invalid(s): return s }
    }
}
