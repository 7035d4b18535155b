import LatentCore

/// Every buffer one forward/backward pass needs for up to `capacity` examples, allocated once and reused.
@usableFromInline package final class StepWorkspace<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package let capacity: Int
    @usableFromInline package let samples: Int
    /// Binarized inputs, capacity × inputs.
    @usableFromInline package let x: Buffer<T>
    @usableFromInline package let encoder: MLPWorkspace<T>
    @usableFromInline package let decoder: MLPWorkspace<T>
    /// ε, z and dz: samples × capacity × latent.
    @usableFromInline package let noise: Buffer<T>
    @usableFromInline package let z: Buffer<T>
    @usableFromInline package let dz: Buffer<T>
    @usableFromInline package let scratch: Buffer<T>
    @usableFromInline package let logDeterminant: Buffer<T>
    @usableFromInline package let dLogDeterminant: Buffer<T>
    /// Per example (and per sample for rec): Rec, KL, and the loss weight of each decoder row.
    @usableFromInline package let rec: Buffer<T>
    @usableFromInline package let kl: Buffer<T>
    @usableFromInline package let rowScale: Buffer<T>
    /// One row of per-pixel likelihood terms.
    @usableFromInline package let terms: Buffer<T>
    /// Per sample and example (samples × capacity): log p(z), log w, and the loss weight of each sample.
    @usableFromInline package let logPrior: Buffer<T>
    @usableFromInline package let logWeights: Buffer<T>
    @usableFromInline package let coefficient: Buffer<T>
    /// Per sample and example: the normalized importance weight w̃ (STL and DReG).
    @usableFromInline package let normalizedWeights: Buffer<T>
    /// ∂log q/∂z at each sample with q's parameters fixed (samples × capacity × latent; STL and DReG).
    @usableFromInline package let logDensityGradient: Buffer<T>
    /// Per example: the importance-weighted bound's log-sum-exp.
    @usableFromInline package let bound: Buffer<T>
    /// log N_j(z) of every mixture component (samples × capacity × K); empty without a mixture prior.
    @usableFromInline package let componentLogDensities: Buffer<T>
    /// The mixture prior's GEMM buffers (nil without a mixture prior).
    @usableFromInline package let mixture: MixtureScratch<T>?
    /// Where the objectives count factorizations that needed a raised jitter: the model's training counter unless
    /// an evaluator sets its own (nil: not counted).
    @usableFromInline package var factorizationRetries: FactorizationCounter?

    @usableFromInline package init(model: VariationalAutoencoder<T>, capacity: Int, samples: Int? = nil) {
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
    @usableFromInline package init(viewOf shared: StepWorkspace<T>, model: VariationalAutoencoder<T>, examples: Range<Int>) {
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
