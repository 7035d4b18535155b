import LatentCore

/// One of the posterior families, chosen at run time; dispatch happens once per batch, so the element loops of
/// each family stay specialized.
@usableFromInline package enum AnyPosterior<Scalar: BLASScalar>: Posterior {
    case diagonal(DiagonalGaussian<Scalar>)
    case full(CholeskyFactorGaussian<Scalar>)
    case covariance(CovarianceGaussian<Scalar>)

    @usableFromInline package init(_ configuration: ModelConfiguration, retries: FactorizationCounter = FactorizationCounter()) {
        switch configuration.posterior {
        case .diagonal: self = .diagonal(DiagonalGaussian(latent: configuration.latent))
        case .full: self = .full(CholeskyFactorGaussian(latent: configuration.latent))
        case .covariance:
            self = .covariance(CovarianceGaussian(latent: configuration.latent, jitter: Scalar(configuration.jitter),
                                                  retries: retries))
        }
    }

    // Switched per case, not read through an existential: a family too large for an existential's inline buffer
    // would be boxed on the heap at every read, and the step reads these.
    @usableFromInline package var latent: Int {
        switch self {
        case let .diagonal(p): return p.latent
        case let .full(p): return p.latent
        case let .covariance(p): return p.latent
        }
    }

    @usableFromInline package var parameterCount: Int {
        switch self {
        case let .diagonal(p): return p.parameterCount
        case let .full(p): return p.parameterCount
        case let .covariance(p): return p.parameterCount
        }
    }

    @usableFromInline package var scratchPerRow: Int {
        switch self {
        case let .diagonal(p): return p.scratchPerRow
        case let .full(p): return p.scratchPerRow
        case let .covariance(p): return p.scratchPerRow
        }
    }

    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>) throws {
        switch self {
        case let .diagonal(p): p.prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant)
        case let .full(p): p.prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant)
        case let .covariance(p):
            try p.prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant)
        }
    }

    /// `prepare`, counting factorizations that needed a raised jitter into `retries` (nil: not counted) instead of
    /// the family's own counter, so that training and evaluation are counted apart.
    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>, retries: FactorizationCounter?) throws {
        guard case let .covariance(p) = self else {
            return try prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant)
        }
        try p.prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant,
                      retries: retries)
    }

    @inlinable
    package func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                       samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>) {
        switch self {
        case let .diagonal(p):
            p.sample(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, z: z)
        case let .full(p):
            p.sample(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, z: z)
        case let .covariance(p):
            p.sample(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, z: z)
        }
    }

    @inlinable
    package func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                                   logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>) {
        switch self {
        case let .diagonal(p):
            p.klToStandardNormal(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, rows: rows, kl: kl)
        case let .full(p):
            p.klToStandardNormal(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, rows: rows, kl: kl)
        case let .covariance(p):
            p.klToStandardNormal(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, rows: rows, kl: kl)
        }
    }

    @inlinable
    package func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                           logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                           out: UnsafeMutablePointer<Scalar>) {
        switch self {
        case let .diagonal(p):
            p.logDensity(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, z: z, rows: rows, out: out)
        case let .full(p):
            p.logDensity(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, z: z, rows: rows, out: out)
        case let .covariance(p):
            p.logDensity(parameters: parameters, scratch: scratch, logDeterminant: logDeterminant, z: z, rows: rows, out: out)
        }
    }

    @inlinable
    package func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                         samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                         klWeight: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        switch self {
        case let .diagonal(p):
            p.backward(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, dz: dz,
                       dLogDeterminant: dLogDeterminant, klWeight: klWeight, dParameters: dParameters)
        case let .full(p):
            p.backward(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, dz: dz,
                       dLogDeterminant: dLogDeterminant, klWeight: klWeight, dParameters: dParameters)
        case let .covariance(p):
            p.backward(parameters: parameters, scratch: scratch, noise: noise, samples: samples, rows: rows, dz: dz,
                       dLogDeterminant: dLogDeterminant, klWeight: klWeight, dParameters: dParameters)
        }
    }

    @inlinable
    package func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int,
                                   rows: Int, out: UnsafeMutablePointer<Scalar>) {
        switch self {
        case let .diagonal(p):
            p.logDensityGradient(scratch: scratch, noise: noise, samples: samples, rows: rows, out: out)
        case let .full(p):
            p.logDensityGradient(scratch: scratch, noise: noise, samples: samples, rows: rows, out: out)
        case let .covariance(p):
            p.logDensityGradient(scratch: scratch, noise: noise, samples: samples, rows: rows, out: out)
        }
    }

    /// The factor L of one row (row-major k×k lower) into `out`: the covariance is L Lᵀ.
    @usableFromInline package func factor(scratch: UnsafePointer<Scalar>, row: Int, into out: UnsafeMutablePointer<Scalar>) {
        let k = latent
        out.update(repeating: 0, count: k * k)
        switch self {
        case .diagonal:
            for i in 0..<k { out[i * k + i] = scratch[row * k + i] }
        case .full, .covariance:
            out.update(from: scratch + row * scratchPerRow, count: k * k)
        }
    }
}
