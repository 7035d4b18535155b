import Foundation
import LatentCore
import TestSupport
import XCTest
@testable import LatentModels

/// The covariance family's batched path (groups of eight rows through `InterleavedMatrices`, from k =
/// `BatchedCholesky.crossoverOrder`) against its per-row LAPACK/BLAS path, and by central differences in Double.
extension DensePosteriorTests {
    struct CovarianceRun<T: BLASScalar> {
        var factors: [T], deltas: [T], logDet: [T], gradient: [T]
    }

    /// prepare and backward of `rows` rows, for the path that `batchedFromOrder` selects.
    func runCovariance<T: BLASScalar>(_: T.Type, latent k: Int, rows: Int, samples: Int, batchedFromOrder: Int, seed: UInt64,
                            retries: FactorizationCounter = FactorizationCounter(),
                            parameters: [Double]? = nil) throws -> CovarianceRun<T> {
        let posterior = CovarianceGaussian<T>(latent: k, jitter: T(1e-3), retries: retries,
                                              batchedFromOrder: batchedFromOrder)
        let width = posterior.parameterCount
        let q = Buffer<T>((parameters ?? covarianceParameters(latent: k, rows: rows, seed: seed))
            .map { T($0) })
        XCTAssertEqual(q.count, rows * width)
        let scratch = Buffer<T>(count: rows * posterior.scratchPerRow), logDet = Buffer<T>(count: rows)
        try posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        let noise = Buffer<T>(normals(samples * rows * k, seed: seed + 1).map { T($0) })
        let dz = Buffer<T>(uniform(samples * rows * k, seed: seed + 2).map { T($0) })
        let dLogDet = Buffer<T>(uniform(rows, seed: seed + 3).map { T($0) })
        let dq = Buffer<T>([T](repeating: .nan, count: rows * width))
        posterior.backward(parameters: q.pointer, scratch: scratch.pointer, noise: noise.pointer, samples: samples,
                           rows: rows, dz: dz.pointer, dLogDeterminant: dLogDet.pointer, klWeight: T(0.7),
                           dParameters: dq.pointer)
        let p = posterior.scratchPerRow
        return CovarianceRun(factors: (0..<rows).flatMap { r in (0..<(k * k)).map { scratch[r * p + $0] } },
                      deltas: (0..<rows).map { scratch[$0 * p + k * k] }, logDet: logDet.array, gradient: dq.array)
    }

    func maxScaledDifference<T: BLASScalar>(_ a: [T], _ b: [T]) -> Double {
        let scale = b.map { abs(Double($0)) }.max() ?? 0
        return zip(a, b).map { abs(Double($0) - Double($1)) / max(scale, 1e-300) }.max() ?? 0
    }

    /// Rows that fill two groups and a partial one: the batched path's L, δ, log det and gradient equal the per-row
    /// path's to rounding (the arithmetic is the same, summed in another order).
    func checkAgainstPerRow<T: BLASScalar>(_ type: T.Type, tolerance: Double) throws {
        for (i, k) in [16, 17, 24, 33].enumerated() {
            let rows = 19, seed = UInt64(1600 + 10 * i)
            let batched = try runCovariance(type, latent: k, rows: rows, samples: 2, batchedFromOrder: 16, seed: seed)
            let perRow = try runCovariance(type, latent: k, rows: rows, samples: 2, batchedFromOrder: .max, seed: seed)
            XCTAssertLessThan(maxScaledDifference(batched.factors, perRow.factors), tolerance, "\(T.self) k=\(k): L")
            XCTAssertEqual(batched.deltas, perRow.deltas, "\(T.self) k=\(k): δ")
            XCTAssertLessThan(maxScaledDifference(batched.logDet, perRow.logDet), tolerance, "\(T.self) k=\(k): log det")
            XCTAssertLessThan(maxScaledDifference(batched.gradient, perRow.gradient), tolerance, "\(T.self) k=\(k): gradient")
            XCTAssertFalse(batched.gradient.contains { $0.isNaN }, "\(T.self) k=\(k): every entry written")
        }
    }

    func testBatchedPathMatchesPerRowPathDouble() throws { try checkAgainstPerRow(Double.self, tolerance: 1e-12) }

    func testBatchedPathMatchesPerRowPathFloat() throws { try checkAgainstPerRow(Float.self, tolerance: 1e-4) }

    /// With the batched kernels from k = 1, the backward of groups and of the rows after them against central
    /// differences of prepare, sample and KL (DensePosteriorTests' objective).
    func testBatchedBackwardMatchesFiniteDifferences() throws {
        for (n, k) in [1, 3, 4].enumerated() {
            let rows = 10, samples = 2
            let posterior = CovarianceGaussian<Double>(latent: k, jitter: 1e-3, batchedFromOrder: 1)
            let width = posterior.parameterCount
            let q = Buffer<Double>(covarianceParameters(latent: k, rows: rows, seed: UInt64(1700 + 10 * n)))
            try checkPosteriorGradient(posterior, parameters: q, samples: samples, rows: rows,
                                             groups: [("all", Array(0..<(rows * width)))], seed: UInt64(1705 + 10 * n),
                                             label: "batched covariance k=\(k)")
        }
    }

    /// A group holding rows whose AAᵀ is singular (as in DensePosteriorTests' retry test): those rows fail in the
    /// batched factorization, are factorized again per row with one raise each, and count once each.
    func testBatchedFailuresRetryPerRowAndCountOnce() throws {
        let k = 3, rows = 9
        var parameters = covarianceParameters(latent: k, rows: rows, seed: 1800)
        let width = 2 * k + k * (k - 1) / 2
        for r in [2, 5] {
            parameters.replaceSubrange((r * width)..<((r + 1) * width), with: [0.3, -0.1, 0.2, 0, -1000, 0, 1, 0, 0])
        }
        let counter = FactorizationCounter()
        let jitter = 1e-17
        let posterior = CovarianceGaussian<Double>(latent: k, jitter: jitter, retries: counter, batchedFromOrder: 1)
        let q = Buffer<Double>(parameters)
        let scratch = Buffer<Double>(count: rows * posterior.scratchPerRow), logDet = Buffer<Double>(count: rows)
        try posterior.prepare(parameters: q.pointer, rows: rows, scratch: scratch.pointer, logDeterminant: logDet.pointer)
        XCTAssertEqual(counter.value, 2, "one retry per singular row")
        let raised = 10 * max(jitter, Double(k) * Double.ulpOfOne * 1)
        for r in 0..<rows {
            XCTAssertEqual(scratch[r * posterior.scratchPerRow + k * k], [2, 5].contains(r) ? raised : jitter, "row \(r)")
        }
        let perRow = try runCovariance(Double.self, latent: k, rows: rows, samples: 1, batchedFromOrder: .max, seed: 1800,
                             parameters: parameters)
        let batched = try runCovariance(Double.self, latent: k, rows: rows, samples: 1, batchedFromOrder: 1, seed: 1800,
                              parameters: parameters)
        XCTAssertLessThan(maxScaledDifference(batched.factors, perRow.factors), 1e-12)
        XCTAssertLessThan(maxScaledDifference(batched.gradient, perRow.gradient), 1e-9)
    }
}
