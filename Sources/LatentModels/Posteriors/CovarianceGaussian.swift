import LatentCore

/// q = N(μ, Σ) with Σ = A Aᵀ + δI and A lower triangular with a positive diagonal: the encoder emits μ (k), d (k)
/// with A_ii = exp(dᵢ), then A's k(k−1)/2 strictly lower entries in row-major order (1,0), (2,0), (2,1), …; L = chol(Σ)
/// by LAPACK's potrf, and the backward goes through the factorization (MATH.md §2, "covariance").
///
/// A factorization that fails (possible in Float for a nearly singular AAᵀ) is retried with δ raised tenfold (the
/// first raise from at least k·u·s, u the unit roundoff, s the largest diagonal entry of AAᵀ), at most
/// `maximumRaises` times and never above the ceiling max(jitter, `ceilingRelativeToScale` · s), so a retry stays a
/// perturbation at the level of rounding, not a different posterior. A non-finite A fails at once as
/// `LinearAlgebraError.nonFinite`. Each row that needed a raise and then factorized counts once.
///
/// From k = `BatchedCholesky.crossoverOrder`, rows go through the factorization and the backward's solves in groups of
/// `InterleavedMatrices.lanes`, interleaved in the group's own work regions; a row whose batched factorization fails
/// takes the per-row path above, and so do the rows that do not fill a group (MATH.md §2, "Batched factorization").
@usableFromInline package struct CovarianceGaussian<Scalar: BLASScalar>: Posterior {
    @usableFromInline package let latent: Int
    @usableFromInline package let jitter: Scalar
    @usableFromInline package let retries: FactorizationCounter

    /// The smallest k whose rows go through the batched kernels (tests move it to compare the two paths).
    @usableFromInline let batchedFromOrder: Int

    @usableFromInline package init(latent: Int, jitter: Scalar, retries: FactorizationCounter = FactorizationCounter()) {
        self.init(latent: latent, jitter: jitter, retries: retries, batchedFromOrder: BatchedCholesky.crossoverOrder)
    }

    init(latent: Int, jitter: Scalar, retries: FactorizationCounter = FactorizationCounter(), batchedFromOrder: Int) {
        self.latent = latent
        self.jitter = jitter
        self.retries = retries
        self.batchedFromOrder = batchedFromOrder
    }

    @usableFromInline package var parameterCount: Int { 2 * latent + latent * (latent - 1) / 2 }
    /// L (k²), then the δ actually used (1), then three work regions (A, Σ̄ and the solves) for the row's prepare and
    /// backward, so that the step allocates nothing.
    @usableFromInline package var scratchPerRow: Int { latent * latent + 1 + 3 * region }
    /// Scalars of one work region: a k×k matrix, or one chunk of a group's interleaved matrices.
    @inlinable var region: Int { InterleavedMatrices<Scalar>.chunkCapacity(order: latent) }

    /// Whether the rows from `first` on fill a group for the batched kernels.
    @inlinable @inline(__always)
    func batches(from first: Int, of rows: Int) -> Bool {
        latent >= batchedFromOrder && rows - first >= InterleavedMatrices<Scalar>.lanes
    }

    /// The group of interleaved matrices whose chunks are work region `index` of rows `first` … `first + lanes − 1`.
    @inlinable @inline(__always)
    func group(_ scratch: UnsafeMutablePointer<Scalar>, first: Int, _ index: Int) -> InterleavedMatrices<Scalar> {
        InterleavedMatrices(order: latent, storage: work(scratch, row: first, index), chunkStride: scratchPerRow)
    }

    /// Tenfold raises of δ one factorization may try.
    @usableFromInline package static var maximumRaises: Int { 6 }
    /// The ceiling of a raised δ relative to s, the largest diagonal entry of AAᵀ (δ never exceeds max(jitter, c·s)).
    @usableFromInline package static var ceilingRelativeToScale: Double { 1e-3 }

    /// Work region `index` (0, 1, 2) of row r.
    @inlinable @inline(__always)
    func work(_ scratch: UnsafeMutablePointer<Scalar>, row r: Int, _ index: Int) -> UnsafeMutablePointer<Scalar> {
        scratch + r * scratchPerRow + latent * latent + 1 + index * region
    }

    /// Offset of A_ij (i > j) among the strictly lower entries.
    @inlinable @inline(__always)
    func lowerIndex(_ i: Int, _ j: Int) -> Int { i * (i - 1) / 2 + j }

    /// A of one row (its encoder outputs at `row`) as a dense row-major k×k matrix, zeros above the diagonal.
    @inlinable
    func expand(_ row: UnsafePointer<Scalar>, into a: UnsafeMutablePointer<Scalar>) {
        let k = latent, d = row + k, off = d + k
        for i in 0..<k {
            // Row i's strictly lower entries are contiguous among the outputs.
            let target = a + i * k
            target.update(from: off + lowerIndex(i, 0), count: i)
            target[i] = Scalar.exp(d[i])
            (target + i + 1).update(repeating: 0, count: k - i - 1)
        }
    }

    /// Σ = A Aᵀ + δI of row r into its L slot (A expanded into work region 0); returns s, the largest diagonal entry
    /// of A Aᵀ. A NaN or infinity in A reaches that diagonal and fails as non-finite.
    @inlinable
    func formCovariance(_ parameters: UnsafePointer<Scalar>, row r: Int, scratch: UnsafeMutablePointer<Scalar>,
                        delta: Scalar) throws -> Scalar {
        let k = latent, a = work(scratch, row: r, 0), sigma = scratch + r * scratchPerRow
        expand(parameters + r * parameterCount, into: a)
        Scalar.gemm(.none, .transpose, rows: k, columns: k, inner: k, alpha: 1, a: a, lda: k, b: a, ldb: k, beta: 0,
                    c: sigma, ldc: k)
        var s: Scalar = 0
        for i in 0..<k {
            let v = sigma[i * k + i]
            guard v.isFinite else { throw LinearAlgebraError.nonFinite(order: k) }
            s = max(s, v)
            sigma[i * k + i] = v + delta
        }
        return s
    }

    /// L = chol(A Aᵀ + δI) of row r by `potrf`, raising δ as the type's comment says; records the δ used.
    @inlinable
    func factorRow(_ parameters: UnsafePointer<Scalar>, row r: Int, scratch: UnsafeMutablePointer<Scalar>,
                   retries counter: FactorizationCounter?) throws {
        let k = latent, l = scratch + r * scratchPerRow
        var delta = jitter, raises = 0, floor: Scalar = 0, ceiling = jitter
        while true {
            let s = try formCovariance(parameters, row: r, scratch: scratch, delta: delta)
            if raises == 0 {
                floor = Scalar(k) * Scalar.ulpOfOne * s
                ceiling = max(jitter, Scalar(Self.ceilingRelativeToScale) * s)
            }
            do {
                try choleskyLower(l, order: k)
                break
            } catch let error as LinearAlgebraError {
                guard case .notPositiveDefinite = error else { throw error }
                let next = 10 * max(delta, floor)
                guard raises < Self.maximumRaises, next > delta, next <= ceiling else { throw error }
                raises += 1
                delta = next
            }
        }
        if raises > 0 { counter?.record() }
        l[k * k] = delta
    }

    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>) throws {
        try prepare(parameters: parameters, rows: rows, scratch: scratch, logDeterminant: logDeterminant,
                    retries: retries)
    }

    /// `prepare`, counting the rows that needed a raised δ into `counter` (nil: not counted).
    @inlinable
    package func prepare(parameters: UnsafePointer<Scalar>, rows: Int, scratch: UnsafeMutablePointer<Scalar>,
                        logDeterminant: UnsafeMutablePointer<Scalar>, retries counter: FactorizationCounter?) throws {
        let k = latent, lanes = InterleavedMatrices<Scalar>.lanes
        var r = 0
        while r < rows {
            guard batches(from: r, of: rows) else {
                try factorRow(parameters, row: r, scratch: scratch, retries: counter)
                r += 1
                continue
            }
            for q in 0..<lanes { _ = try formCovariance(parameters, row: r + q, scratch: scratch, delta: jitter) }
            let sigma = group(scratch, first: r, 1), l = scratch + r * scratchPerRow
            sigma.pack(from: l, stride: scratchPerRow, ld: k, count: lanes)
            let info = sigma.factorCholesky()
            sigma.unpack(into: l, stride: scratchPerRow, ld: k, count: lanes)
            for q in 0..<lanes {
                if info[q] == 0 {
                    l[q * scratchPerRow + k * k] = jitter
                } else {
                    try factorRow(parameters, row: r + q, scratch: scratch, retries: counter)
                }
            }
            r += lanes
        }
        for r in 0..<rows {
            let l = scratch + r * scratchPerRow
            var logDet: Scalar = 0
            for i in 0..<k { logDet += Scalar.log(l[i * k + i]) }
            logDeterminant[r] = logDet
        }
    }

    @inlinable
    package func sample(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                       samples: Int, rows: Int, z: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.sample(means: parameters, meanStride: parameterCount, factors: scratch,
                               factorStride: scratchPerRow, noise: noise, latent: latent, samples: samples, rows: rows,
                               z: z)
    }

    /// KL = ½(tr Σ + ‖μ‖² − k) − Σᵢ log L_ii, with tr Σ = ‖A‖_F² + kδ = Σᵢ e^{2dᵢ} + Σ_{i>j} A_ij² + kδ.
    @inlinable
    package func klToStandardNormal(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                                   logDeterminant: UnsafePointer<Scalar>, rows: Int, kl: UnsafeMutablePointer<Scalar>) {
        let k = latent
        for r in 0..<rows {
            let mu = parameters + r * parameterCount, d = mu + k, off = d + k
            let delta = scratch[r * scratchPerRow + k * k]
            var total: Scalar = Scalar(k) * delta - Scalar(k)
            for i in 0..<k {
                let diagonal = Scalar.exp(d[i])
                total += mu[i] * mu[i] + diagonal * diagonal
            }
            for i in 0..<(k * (k - 1) / 2) { total += off[i] * off[i] }
            kl[r] = total / 2 - logDeterminant[r]
        }
    }

    @inlinable
    package func logDensity(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>,
                           logDeterminant: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>, rows: Int,
                           out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensity(means: parameters, meanStride: parameterCount, factors: scratch,
                                   factorStride: scratchPerRow, logDeterminant: logDeterminant, z: z, latent: latent,
                                   rows: rows, out: out)
    }

    /// L̄ from sampling, log det and KL; S = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ (two triangular solves); Ā = (S + Sᵀ + wI) A, of which
    /// the lower triangle is A's gradient, its diagonal times A_ii that of d.
    @inlinable
    package func backward(parameters: UnsafePointer<Scalar>, scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>,
                         samples: Int, rows: Int, dz: UnsafePointer<Scalar>, dLogDeterminant: UnsafePointer<Scalar>,
                         klWeight w: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent, lanes = InterleavedMatrices<Scalar>.lanes, scratch = UnsafeMutablePointer(mutating: scratch)
        var first = 0
        while batches(from: first, of: rows) {
            let r = first
            for q in 0..<lanes {
                backwardToSolves(parameters, row: r + q, scratch: scratch, noise: noise, samples: samples, rows: rows,
                                 dz: dz, dLogDeterminant: dLogDeterminant, klWeight: w, dParameters: dParameters)
            }
            // The group's L in work region 2, Φ in region 0 (L̄ is spent), S back into each row's region 1.
            let factors = group(scratch, first: r, 2), right = group(scratch, first: r, 0)
            factors.pack(from: scratch + r * scratchPerRow, stride: scratchPerRow, ld: k, count: lanes)
            right.pack(from: work(scratch, row: r, 1), stride: scratchPerRow, ld: k, count: lanes)
            right.solve(side: .left, transpose: .transpose, lower: factors)
            right.solve(side: .right, transpose: .none, lower: factors)
            right.unpack(into: work(scratch, row: r, 1), stride: scratchPerRow, ld: k, count: lanes)
            for q in 0..<lanes {
                backwardFromSolves(parameters, row: r + q, scratch: scratch, klWeight: w, dParameters: dParameters)
            }
            first += lanes
        }
        for r in first..<rows {
            backwardToSolves(parameters, row: r, scratch: scratch, noise: noise, samples: samples, rows: rows, dz: dz,
                             dLogDeterminant: dLogDeterminant, klWeight: w, dParameters: dParameters)
            // S = L⁻ᵀ Φ L⁻¹: solve Lᵀ Y = Φ, then S L = Y.
            let l = scratch + r * scratchPerRow, p = work(scratch, row: r, 1)
            Scalar.trsm(side: .left, triangle: .lower, transpose: .transpose, unitDiagonal: false, rows: k, columns: k,
                        alpha: 1, triangular: l, ldt: k, b: p, ldb: k)
            Scalar.trsm(side: .right, triangle: .lower, transpose: .none, unitDiagonal: false, rows: k, columns: k,
                        alpha: 1, triangular: l, ldt: k, b: p, ldb: k)
            backwardFromSolves(parameters, row: r, scratch: scratch, klWeight: w, dParameters: dParameters)
        }
    }

    /// The backward up to the solves: μ's gradient, L̄ (work region 0), then Φ(Lᵀ L̄), the lower triangle of Lᵀ L̄
    /// with its diagonal halved (work region 1).
    @inlinable
    func backwardToSolves(_ parameters: UnsafePointer<Scalar>, row r: Int, scratch: UnsafeMutablePointer<Scalar>,
                          noise: UnsafePointer<Scalar>, samples: Int, rows: Int, dz: UnsafePointer<Scalar>,
                          dLogDeterminant: UnsafePointer<Scalar>, klWeight w: Scalar,
                          dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent
        let lBar = work(scratch, row: r, 0), p = work(scratch, row: r, 1)
        let mu = parameters + r * parameterCount, l = scratch + r * scratchPerRow
        let dmu = dParameters + r * parameterCount
        for i in 0..<k {
            var gm = w * mu[i]
            for s in 0..<samples { gm += dz[(s * rows + r) * k + i] }
            dmu[i] = gm
        }
        // L̄'s lower triangle is Σₛ dzₛ εₛᵀ, accumulated a row at a time (contiguous, so it vectorizes).
        lBar.update(repeating: 0, count: k * k)
        for s in 0..<samples {
            let base = (s * rows + r) * k, g = dz + base, epsilon = noise + base
            for i in 0..<k {
                let gi = g[i], row = lBar + i * k
                for j in 0...i { row[j] += gi * epsilon[j] }
            }
        }
        for i in 0..<k { lBar[i * k + i] += (dLogDeterminant[r] - w) / l[i * k + i] }
        Scalar.gemm(.transpose, .none, rows: k, columns: k, inner: k, alpha: 1, a: l, lda: k, b: lBar, ldb: k,
                    beta: 0, c: p, ldc: k)
        for i in 0..<k {
            p[i * k + i] /= 2
            for j in (i + 1)..<max(i + 1, k) { p[i * k + j] = 0 }
        }
    }

    /// The backward from S (work region 1): Σ̄ = S + Sᵀ + wI (region 2), A (region 0), Ā = Σ̄ A (region 1), and the
    /// encoder outputs' gradients d̄ᵢ = Ā_ii A_ii and Ā_ij (i > j).
    @inlinable
    func backwardFromSolves(_ parameters: UnsafePointer<Scalar>, row r: Int, scratch: UnsafeMutablePointer<Scalar>,
                            klWeight w: Scalar, dParameters: UnsafeMutablePointer<Scalar>) {
        let k = latent
        let a = work(scratch, row: r, 0), p = work(scratch, row: r, 1), sigmaBar = work(scratch, row: r, 2)
        for i in 0..<k {
            for j in 0..<k { sigmaBar[i * k + j] = p[i * k + j] + p[j * k + i] }
            sigmaBar[i * k + i] += w
        }
        expand(parameters + r * parameterCount, into: a)
        Scalar.gemm(.none, .none, rows: k, columns: k, inner: k, alpha: 1, a: sigmaBar, lda: k, b: a, ldb: k,
                    beta: 0, c: p, ldc: k)
        let dd = dParameters + r * parameterCount + k, doff = dd + k
        for i in 0..<k {
            dd[i] = p[i * k + i] * a[i * k + i]
            for j in 0..<i { doff[lowerIndex(i, j)] = p[i * k + j] }
        }
    }
}

extension CovarianceGaussian {
    /// −L⁻ᵀε with L = chol(AAᵀ + δI) as `prepare` left it (MATH.md §10).
    @inlinable
    package func logDensityGradient(scratch: UnsafePointer<Scalar>, noise: UnsafePointer<Scalar>, samples: Int,
                                   rows: Int, out: UnsafeMutablePointer<Scalar>) {
        CholeskyKernels.logDensityGradient(factors: scratch, factorStride: scratchPerRow, noise: noise, latent: latent,
                                           samples: samples, rows: rows, out: out)
    }
}

