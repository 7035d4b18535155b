import LatentData

/// Which objective a model trains: the ELBO with a standard normal (vae) or mixture (gmvae) prior, or the IWAE bound.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
    /// The ELBO with the standard normal prior and one sample (MATH.md §3).
    case vae
    /// The ELBO with the learnable mixture prior, its KL estimated from the sample (MATH.md §5).
    case gmvae
    /// The importance-weighted bound with `samples` samples per example (MATH.md §4).
    case iwae
}

/// Everything that fixes a model's shape and objective; stored in checkpoint headers and checked on load.
public struct ModelConfiguration: Codable, Equatable, Sendable {
    /// The objective: the ELBO (vae, gmvae) or the importance-weighted bound (iwae).
    public var model: ModelKind = .vae
    /// The posterior family q(z|x) the encoder parametrizes (MATH.md §2).
    public var posterior: PosteriorKind = .diagonal
    /// Pixels per image D: the encoder's input and the decoder's output width (784 = 28×28).
    public var inputs = 784
    /// The hidden layer widths h₁ … h_L of the encoder; the decoder mirrors them (MATH.md §1).
    public var hidden = [300, 300]
    /// The latent dimension k.
    public var latent = 10
    /// The nonlinearity of the hidden layers; output layers are linear.
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
    /// How the training gradient treats log q (MATH.md §10); evaluation never depends on it.
    public var estimator: PathwiseEstimator = .standard

    /// A configuration with the given settings; the prior defaults to the mixture for `gmvae` and N(0, I) otherwise.
    /// Nothing is checked here: ``validate()`` does that.
    public init(model: ModelKind = .vae, posterior: PosteriorKind = .diagonal, inputs: Int = 784,
                hidden: [Int] = [300, 300], latent: Int = 10, activation: Activation = .elu, samples: Int = 1,
                jitter: Double = 1e-3, prior: PriorKind? = nil, components: Int = 500,
                likelihood: LikelihoodKind = .bernoulli, binarization: BinarizationMode = .dynamic,
                estimator: PathwiseEstimator = .standard) {
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
        self.estimator = estimator
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
        estimator = try c.decodeIfPresent(PathwiseEstimator.self, forKey: .estimator) ?? .standard
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
    @usableFromInline package var hasSaneSizes: Bool {
        hidden.count <= 64 && samples >= 1 && samples <= ModelConfiguration.samplesLimit
            && ([inputs, latent, components] + hidden).allSatisfy { (1...ModelConfiguration.sizeLimit).contains($0) }
            && latent <= 4096
    }

    /// Checks every setting's range and their combinations; the error names the setting and what it must be.
    public func validate() throws(ConfigurationError) {
        func fail(_ setting: String, _ requirement: String, _ value: Any) -> ConfigurationError {
            .invalid(setting: setting, requirement: requirement, value: "\(value)")
        }
        let limit = ModelConfiguration.sizeLimit
        guard (1...limit).contains(inputs) else { throw fail("inputs", "must be between 1 and \(limit)", inputs) }
        guard (1...4096).contains(latent) else { throw fail("latent", "must be between 1 and 4096", latent) }
        guard !hidden.isEmpty, hidden.count <= 64, hidden.allSatisfy({ (1...limit).contains($0) }) else {
            throw fail("hidden", "must list 1 to 64 layer widths between 1 and \(limit), e.g. 300,300", hidden)
        }
        guard (1...ModelConfiguration.samplesLimit).contains(samples) else {
            throw fail("samples", "must be between 1 and \(ModelConfiguration.samplesLimit) (each training step "
                + "decodes batch × samples rows; tighter bounds come from the streamed IWAE evaluation)", samples)
        }
        guard jitter.isFinite, jitter >= 0 else { throw fail("jitter", "must be a finite value ≥ 0", jitter) }
        guard (1...limit).contains(components) else {
            throw fail("components", "must be between 1 and \(limit)", components)
        }
        guard model == .iwae || samples == 1 else {
            throw fail("samples", "must be 1 unless model is iwae (the ELBO uses one sample)", samples)
        }
        guard model != .gmvae || prior == .mixture else { throw fail("prior", "must be mixture for gmvae", prior) }
        guard model != .vae || prior == .normal else {
            throw fail("prior", "must be normal for vae (a vae with the mixture prior is gmvae)", prior)
        }
        guard estimator != .dreg || model == .iwae else {
            throw fail("estimator", "must not be dreg unless model is iwae (DReG is for the importance-weighted bound; "
                + "with one sample it is STL: use stl)", estimator)
        }
    }
}

/// A setting of a model or a run out of range: which one (by its Swift name), what it must be, and the value given.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// `setting` (its Swift name) must satisfy `requirement`; `value` is what was given, as text.
    case invalid(setting: String, requirement: String, value: String)

    /// One line: the setting, what it must be, and the value given.
    public var description: String {
        switch self {
        case let .invalid(setting, requirement, value): return "\(setting) \(requirement) (got \(value))"
        }
    }
}
