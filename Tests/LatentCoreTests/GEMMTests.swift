import LatentCore
import XCTest

/// `BLASScalar.gemm` and `Matrix.multiplied` against a naive triple loop.
final class GEMMTests: XCTestCase {
    static let transposes: [Transpose] = [.none, .transpose]

    /// C ← α op(A) op(B) + β C with padded leading dimensions; the padding is NaN in A and B (must never be read)
    /// and a sentinel in C (must never be written). The error bound is the classical (inner + 2)·u·(|α||A||B| + |β C|).
    func checkGEMM<T: BLASScalar>(
        _: T.Type, transA: Transpose, transB: Transpose, rows: Int, columns: Int, inner: Int,
        alpha: Double, beta: Double, pad: Int, nanC: Bool = false, seed: UInt64, pieceWidth: Int? = nil,
        mallocFree plan: MallocFreeNN? = nil, file: StaticString = #filePath, line: UInt = #line
    ) {
        let tolerance = Double(inner + 2) * Double(T.ulpOfOne) / 2
        let aRows = transA == .none ? rows : inner, aCols = transA == .none ? inner : rows
        let bRows = transB == .none ? inner : columns, bCols = transB == .none ? columns : inner
        let lda = aCols + pad, ldb = bCols + pad, ldc = columns + pad
        let av = Naive.uniform(aRows * aCols, seed: seed), bv = Naive.uniform(bRows * bCols, seed: seed + 1)
        let cv = Naive.uniform(rows * columns, seed: seed + 2)
        let sentinel = T(-777.25)
        var a = [T](repeating: .nan, count: aRows * lda)
        var b = [T](repeating: .nan, count: bRows * ldb)
        var c = [T](repeating: sentinel, count: rows * ldc)
        for r in 0..<aRows { for j in 0..<aCols { a[r * lda + j] = T(av[r * aCols + j]) } }
        for r in 0..<bRows { for j in 0..<bCols { b[r * ldb + j] = T(bv[r * bCols + j]) } }
        for r in 0..<rows { for j in 0..<columns { c[r * ldc + j] = nanC ? .nan : T(cv[r * columns + j]) } }
        // The reference uses the values as rounded to T, so only the product's own rounding is measured.
        func opA(_ r: Int, _ l: Int) -> Double { Double(transA == .none ? a[r * lda + l] : a[l * lda + r]) }
        func opB(_ l: Int, _ j: Int) -> Double { Double(transB == .none ? b[l * ldb + j] : b[j * ldb + l]) }
        var expected = [Double](repeating: 0, count: rows * columns), scale = [Double](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for j in 0..<columns {
                var s = 0.0, m = 0.0
                for l in 0..<inner { s += opA(r, l) * opB(l, j); m += abs(opA(r, l) * opB(l, j)) }
                let c0 = nanC ? 0 : Double(c[r * ldc + j])
                expected[r * columns + j] = alpha * s + beta * c0
                scale[r * columns + j] = abs(alpha) * m + abs(beta * c0) + Double.leastNormalMagnitude
            }
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    if let plan {
                        T.gemm(rows: rows, columns: columns, inner: inner, alpha: T(alpha), a: ap.baseAddress!,
                               lda: lda, b: bp.baseAddress!, ldb: ldb, beta: T(beta), c: cp.baseAddress!, ldc: ldc,
                               mallocFree: plan)
                    } else if let pieceWidth {
                        T.gemm(transA, transB, rows: rows, columns: columns, inner: inner, alpha: T(alpha),
                               a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb, beta: T(beta),
                               c: cp.baseAddress!, ldc: ldc, pieceWidth: pieceWidth)
                    } else {
                        T.gemm(transA, transB, rows: rows, columns: columns, inner: inner, alpha: T(alpha),
                               a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb, beta: T(beta),
                               c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
        }
        let what = "\(T.self) \(transA)×\(transB) \(rows)×\(columns)×\(inner) α=\(alpha) β=\(beta) pad=\(pad)"
            + (pieceWidth.map { " in pieces of \($0)" } ?? "") + (plan.map { " as \($0)" } ?? "")
        for r in 0..<rows {
            for j in 0..<ldc {
                let got = c[r * ldc + j]
                if j >= columns {
                    XCTAssertEqual(got, sentinel, "\(what): padding of C at (\(r), \(j)) was written", file: file, line: line)
                    continue
                }
                let e = expected[r * columns + j]
                XCTAssertLessThanOrEqual(abs(Double(got) - e), tolerance * scale[r * columns + j],
                                         "\(what): C[\(r), \(j)] = \(got), expected \(e)", file: file, line: line)
            }
        }
    }

    func runAllCases<T: BLASScalar>(_ type: T.Type) {
        let shapes = [(3, 4, 5), (1, 1, 1), (7, 2, 3), (2, 9, 1), (13, 11, 17)]
        let scalars = [(1.0, 0.0), (1.5, -0.5), (-0.75, 1.0), (0.0, 2.0)]
        var seed: UInt64 = 1
        for transA in Self.transposes {
            for transB in Self.transposes {
                for (rows, columns, inner) in shapes {
                    for (alpha, beta) in scalars {
                        for pad in [0, 3] {
                            seed += 3
                            checkGEMM(type, transA: transA, transB: transB, rows: rows, columns: columns,
                                      inner: inner, alpha: alpha, beta: beta, pad: pad, seed: seed)
                        }
                    }
                }
            }
        }
    }

    func testGEMMDoubleAllTransposesMatchesNaive() {
        runAllCases(Double.self)
    }

    func testGEMMFloatAllTransposesMatchesNaive() {
        runAllCases(Float.self)
    }

    /// BLAS: "when β is zero, C need not be set on input" — NaN in C must not leak into the result.
    func testGEMMBetaZeroIgnoresNaNInC() {
        for transA in Self.transposes {
            for transB in Self.transposes {
                checkGEMM(Double.self, transA: transA, transB: transB, rows: 3, columns: 4, inner: 5, alpha: 2,
                          beta: 0, pad: 1, nanC: true, seed: 99)
                checkGEMM(Float.self, transA: transA, transB: transB, rows: 3, columns: 4, inner: 5, alpha: 2,
                          beta: 0, pad: 1, nanC: true, seed: 99)
            }
        }
    }

    /// `gemm(pieceWidth:)`, as `Float.gemm` issues the step's GEMMs where OpenBLAS has small-matrix kernels
    /// (`SmallMatrixPieces`; this test process keeps OpenBLAS's own kernel, so the widths are given): every
    /// transposition, with padded leading dimensions and β ≠ 0, against the naive loop. The pieces must cover every
    /// column once, with the right offsets into B and C.
    func testGEMMInPiecesMatchesNaive() {
        let shapes = [(Transpose.none, Transpose.transpose, 32, 150, 300), (.transpose, .none, 83, 400, 32),
                      (.none, .none, 32, 156, 300), (.transpose, .transpose, 32, 150, 300)]
        var seed: UInt64 = 500
        for (transA, transB, rows, columns, inner) in shapes {
            let rule = SmallMatrixPieces.width(transA, transB, rows: rows, columns: columns, inner: inner)
            if transA == .none || transB == .none {
                XCTAssertLessThan(rule, columns, "\(transA)×\(transB) \(rows)×\(columns)×\(inner) is split")
            }
            // The rule's width with β = 0 and β ≠ 0, and about half the columns (a narrower last piece).
            for (width, alpha, beta) in [(rule, 1.0, 0.0), (rule, -0.5, 1.5), (columns / 2 + 1, -0.5, 1.5)]
                where width < columns {
                seed += 3
                checkGEMM(Float.self, transA: transA, transB: transB, rows: rows, columns: columns, inner: inner,
                          alpha: alpha, beta: beta, pad: 5, seed: seed, pieceWidth: width)
            }
        }
    }

    /// `gemm(mallocFree:)`, as `Float.gemm` issues an NN GEMM on which OpenBLAS's small-matrix kernel would allocate
    /// (`SmallMatrixPieces.mallocFreeNN`), against the naive loop: both plans, with padding and with β = 0 and ≠ 0.
    func testMallocFreeNNMatchesNaive() {
        var seed: UInt64 = 900
        for (rows, columns, inner) in [(50, 20, 300), (7, 5, 64), (3, 40, 95)] {
            for (alpha, beta) in [(1.0, 0.0), (0.75, -1.25)] {
                let plan = SmallMatrixPieces.mallocFreeNN(rows: rows, columns: columns, inner: inner,
                                                          betaIsZero: beta == 0)
                guard let plan else { return XCTFail("\(rows)×\(columns)×\(inner) needs a plan") }
                seed += 3
                checkGEMM(Float.self, transA: .none, transB: .none, rows: rows, columns: columns, inner: inner,
                          alpha: alpha, beta: beta, pad: 3, seed: seed, mallocFree: plan)
            }
        }
    }

    func checkMultiplied<T: BLASScalar>(_: T.Type) {
        let u = Double(T.ulpOfOne) / 2
        // op(A) is 3×5, op(B) is 5×4 for every transpose combination.
        for ta in Self.transposes {
            for tb in Self.transposes {
                let a0 = Naive.uniform(15, seed: 7), b0 = Naive.uniform(20, seed: 8)
                let a = ta == .none
                    ? Matrix(rows: 3, columns: 5, values: a0.map { T($0) })
                    : Matrix(rows: 5, columns: 3, values: Naive.transpose(a0, rows: 3, columns: 5).map { T($0) })
                let b = tb == .none
                    ? Matrix(rows: 5, columns: 4, values: b0.map { T($0) })
                    : Matrix(rows: 4, columns: 5, values: Naive.transpose(b0, rows: 5, columns: 4).map { T($0) })
                let c = a.multiplied(by: b, ta, tb)
                XCTAssertEqual(c.rows, 3, "\(T.self) \(ta)×\(tb)")
                XCTAssertEqual(c.columns, 4, "\(T.self) \(ta)×\(tb)")
                let ar = a0.map { Double(T($0)) }, br = b0.map { Double(T($0)) }
                let expected = Naive.product(ar, br, m: 3, k: 5, n: 4)
                let scale = Naive.product(ar.map(abs), br.map(abs), m: 3, k: 5, n: 4)
                for i in 0..<12 {
                    XCTAssertEqual(Double(c.values[i]), expected[i], accuracy: 7 * u * scale[i],
                                   "\(T.self) \(ta)×\(tb) entry \(i)")
                }
            }
        }
    }

    func testMatrixMultipliedAllTransposes() {
        checkMultiplied(Double.self)
        checkMultiplied(Float.self)
    }

    func testMatrixTransposedAndSubscript() {
        var m = Matrix<Double>(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(m[1, 0], 4)
        m[0, 2] = 9
        XCTAssertEqual(m.values, [1, 2, 9, 4, 5, 6])
        let t = m.transposed
        XCTAssertEqual(t.rows, 3)
        XCTAssertEqual(t.columns, 2)
        XCTAssertEqual(t.values, [1, 4, 2, 5, 9, 6])
        XCTAssertEqual(t.transposed, m)
        // Aᵀ·B through the transpose flag equals the product with the explicitly transposed matrix.
        let b = Matrix<Double>(rows: 2, columns: 2, values: [1, -1, 0.5, 2])
        let viaFlag = m.multiplied(by: b, .transpose, .none)
        let viaCopy = t.multiplied(by: b)
        XCTAssertEqual(viaFlag, viaCopy)
    }
}
