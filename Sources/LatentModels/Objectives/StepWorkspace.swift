import LatentCore

/// Every buffer one forward/backward pass needs for up to `capacity` examples, allocated once and reused.
public final class StepWorkspace<T: BLASScalar>: @unchecked Sendable {
    public let capacity: Int
    public let samples: Int
    /// Binarized inputs, capacity × inputs.
    public let x: Buffer<T>
    public let encoder: MLPWorkspace<T>
    public let decoder: MLPWorkspace<T>
    /// ε, z and dz: samples × capacity × latent.
    public let noise: Buffer<T>
    public let z: Buffer<T>
    public let dz: Buffer<T>
    public let scratch: Buffer<T>
    public let logDeterminant: Buffer<T>
    public let dLogDeterminant: Buffer<T>
    /// Per example (and per sample for rec): Rec, KL, and the loss weight of each decoder row.
    public let rec: Buffer<T>
    public let kl: Buffer<T>
    public let rowScale: Buffer<T>
    /// One row of per-pixel likelihood terms.
    public let terms: Buffer<T>
    /// Per sample and example (samples × capacity): log p(z), log w, and the loss weight of each sample.
    public let logPrior: Buffer<T>
    public let logWeights: Buffer<T>
    public let coefficient: Buffer<T>
    /// Per sample and example: the normalized importance weight w̃ (STL and DReG).
    public let normalizedWeights: Buffer<T>
    /// ∂log q/∂z at each sample with q's parameters fixed (samples × capacity × latent; STL and DReG).
    public let logDensityGradient: Buffer<T>
    /// Per example: the importance-weighted bound's log-sum-exp.
    public let bound: Buffer<T>
    /// log N_j(z) of every mixture component (samples × capacity × K); empty without a mixture prior.
    public let componentLogDensities: Buffer<T>
    /// The mixture prior's GEMM buffers (nil without a mixture prior).
    public let mixture: MixtureScratch<T>?
    /// Where the objectives count factorizations that needed a raised jitter: the model's training counter unless
    /// an evaluator sets its own (nil: not counted).
    public var factorizationRetries: FactorizationCounter?

    public init(model: VariationalAutoencoder<T>, capacity: Int, samples: Int? = nil) {
        let m = samples ?? model.configuration.samples
        let k = model.configuration.latent
        self.capacity = capacity
        self.samples = m
        x = Buffer(count: capacity * model.configuration.inputs)
        encoder = MLPWorkspace(model.encoder, capacity: capacity)
        decoder = MLPWorkspace(model.decoder, capacity: capacity * m)
        noise = Buffer(count: m * capacity * k)
        z = Buffer(count: m * capacity * k)
        dz = Buffer(count: m * capacity * k)
        scratch = Buffer(count: capacity * model.posterior.scratchPerRow)
        logDeterminant = Buffer(count: capacity)
        dLogDeterminant = Buffer(count: capacity)
        rec = Buffer(count: capacity * m)
        kl = Buffer(count: capacity)
        rowScale = Buffer(count: capacity * m)
        terms = Buffer(count: model.configuration.inputs)
        logPrior = Buffer(count: m * capacity)
        logWeights = Buffer(count: m * capacity)
        coefficient = Buffer(count: m * capacity)
        normalizedWeights = Buffer(count: m * capacity)
        logDensityGradient = Buffer(count: m * capacity * k)
        bound = Buffer(count: capacity)
        componentLogDensities = Buffer(count: model.mixture == nil ? 0 : m * capacity * model.configuration.components)
        mixture = model.mixture.map { MixtureScratch(prior: $0, rows: m * capacity) }
        factorizationRetries = model.factorizationRetries
    }

    /// The examples `examples` of `shared` (capacity `examples.count`): a view of the same memory, every per-example
    /// buffer at its offset, with its own per-call scratch (`terms`, the mixture's GEMM buffers). The tensor-parallel
    /// trainer's workers each run the per-example work of their block through one.
    public init(viewOf shared: StepWorkspace<T>, model: VariationalAutoencoder<T>, examples: Range<Int>) {
        let m = shared.samples, k = model.configuration.latent, n = examples.count, first = examples.lowerBound
        func view(_ buffer: Buffer<T>, _ perExample: Int) -> Buffer<T> {
            Buffer(viewOf: buffer, offset: first * perExample, count: n * perExample)
        }
        capacity = n
        samples = m
        x = view(shared.x, model.configuration.inputs)
        encoder = MLPWorkspace(viewOf: shared.encoder, model.encoder, rows: examples)
        decoder = MLPWorkspace(viewOf: shared.decoder, model.decoder, rows: (first * m)..<((first + n) * m))
        noise = view(shared.noise, m * k)
        z = view(shared.z, m * k)
        dz = view(shared.dz, m * k)
        scratch = view(shared.scratch, model.posterior.scratchPerRow)
        logDeterminant = view(shared.logDeterminant, 1)
        dLogDeterminant = view(shared.dLogDeterminant, 1)
        rec = view(shared.rec, m)
        kl = view(shared.kl, 1)
        rowScale = view(shared.rowScale, m)
        terms = Buffer(count: model.configuration.inputs)
        logPrior = view(shared.logPrior, m)
        logWeights = view(shared.logWeights, m)
        coefficient = view(shared.coefficient, m)
        normalizedWeights = view(shared.normalizedWeights, m)
        logDensityGradient = view(shared.logDensityGradient, m * k)
        bound = view(shared.bound, 1)
        componentLogDensities = view(shared.componentLogDensities, model.mixture == nil ? 0 : m * model.configuration.components)
        mixture = model.mixture.map { MixtureScratch(prior: $0, rows: m * n) }
        factorizationRetries = shared.factorizationRetries
    }
}
