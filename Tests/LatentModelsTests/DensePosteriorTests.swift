import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// The two dense posterior families (MATH.md §2: `full` = CholeskyFactorGaussian, `covariance` =
/// CovarianceGaussian) against independent computations: central finite differences in Double (relative error
/// below 1e-6, DESIGN.md § Conventions 4), closed forms shared with the diagonal family, and a brute-force
/// Gaussian density computed by Gaussian elimination in this file (no BLAS/LAPACK).
final class DensePosteriorTests: XCTestCase {

    // MARK: - Helpers

    /// F = Σ c ⊙ z (all samples) + Σ_r a_r log det_r + w Σ_r KL_r through prepare/sample/klToStandardNormal.
    func objective<P: Posterior>(_ posterior: P, parameters q: Buffer<Double>, noise: Buffer<Double>,
                                 coefficients c: [Double], logDetCoefficients a: [Double], klWeight w: Double,
                                 samples: Int, rows: Int) throws -> Double where P.Scalar == Double {
        let k = posterior.latent
        let scratch = Buffer<Double>(count: rows * posterior.scratchPerRow)
        let logDet = Buffer<Double>(count: rows), kl = Buffer<Double>(count: rows)
        let z = Buffer<Double>(count: samples * rows * k)
        try posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        posterior.sample(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: samples,
                         rows: rows, z: z.pointer)
        posterior.klToStandardNormal(parameters: q.pointer, scratch: scratch.pointer, logDeterminant: logDet.pointer,
                                     rows: rows, kl: kl.pointer)
        var total = 0.0
        for i in 0..<(samples * rows * k) { total += c[i] * z[i] }
        for r in 0..<rows { total += a[r] * logDet[r] + w * kl[r] }
        withExtendedLifetime((scratch, z)) {}
        return total
    }

    /// The posterior's backward for the coefficients of `objective` (dParameters pre-filled with NaN: it must be
    /// overwritten).
    func backward<P: Posterior>(_ posterior: P, parameters q: Buffer<Double>, noise: Buffer<Double>,
                                coefficients c: [Double], logDetCoefficients a: [Double], klWeight w: Double,
                                samples: Int, rows: Int) throws -> [Double] where P.Scalar == Double {
        let scratch = Buffer<Double>(count: rows * posterior.scratchPerRow)
        let logDet = Buffer<Double>(count: rows)
        try posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        let dz = Buffer<Double>(c), dLogDet = Buffer<Double>(a)
        let dq = Buffer<Double>([Double](repeating: .nan, count: rows * posterior.parameterCount))
        posterior.backward(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: samples,
                           rows: rows, dz: dz.pointer, dLogDeterminant: dLogDet.pointer, klWeight: w,
                           dParameters: dq.pointer)
        withExtendedLifetime((scratch, logDet, dz, dLogDet)) {}
        return dq.array
    }

    /// Checks backward against central differences of `objective` for every parameter entry, grouped.
    func checkPosteriorGradient<P: Posterior>(_ posterior: P, parameters q: Buffer<Double>, samples: Int, rows: Int,
                                              groups: [(String, [Int])], seed: UInt64, label: String,
                                              file: StaticString = #filePath, line: UInt = #line) throws
    where P.Scalar == Double {
        let k = posterior.latent
        let noise = Buffer<Double>(normals(samples * rows * k, seed: seed))
        let c = uniform(samples * rows * k, seed: seed + 1)
        let a = uniform(rows, seed: seed + 2)
        let w = 0.7
        let analytic = try backward(posterior, parameters: q, noise: noise, coefficients: c, logDetCoefficients: a,
                                    klWeight: w, samples: samples, rows: rows)
        let f: () -> Double = {
            (try? self.objective(posterior, parameters: q, noise: noise, coefficients: c, logDetCoefficients: a,
                                 klWeight: w, samples: samples, rows: rows)) ?? .nan
        }
        var covered = 0
        for (name, indices) in groups where !indices.isEmpty {
            covered += indices.count
            assertGradient(indices.map { analytic[$0] }, numericalGradient(of: f, at: q.pointer, indices: indices),
                           "\(label) \(name)", file: file, line: line)
        }
        XCTAssertEqual(covered, rows * posterior.parameterCount, "\(label): every parameter entry checked",
                       file: file, line: line)
    }

    /// Encoder outputs of `rows` examples for the covariance family: μ, d (A_ii = e^d), then A's strictly lower
    /// entries, A = I + scale·U(−1, 1) below and near 1 on the diagonal (well conditioned: AAᵀ stays away from
    /// singular).
    func covarianceParameters(latent k: Int, rows: Int, seed: UInt64, scale: Double = 0.3) -> [Double] {
        let mu = uniform(rows * k, seed: seed)
        let d = uniform(rows * k, seed: seed + 2, -scale, scale)
        let off = uniform(rows * k * k, seed: seed + 1, -scale, scale)
        var q = [Double]()
        for r in 0..<rows {
            q += mu[(r * k)..<((r + 1) * k)]
            q += d[(r * k)..<((r + 1) * k)]
            let first = r * k * k, count = k * (k - 1) / 2
            q += off[first..<(first + count)]
        }
        return q
    }

    /// Encoder outputs of `rows` examples for the Cholesky-factor family: μ, d, strictly-lower entries.
    func fullParameters(latent k: Int, rows: Int, seed: UInt64) -> [Double] {
        let width = 2 * k + k * (k - 1) / 2
        let mu = uniform(rows * k, seed: seed), d = uniform(rows * k, seed: seed + 1, -0.5, 0.5)
        let off = uniform(rows * width, seed: seed + 2, -0.7, 0.7)
        var q = [Double]()
        for r in 0..<rows {
            q += mu[(r * k)..<((r + 1) * k)]
            q += d[(r * k)..<((r + 1) * k)]
            q += off[(r * width)..<(r * width + k * (k - 1) / 2)]
        }
        return q
    }

    // MARK: - 1. Posterior backward against finite differences

    func testCholeskyFactorBackwardMatchesFiniteDifferences() throws {
        for (n, k) in [1, 3, 5].enumerated() {
            for (rows, samples) in [(2, 1), (3, 3)] {
                let posterior = CholeskyFactorGaussian<Double>(latent: k)
                let width = posterior.parameterCount
                XCTAssertEqual(width, 2 * k + k * (k - 1) / 2)
                let seed = UInt64(100 + 10 * n + samples)
                let q = Buffer<Double>(fullParameters(latent: k, rows: rows, seed: seed))
                let groups: [(String, [Int])] = [
                    ("μ", (0..<rows).flatMap { r in (0..<k).map { r * width + $0 } }),
                    ("d", (0..<rows).flatMap { r in (0..<k).map { r * width + k + $0 } }),
                    ("off-diagonal", (0..<rows).flatMap { r in (0..<(k * (k - 1) / 2)).map { r * width + 2 * k + $0 } }),
                ]
                try checkPosteriorGradient(posterior, parameters: q, samples: samples, rows: rows, groups: groups,
                                           seed: seed + 5, label: "full k=\(k) rows=\(rows) samples=\(samples)")
            }
        }
    }

    func testCovarianceBackwardMatchesFiniteDifferences() throws {
        for (n, k) in [1, 3, 5].enumerated() {
            for (rows, samples) in [(2, 1), (3, 3)] {
                let posterior = CovarianceGaussian<Double>(latent: k, jitter: 1e-3)
                let width = posterior.parameterCount
                XCTAssertEqual(width, k + k * (k + 1) / 2)
                let seed = UInt64(200 + 10 * n + samples)
                let q = Buffer<Double>(covarianceParameters(latent: k, rows: rows, seed: seed))
                let groups: [(String, [Int])] = [
                    ("μ", (0..<rows).flatMap { r in (0..<k).map { r * width + $0 } }),
                    ("d", (0..<rows).flatMap { r in (0..<k).map { r * width + k + $0 } }),
                    ("A below the diagonal",
                     (0..<rows).flatMap { r in (0..<(k * (k - 1) / 2)).map { r * width + 2 * k + $0 } }),
                ]
                try checkPosteriorGradient(posterior, parameters: q, samples: samples, rows: rows, groups: groups,
                                           seed: seed + 5, label: "covariance k=\(k) rows=\(rows) samples=\(samples)")
                XCTAssertEqual(posterior.retries.value, 0, "a well-conditioned Σ needs no jitter retry")
            }
        }
    }

    // MARK: - 2. Backward through potrf on random SPD matrices

    /// Σ = AAᵀ + δI with A lower triangular, A = I + ½G/√n below the diagonal and e^{½g/√n} on it (G, g standard
    /// normal): Σ is well conditioned. With μ = 0 and n samples, F = Σ_s c_sᵀ L ε_s + a log det = Σ_ij C_ij L_ij +
    /// a Σ log L_ii with C = Σ_s c_s ε_sᵀ a general lower-triangular coefficient matrix; the gradient reaches A only
    /// through the Cholesky factorization (klWeight 0).
    func testCholeskyBackwardThroughPotrfOrders1To16() throws {
        for n in [1, 2, 5, 16] {
            let delta = 1e-3
            let posterior = CovarianceGaussian<Double>(latent: n, jitter: delta)
            let g = normals(n * n, seed: UInt64(300 + n))
            var q = [Double](repeating: 0, count: n)  // μ = 0
            for i in 0..<n { q.append(0.5 * g[i * n + i] / Double(n).squareRoot()) }
            for i in 0..<n { for j in 0..<i { q.append(0.5 * g[i * n + j] / Double(n).squareRoot()) } }
            let a = lowerFactorByHand(row: q, latent: n)
            // Σ by hand, its conditioning, and its Cholesky factor by a textbook loop (independent of LAPACK).
            var sigma = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0..<n {
                    var s = i == j ? delta : 0
                    for t in 0..<n { s += a[i * n + t] * a[j * n + t] }
                    sigma[i * n + j] = s
                }
            }
            let inverse = bruteForceInverse(sigma, order: n)
            let condition = frobenius(sigma) * frobenius(inverse)
            XCTAssertLessThan(condition, 1e3, "n=\(n): Σ must be well conditioned for the check to mean anything")
            let expectedL = textbookCholesky(sigma, order: n)

            let parameters = Buffer<Double>(q)
            let scratch = Buffer<Double>(count: posterior.scratchPerRow), logDet = Buffer<Double>(count: 1)
            try posterior.prepare(parameters: parameters.pointer, rows: 1, scratch: scratch.pointer,
                                  logDeterminant: logDet.pointer)
            let l = (0..<(n * n)).map { scratch[$0] }
            XCTAssertLessThan(maxRelativeError(l, expectedL, floor: 1).error, 1e-12, "n=\(n): L = chol(AAᵀ + δI)")
            XCTAssertEqual(scratch[n * n], delta, "n=\(n): δ used")
            let expectedLogDet = (0..<n).reduce(0.0) { $0 + Foundation.log(expectedL[$1 * n + $1]) }
            XCTAssertLessThan(relativeError(logDet[0], expectedLogDet, floor: 1), 1e-12, "n=\(n): log det")

            let noise = Buffer<Double>(normals(n * n, seed: UInt64(310 + n)))
            let c = uniform(n * n, seed: UInt64(320 + n))
            let aCoefficient = [0.6]
            let analytic = try backward(posterior, parameters: parameters, noise: noise, coefficients: c,
                                        logDetCoefficients: aCoefficient, klWeight: 0, samples: n, rows: 1)
            let f: () -> Double = {
                (try? self.objective(posterior, parameters: parameters, noise: noise, coefficients: c,
                                     logDetCoefficients: aCoefficient, klWeight: 0, samples: n, rows: 1)) ?? .nan
            }
            let aIndices = Array(n..<posterior.parameterCount)
            assertGradient(aIndices.map { analytic[$0] }, numericalGradient(of: f, at: parameters.pointer, indices: aIndices),
                           "potrf backward n=\(n): d and A")
            let muIndices = Array(0..<n)
            assertGradient(muIndices.map { analytic[$0] },
                           numericalGradient(of: f, at: parameters.pointer, indices: muIndices), "n=\(n): μ")
            XCTAssertEqual(posterior.retries.value, 0)
        }
    }

    // MARK: - 3. The whole ELBO through the dense posteriors

    func checkELBO(posterior kind: PosteriorKind, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let configuration = ModelConfiguration(posterior: kind, inputs: 6, hidden: [5, 4], latent: 3, activation: .elu)
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: seed)
        let p = model.store.parameters.pointer
        let perturbation = uniform(model.parameterCount, seed: seed + 1, -0.1, 0.1)
        for i in 0..<model.parameterCount { p[i] = 2 * p[i] + perturbation[i] }
        let rows = 2, d = configuration.inputs, k = configuration.latent
        let ws = StepWorkspace(model: model, capacity: rows)
        for (i, v) in uniform(rows * d, seed: seed + 2, 0, 1).enumerated() { ws.x[i] = v < 0.5 ? 1 : 0 }
        for (i, v) in normals(rows * k, seed: seed + 3).enumerated() { ws.noise[i] = v }
        let lossScale = 1 / Double(rows)
        let f: () -> Double = {
            lossScale * ((try? ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: nil,
                                             lossScale: lossScale))?.nelbo ?? .nan)
        }
        let g = model.store.gradients
        for i in 0..<g.count { g[i] = .nan }  // must be overwritten
        let sums = try ELBO.evaluate(model: model, parameters: p, rows: rows, workspace: ws, gradients: g.pointer,
                                     lossScale: lossScale)
        XCTAssertEqual(sums.nelbo * lossScale, f(), "\(kind): the gradient pass reports the same objective",
                       file: file, line: line)
        XCTAssertTrue(sums.rec > 0 && sums.kl > 0, "\(kind): \(sums)", file: file, line: line)
        // The covariance factor must be well away from singular: its backward divides by L_ii (conditioning of
        // the finite differences). The Cholesky-factor family's L_ii = exp(d_i) is smooth at any scale.
        let factor = UnsafeMutablePointer<Double>.allocate(capacity: k * k)
        defer { factor.deallocate() }
        for r in 0..<rows where kind == .covariance {
            model.posterior.factor(scratch: ws.scratch.pointer, row: r, into: factor)
            for i in 0..<k {
                XCTAssertGreaterThan(factor[i * k + i], 0.05, "\(kind): L_\(i)\(i) of row \(r)", file: file, line: line)
            }
        }
        let analytic = g.array
        XCTAssertEqual(model.store.views.count, 2 * (configuration.hidden.count + 1) * 2)
        for view in model.store.views {
            assertGradient(view.range.map { analytic[$0] },
                           numericalGradient(of: f, at: p, indices: Array(view.range)), "\(kind) \(view.name)",
                           file: file, line: line)
        }
    }

    func testELBOGradientFullPosterior() throws { try checkELBO(posterior: .full, seed: 400) }

    func testELBOGradientCovariancePosterior() throws { try checkELBO(posterior: .covariance, seed: 410) }

    // MARK: - 4. Closed forms and brute-force densities

    struct Evaluation {
        var z: [Double], logDet: [Double], kl: [Double], ownLogQ: [Double], foreignLogQ: [Double], factors: [Double]
    }

    /// Everything a posterior reports for one noise draw and one foreign z (rows × k).
    func evaluate<P: Posterior>(_ posterior: P, parameters q: [Double], noise: [Double], foreign: [Double],
                                rows: Int) throws -> Evaluation where P.Scalar == Double {
        let k = posterior.latent
        let params = Buffer<Double>(q), e = Buffer<Double>(noise), zf = Buffer<Double>(foreign)
        let scratch = Buffer<Double>(count: rows * posterior.scratchPerRow)
        let logDet = Buffer<Double>(count: rows), kl = Buffer<Double>(count: rows)
        let z = Buffer<Double>(count: rows * k), density = Buffer<Double>(count: rows)
        try posterior.prepare(parameters: params.pointer, rows: rows, scratch: scratch.pointer,
                              logDeterminant: logDet.pointer)
        posterior.sample(parameters: params.pointer, scratch: scratch.pointer, noise: e.pointer, samples: 1, rows: rows,
                         z: z.pointer)
        posterior.klToStandardNormal(parameters: params.pointer, scratch: scratch.pointer, logDeterminant: logDet.pointer,
                                     rows: rows, kl: kl.pointer)
        posterior.logDensity(parameters: params.pointer, scratch: scratch.pointer, logDeterminant: logDet.pointer,
                             z: zf.pointer, rows: rows, out: density.pointer)
        let own = (0..<rows).map { posterior.logDensityOfOwnSample(noise: e.pointer + $0 * k, logDeterminant: logDet[$0]) }
        withExtendedLifetime((params, e, zf)) {}
        return Evaluation(z: z.array, logDet: logDet.array, kl: kl.array, ownLogQ: own, foreignLogQ: density.array,
                          factors: scratch.array)
    }

    func testFullWithZeroOffDiagonalsIsDiagonal() throws {
        let k = 4, rows = 3
        let mu = uniform(rows * k, seed: 500), d = uniform(rows * k, seed: 501, -0.8, 0.8)
        var fullQ = [Double](), diagonalQ = [Double]()
        for r in 0..<rows {
            let m = Array(mu[(r * k)..<((r + 1) * k)]), dr = Array(d[(r * k)..<((r + 1) * k)])
            fullQ += m + dr + [Double](repeating: 0, count: k * (k - 1) / 2)
            diagonalQ += m + dr.map { 2 * $0 }  // s = log σ² = 2d
        }
        let noise = normals(rows * k, seed: 502), foreign = uniform(rows * k, seed: 503, -2, 2)
        let full = try evaluate(CholeskyFactorGaussian<Double>(latent: k), parameters: fullQ, noise: noise,
                                foreign: foreign, rows: rows)
        let diagonal = try evaluate(DiagonalGaussian<Double>(latent: k), parameters: diagonalQ, noise: noise,
                                    foreign: foreign, rows: rows)
        XCTAssertEqual(full.z, diagonal.z, "z = μ + exp(d) ε exactly")
        XCTAssertEqual(full.logDet, diagonal.logDet, "Σ log L_ii = Σ d_i = Σ s_i/2 exactly")
        XCTAssertEqual(full.ownLogQ, diagonal.ownLogQ, "log q of the own sample")
        XCTAssertLessThan(maxRelativeError(full.kl, diagonal.kl, floor: 1).error, 1e-14, "KL \(full.kl) vs \(diagonal.kl)")
        XCTAssertLessThan(maxRelativeError(full.foreignLogQ, diagonal.foreignLogQ, floor: 1).error, 1e-14,
                          "log q of a foreign z \(full.foreignLogQ) vs \(diagonal.foreignLogQ)")
        XCTAssertTrue(full.kl.allSatisfy { $0 > 0 })
    }

    func testCovarianceWithDiagonalAIsDiagonal() throws {
        let k = 4, rows = 3, delta = 1e-3
        let mu = uniform(rows * k, seed: 510), s = uniform(rows * k, seed: 511, -0.5, 0.5)
        var covarianceQ = [Double](), diagonalQ = [Double]()
        for r in 0..<rows {
            let m = Array(mu[(r * k)..<((r + 1) * k)]), sr = Array(s[(r * k)..<((r + 1) * k)])
            // A_ii = e^{d_i} with A_ii² + δ = σ_i², nothing below the diagonal.
            covarianceQ += m + sr.map { 0.5 * Foundation.log(Foundation.exp($0) - delta) }
            covarianceQ += [Double](repeating: 0, count: k * (k - 1) / 2)
            diagonalQ += m + sr
        }
        let noise = normals(rows * k, seed: 512), foreign = uniform(rows * k, seed: 513, -2, 2)
        let covariance = try evaluate(CovarianceGaussian<Double>(latent: k, jitter: delta), parameters: covarianceQ,
                                      noise: noise, foreign: foreign, rows: rows)
        let diagonal = try evaluate(DiagonalGaussian<Double>(latent: k), parameters: diagonalQ, noise: noise,
                                    foreign: foreign, rows: rows)
        XCTAssertLessThan(maxRelativeError(covariance.z, diagonal.z, floor: 1).error, 1e-12, "z")
        XCTAssertLessThan(maxRelativeError(covariance.logDet, diagonal.logDet, floor: 1).error, 1e-12, "log det")
        XCTAssertLessThan(maxRelativeError(covariance.kl, diagonal.kl, floor: 1).error, 1e-12,
                          "KL \(covariance.kl) vs \(diagonal.kl)")
        XCTAssertLessThan(maxRelativeError(covariance.ownLogQ, diagonal.ownLogQ, floor: 1).error, 1e-12, "own log q")
        XCTAssertLessThan(maxRelativeError(covariance.foreignLogQ, diagonal.foreignLogQ, floor: 1).error, 1e-12,
                          "foreign log q \(covariance.foreignLogQ) vs \(diagonal.foreignLogQ)")
    }

    /// log q of a foreign z and of the own sample against −½(z−μ)ᵀΣ⁻¹(z−μ) − ½ log det Σ − (k/2) log 2π with Σ
    /// built by hand from the encoder outputs and inverted by Gaussian elimination; KL against the closed form
    /// ½(tr Σ + ‖μ‖² − k − log det Σ) from the same Σ.
    func testLogDensityMatchesBruteForceAllFamilies() throws {
        let k = 4, rows = 3
        let noise = normals(rows * k, seed: 522), foreign = uniform(rows * k, seed: 523, -2, 2)
        for kind in PosteriorKind.allCases {
            let q: [Double], width: Int
            let evaluation: Evaluation
            switch kind {
            case .diagonal:
                width = 2 * k
                q = uniform(rows * width, seed: 520)
                evaluation = try evaluate(DiagonalGaussian<Double>(latent: k), parameters: q, noise: noise,
                                          foreign: foreign, rows: rows)
            case .full:
                width = 2 * k + k * (k - 1) / 2
                q = fullParameters(latent: k, rows: rows, seed: 524)
                evaluation = try evaluate(CholeskyFactorGaussian<Double>(latent: k), parameters: q, noise: noise,
                                          foreign: foreign, rows: rows)
            case .covariance:
                width = 2 * k + k * (k - 1) / 2
                q = uniform(rows * width, seed: 526)  // a general lower-triangular A, not near the identity
                evaluation = try evaluate(CovarianceGaussian<Double>(latent: k, jitter: 1e-2), parameters: q,
                                          noise: noise, foreign: foreign, rows: rows)
            }
            for r in 0..<rows {
                let row = Array(q[(r * width)..<((r + 1) * width)])
                let mu = Array(row[0..<k])
                let sigma = covarianceByHand(kind, row: row, latent: k, jitter: 1e-2)
                let zForeign = Array(foreign[(r * k)..<((r + 1) * k)])
                let zOwn = Array(evaluation.z[(r * k)..<((r + 1) * k)])
                let expectedForeign = bruteForceLogNormal(zForeign, mean: mu, covariance: sigma)
                let expectedOwn = bruteForceLogNormal(zOwn, mean: mu, covariance: sigma)
                XCTAssertLessThan(relativeError(evaluation.foreignLogQ[r], expectedForeign, floor: 1), 1e-12,
                                  "\(kind) row \(r): foreign log q \(evaluation.foreignLogQ[r]) vs \(expectedForeign)")
                XCTAssertLessThan(relativeError(evaluation.ownLogQ[r], expectedOwn, floor: 1), 1e-12,
                                  "\(kind) row \(r): own-sample log q \(evaluation.ownLogQ[r]) vs \(expectedOwn)")
                let (_, logDetSigma) = bruteForceSolve(sigma, sigma, order: k)
                var trace = 0.0
                for i in 0..<k { trace += sigma[i * k + i] }
                let expectedKL = 0.5 * (trace + mu.reduce(0) { $0 + $1 * $1 } - Double(k) - logDetSigma)
                XCTAssertLessThan(relativeError(evaluation.kl[r], expectedKL, floor: 1), 1e-12,
                                  "\(kind) row \(r): KL \(evaluation.kl[r]) vs \(expectedKL)")
                XCTAssertLessThan(relativeError(2 * evaluation.logDet[r], logDetSigma, floor: 1), 1e-12,
                                  "\(kind) row \(r): 2 Σ log L_ii = log det Σ")
            }
        }
    }

    // MARK: - 5. Singular covariance: retry with a larger jitter, counted, or a typed error

    /// Rows with an exactly singular AAᵀ = [[1,1,0],[1,1,0],[0,0,1]] (s = 1; A = [[1,0,0],[1,0,0],[0,0,1]], its
    /// A_11 = e^{−1000} = 0 in Double) at a jitter too small to change it in
    /// Double (1 + 1e-17 = 1) fail once and factorize after one tenfold raise (from the floor k·u·s): each such row
    /// counts exactly one retry, healthy rows none, and L Lᵀ = AAᵀ + δ'I with the δ' recorded. Without retries the
    /// factorization throws and the test fails.
    func testSingularCovarianceRetriesOrThrows() throws {
        let k = 3, jitter = 1e-17
        let counter = FactorizationCounter()
        let posterior = CovarianceGaussian<Double>(latent: k, jitter: jitter, retries: counter)
        let singular: [Double] = [0.3, -0.1, 0.2] + [0, -1000, 0] + [1, 0, 0]
        let good = covarianceParameters(latent: k, rows: 2, seed: 530)
        let width = posterior.parameterCount
        let rows = Array(good[0..<width]) + singular + Array(good[width...]) + singular
        let q = Buffer<Double>(rows)
        let scratch = Buffer<Double>(count: 4 * posterior.scratchPerRow), logDet = Buffer<Double>(count: 4)
        try posterior.prepare(parameters: q.pointer, rows: 4, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        XCTAssertEqual(counter.value, 2, "one retry per row that needed a raise, none for the healthy rows")
        let raised = 10 * max(jitter, Double(k) * Double.ulpOfOne * 1)
        for r in 0..<4 {
            let delta = scratch[r * posterior.scratchPerRow + k * k]
            XCTAssertEqual(delta, r % 2 == 1 ? raised : jitter, "row \(r): the δ used")
            // L Lᵀ = AAᵀ + δI with the δ recorded.
            let a = lowerFactorByHand(row: Array(rows[(r * width)..<((r + 1) * width)]), latent: k)
            let l = (0..<(k * k)).map { scratch[r * posterior.scratchPerRow + $0] }
            for i in 0..<k {
                for j in 0..<k {
                    var sigma = i == j ? delta : 0, product = 0.0
                    for t in 0..<k {
                        sigma += a[i * k + t] * a[j * k + t]
                        product += l[i * k + t] * l[j * k + t]
                    }
                    XCTAssertEqual(product, sigma, accuracy: 1e-15, "row \(r): (LLᵀ)[\(i),\(j)]")
                }
            }
            XCTAssertEqual(logDet[r], (0..<k).reduce(0.0) { $0 + Foundation.log(l[$1 * k + $1]) }, accuracy: 1e-12)
        }
        withExtendedLifetime(q) {}
    }
}

// MARK: - Independent linear algebra (no BLAS/LAPACK)

private func bruteForceInverse(_ matrix: [Double], order n: Int) -> [Double] {
    var identity = [Double](repeating: 0, count: n * n)
    for i in 0..<n { identity[i * n + i] = 1 }
    return bruteForceSolve(matrix, identity, order: n).solution
}

private func frobenius(_ m: [Double]) -> Double { m.reduce(0) { $0 + $1 * $1 }.squareRoot() }

/// Cholesky–Banachiewicz, row by row, for the forward check of potrf.
private func textbookCholesky(_ sigma: [Double], order n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = sigma[i * n + j]
            for t in 0..<j { s -= l[i * n + t] * l[j * n + t] }
            l[i * n + j] = i == j ? s.squareRoot() : s / l[j * n + j]
        }
    }
    return l
}
