import LatentCore
import XCTest

/// `choleskyLower` against the reconstruction L Lᵀ = A, and its error on matrices that are not positive definite.
final class CholeskyTests: XCTestCase {
    /// A random SPD matrix B Bᵀ + n I of order n (row-major, dense).
    func randomSPD(order n: Int, seed: UInt64) -> [Double] {
        let b = Naive.uniform(n * n, seed: seed)
        var a = Naive.product(b, Naive.transpose(b, rows: n, columns: n), m: n, k: n, n: n)
        for i in 0..<n { a[i * n + i] += Double(n) }
        // Exact symmetry (the product is symmetric up to rounding already; make it bitwise so).
        for i in 0..<n { for j in 0..<i { a[j * n + i] = a[i * n + j] } }
        return a
    }

    /// Backward-error bound of Cholesky: |LLᵀ − A| ≤ γ_{n+1} |L||Lᵀ| ≤ (n+1)u·max|A| (Higham, Thm 10.3); the factor 2
    /// covers the reconstruction's own rounding.
    func checkFactorization<T: BLASScalar>(_: T.Type, order n: Int, pad: Int, seed: UInt64,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        let tolerance = 2 * Double(n + 1) * Double(T.ulpOfOne) / 2
        let a = randomSPD(order: n, seed: seed)
        let ld = n + pad
        let paddingValue = T(31.5)
        var buffer = [T](repeating: paddingValue, count: n * ld)
        for i in 0..<n { for j in 0..<n { buffer[i * ld + j] = T(a[i * n + j]) } }
        // The strictly upper triangle holds garbage that must not influence the result and must come back zeroed.
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { buffer[i * ld + j] = T(1000 + Double(i * n + j)) } }
        try buffer.withUnsafeMutableBufferPointer { try choleskyLower($0.baseAddress!, order: n, lda: pad == 0 ? nil : ld) }
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<ld {
                let v = buffer[i * ld + j]
                if j >= n {
                    XCTAssertEqual(v, paddingValue, "order \(n): padding (\(i), \(j)) changed", file: file, line: line)
                } else if j > i {
                    XCTAssertEqual(v, 0, "order \(n): upper entry (\(i), \(j)) not zeroed", file: file, line: line)
                } else {
                    l[i * n + j] = Double(v)
                }
            }
            XCTAssertGreaterThan(l[i * n + i], 0, "order \(n): diagonal \(i) not positive", file: file, line: line)
        }
        let reconstructed = Naive.product(l, Naive.transpose(l, rows: n, columns: n), m: n, k: n, n: n)
        // Compare against A as rounded to T.
        let scale = Naive.maxAbs(a)
        for i in 0..<(n * n) {
            let expected = Double(T(a[i]))
            XCTAssertLessThanOrEqual(abs(reconstructed[i] - expected), tolerance * scale,
                                     "\(T.self) order \(n): (LLᵀ)[\(i / n), \(i % n)] = \(reconstructed[i]) vs \(expected)",
                                     file: file, line: line)
        }
    }

    func testCholeskyReconstructsDouble() throws {
        for (i, n) in [1, 2, 5, 16].enumerated() {
            try checkFactorization(Double.self, order: n, pad: 0, seed: UInt64(10 + i))
            try checkFactorization(Double.self, order: n, pad: 3, seed: UInt64(20 + i))
        }
    }

    func testCholeskyReconstructsFloat() throws {
        for (i, n) in [1, 2, 5, 16].enumerated() {
            try checkFactorization(Float.self, order: n, pad: 0, seed: UInt64(30 + i))
            try checkFactorization(Float.self, order: n, pad: 2, seed: UInt64(40 + i))
        }
    }

    func testCholeskyOfKnownMatrix() throws {
        // A = L Lᵀ with L = [[2, 0], [1, 3]]: A = [[4, 2], [2, 10]].
        var a: [Double] = [4, 2, 2, 10]
        try a.withUnsafeMutableBufferPointer { try choleskyLower($0.baseAddress!, order: 2) }
        XCTAssertEqual(a, [2, 0, 1, 3])
    }

    func expectNotPositiveDefinite<T: BLASScalar>(_ values: [T], order: Int, leadingMinor: Int,
                                                 file: StaticString = #filePath, line: UInt = #line) {
        var a = values
        XCTAssertThrowsError(try a.withUnsafeMutableBufferPointer { try choleskyLower($0.baseAddress!, order: order) },
                             file: file, line: line) { error in
            XCTAssertEqual(error as? LinearAlgebraError,
                           .notPositiveDefinite(order: order, leadingMinor: leadingMinor), file: file, line: line)
            let text = "\(error)"
            XCTAssertFalse(text.isEmpty, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "description must be one line: \(text)", file: file, line: line)
        }
    }

    func testNotPositiveDefiniteThrows() {
        expectNotPositiveDefinite([1, 2, 2, 1] as [Double], order: 2, leadingMinor: 2)
        expectNotPositiveDefinite([1, 2, 2, 1] as [Float], order: 2, leadingMinor: 2)
        expectNotPositiveDefinite([-1] as [Double], order: 1, leadingMinor: 1)
        expectNotPositiveDefinite([0, 0, 0, 0, 0, 0, 0, 0, 0] as [Double], order: 3, leadingMinor: 1)
        // Positive semidefinite but singular: the second pivot is exactly zero.
        expectNotPositiveDefinite([1, 1, 1, 1] as [Double], order: 2, leadingMinor: 2)
        // Indefinite only in the last leading minor.
        expectNotPositiveDefinite([2, 0, 0, 0, 2, 0, 0, 0, -0.5] as [Double], order: 3, leadingMinor: 3)
    }

    func testErrorDescriptionsAreSingleLines() {
        for e in [LinearAlgebraError.notPositiveDefinite(order: 4, leadingMinor: 2),
                  .illegalArgument(routine: "potrf", position: 4), .nonFinite(order: 3)] {
            XCTAssertFalse(e.description.isEmpty)
            XCTAssertFalse(e.description.contains("\n"), e.description)
        }
    }
}
