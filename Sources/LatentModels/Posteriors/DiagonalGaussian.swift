import LatentCore

/// q = N(μ, diag(σ²)) with encoder outputs μ (k) and s = log σ² (k); L = diag(exp(s/2)) (MATH.md §2).
@usableFromInline package struct DiagonalGaussian<Scalar: BLASScalar>: Posterior {
    @usableFromInline package let latent: Int
    @usableFromInline package init(latent: Int) { self.latent = latent }
    @usableFromInline package var parameterCount: Int { 2 * latent }
    /// σ per latent dimension.
    @usableFromInline package var scratchPerRow: Int { latent }

    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let s = parameters + r * 2 * k + k
            var logDet: Scalar = 0
            for i in 0..<k {
                scratch[r * k + i] = Scalar.exp(s[i] / 2)
                logDet += s[i] / 2
            }
            logDeterminant[r] = logDet
        }
    }

    @inlinable
    package func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                       samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for m in 0..<samples {
            for r in 0..<rows {
                let mu = parameters + r * 2 * k, sigma = scratch + r * k
                let e = noise + (m * rows + r) * k, out = z + (m * rows + r) * k
                for i in 0..<k { out[i] = mu[i] + sigma[i] * e[i] }
            }
        }
    }

    /// KL = ½ Σᵢ (σᵢ² + μᵢ² − 1 − sᵢ).
    @inlinable
    package func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                                   logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let mu = parameters + r * 2 * k, s = mu + k, sigma = scratch + r * k
            var total: Scalar = 0
            for i in 0..<k { total += sigma[i] * sigma[i] + mu[i] * mu[i] - 1 - s[i] }
            kl[r] = total / 2
        }
    }

    @inlinable
    package func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                           logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                           out: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let mu = parameters + r * 2 * k, sigma = scratch + r * k, zr = z + r * k
            var q: Scalar = 0
            for i in 0..<k {
                let u = (zr[i] - mu[i]) / sigma[i]
                q += u * u
            }
            out[r] = -q / 2 - logDeterminant[r] - Scalar(k) * Scalar.halfLogTwoPi
        }
    }

    /// dμ = Σ dz + w μ;  ds = Σ dz ε σ/2 + ½ dlogdet + (w/2)(σ² − 1).
    @inlinable
    package func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                         samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                         klWeight w: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let mu = parameters + r * 2 * k, sigma = scratch + r * k
            let dmu = dParameters + r * 2 * k, ds = dmu + k
            for i in 0..<k {
                dmu[i] = w * mu[i]
                ds[i] = dLogDeterminant[r] / 2 + w / 2 * (sigma[i] * sigma[i] - 1)
            }
            for m in 0..<samples {
                let e = noise + (m * rows + r) * k, g = dz + (m * rows + r) * k
                for i in 0..<k {
                    dmu[i] += g[i]
                    ds[i] += g[i] * e[i] * sigma[i] / 2
                }
            }
        }
    }

    /// −ε/σ per coordinate.
    @inlinable
    package func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int,
                                   rows: Int, out: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for m in 0..<samples {
            for r in 0..<rows {
                let sigma = scratch + r * k, e = noise + (m * rows + r) * k, g = out + (m * rows + r) * k
                for i in 0..<k { g[i] = -e[i] / sigma[i] }
            }
        }
    }
}
