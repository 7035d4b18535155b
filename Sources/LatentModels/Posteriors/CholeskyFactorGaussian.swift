import LatentCore

/// q = N(μ, L Lᵀ) with the Cholesky factor emitted directly: μ (k), d (k) with L_ii = exp(dᵢ), then the
/// k(k−1)/2 strictly-lower entries of L in row-major order (1,0), (2,0), (2,1), … (MATH.md §2, "full").
@usableFromInline package struct CholeskyFactorGaussian<Scalar: BLASScalar>: Posterior {
    @usableFromInline package let latent: Int
    @usableFromInline package init(latent: Int) { self.latent = latent }
    @usableFromInline package var parameterCount: Int { 2 * latent + latent * (latent - 1) / 2 }
    /// L, row-major k×k with zeros above the diagonal.
    @usableFromInline package var scratchPerRow: Int { latent * latent }

    /// Offset of L_ij (i > j) among the strictly-lower entries.
    @inlinable @inline(__always)
    func lowerIndex(_ i: Int, _ j: Int) -> Int { i * (i - 1) / 2 + j }

    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>) {
        let k = latent, width = parameterCount
        for r in 0..<rows {
            let d = parameters + r * width + k, off = d + k
            let l = scratch + r * k * k
            var logDet: Scalar = 0
            for i in 0..<k {
                for j in 0..<k {
                    l[i * k + j] = j < i ? off[lowerIndex(i, j)] : (j == i ? Scalar.exp(d[i]) : 0)
                }
                logDet += d[i]
            }
            logDeterminant[r] = logDet
        }
    }

    @inlinable
    package func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                       samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.sample(means: parameters, meanStride: parameterCount, factors: scratch, noise: noise,
                               latent: latent, samples: samples, rows: rows, z: z)
    }

    /// KL = ½(‖L‖_F² + ‖μ‖² − k) − Σᵢ dᵢ.
    @inlinable
    package func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                                   logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>) {
        let k = latent, width = parameterCount
        for r in 0..<rows {
            let mu = parameters + r * width, l = scratch + r * k * k
            var total: Scalar = -Scalar(k)
            for i in 0..<k {
                total += mu[i] * mu[i]
                for j in 0...i { total += l[i * k + j] * l[i * k + j] }
            }
            kl[r] = total / 2 - logDeterminant[r]
        }
    }

    @inlinable
    package func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                           logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                           out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensity(means: parameters, meanStride: parameterCount, factors: scratch,
                                   logDeterminant: logDeterminant, z: z, latent: latent, rows: rows, out: out)
    }

    /// dμ = Σ_s dz_s + wμ; L̄_ij = Σ_s dz_s,i ε_s,j + w L_ij (j ≤ i); d̄ᵢ = L̄_ii L_ii + c − w.
    @inlinable
    package func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                         samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                         klWeight w: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent, width = parameterCount
        for r in 0..<rows {
            let mu = parameters + r * width, l = scratch + r * k * k
            let dmu = dParameters + r * width, dd = dmu + k, doff = dd + k
            for i in 0..<k {
                var gm = w * mu[i]
                for s in 0..<samples { gm += dz[(s * rows + r) * k + i] }
                dmu[i] = gm
                for j in 0...i {
                    var g = w * l[i * k + j]
                    for s in 0..<samples {
                        let base = (s * rows + r) * k
                        g += dz[base + i] * noise[base + j]
                    }
                    if j == i {
                        dd[i] = g * l[i * k + i] + dLogDeterminant[r] - w
                    } else {
                        doff[lowerIndex(i, j)] = g
                    }
                }
            }
        }
    }
}

extension CholeskyFactorGaussian {
    /// −L⁻ᵀε by a triangular solve with Lᵀ.
    @inlinable
    package func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int,
                                   rows: Int, out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensityGradient(factors: scratch, noise: noise, latent: latent, samples: samples,
                                           rows: rows, out: out)
    }
}

/// The parts of sampling and density that every family with an explicit factor L shares.
@usableFromInline package enum CholeskyKernels {
    /// z = μ + Lε per sample and row; L row-major k×k lower, one every `factorStride` scalars (default k²).
    @inlinable
    package static func sample<T: BLASScalar>(
        means: UnsafePointer<T>, meanStride: Int, factors: UnsafePointer<T>, factorStride: Int? = nil,
        noise: UnsafePointer<T>, latent k: Int, samples: Int, rows: Int, z: UnsafeMutablePointer<T>
    ) {
        let stride = factorStride ?? k * k
        for s in 0..<samples {
            for r in 0..<rows {
                let mu = means + r * meanStride, l = factors + r * stride
                let e = noise + (s * rows + r) * k, out = z + (s * rows + r) * k
                for i in 0..<k {
                    var v = mu[i]
                    for j in 0...i { v += l[i * k + j] * e[j] }
                    out[i] = v
                }
            }
        }
    }

    /// log N(z; μ, LLᵀ) per row by a triangular solve L u = z − μ through BLAS.
    @inlinable
    package static func logDensity<T: BLASScalar>(
        means: UnsafePointer<T>, meanStride: Int, factors: UnsafePointer<T>, factorStride: Int? = nil,
        logDeterminant: UnsafePointer<T>, z: UnsafePointer<T>, latent k: Int, rows: Int, out: UnsafeMutablePointer<T>
    ) {
        let stride = factorStride ?? k * k
        let u = UnsafeMutablePointer<T>.allocate(capacity: k)
        defer { u.deallocate() }
        for r in 0..<rows {
            let mu = means + r * meanStride
            for i in 0..<k { u[i] = z[r * k + i] - mu[i] }
            T.trsv(triangle: .lower, transpose: .none, order: k, triangular: factors + r * stride, ldt: k, x: u,
                   increment: 1)
            var q: T = 0
            for i in 0..<k { q += u[i] * u[i] }
            out[r] = -q / 2 - logDeterminant[r] - T(k) * T.halfLogTwoPi
        }
    }

    /// −L⁻ᵀε per sample and row (∂log q/∂z at an own sample, MATH.md §10): back substitution with Lᵀ in place, a
    /// loop rather than one `trsv` call per sample, since k is small and the step calls it m·B times.
    @inlinable
    package static func logDensityGradient<T: BLASScalar>(
        factors: UnsafePointer<T>, factorStride: Int? = nil, noise: UnsafePointer<T>, latent k: Int, samples: Int,
        rows: Int, out: UnsafeMutablePointer<T>
    ) {
        let factorStep = factorStride ?? k * k
        for s in 0..<samples {
            for r in 0..<rows {
                let g = out + (s * rows + r) * k, e = noise + (s * rows + r) * k
                let l = factors + r * factorStep
                for i in stride(from: k - 1, through: 0, by: -1) {
                    var v = -e[i]
                    for j in (i + 1)..<max(i + 1, k) { v -= l[j * k + i] * g[j] }
                    g[i] = v / l[i * k + i]
                }
            }
        }
    }
}
