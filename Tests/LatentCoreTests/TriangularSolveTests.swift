import LatentCore
import XCTest

/// `trsm` and `trsv` against a dense Gaussian-elimination solve of the same system.
final class TriangularSolveTests: XCTestCase {
    /// A triangular matrix of order n stored in an n×ld row-major buffer: the chosen triangle holds the values,
    /// the other triangle (and, for unit diagonals, the diagonal) holds garbage that must never be read.
    /// Returns the buffer and the dense effective matrix op(T) in Double.
    func triangular<T: BLASScalar>(_: T.Type, order n: Int, ld: Int, triangle: Triangle, transpose: Transpose,
                                   unit: Bool, seed: UInt64) -> (stored: [T], effective: [Double]) {
        let values = Naive.uniform(n * n, seed: seed, -0.5, 0.5)
        let diagonal = Naive.uniform(n, seed: seed + 100, 1, 2)
        var stored = [T](repeating: T(555), count: n * ld)
        var dense = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                let inTriangle = triangle == .lower ? j < i : j > i
                if i == j {
                    stored[i * ld + j] = unit ? T(-999) : T(diagonal[i])
                    dense[i * n + j] = unit ? 1 : Double(T(diagonal[i]))
                } else if inTriangle {
                    stored[i * ld + j] = T(values[i * n + j])
                    dense[i * n + j] = Double(T(values[i * n + j]))
                } else {
                    stored[i * ld + j] = T(1e3 + Double(i + j))
                }
            }
        }
        return (stored, transpose == .none ? dense : Naive.transpose(dense, rows: n, columns: n))
    }

    func checkTRSM<T: BLASScalar>(_ type: T.Type, side: Side, triangle: Triangle, transpose: Transpose, unit: Bool,
                                  rows: Int, columns: Int, alpha: Double, pad: Int, seed: UInt64,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let n = side == .left ? rows : columns
        let ldt = n + pad, ldb = columns + pad
        let (t, op) = triangular(type, order: n, ld: ldt, triangle: triangle, transpose: transpose, unit: unit, seed: seed)
        let bv = Naive.uniform(rows * columns, seed: seed + 1).map { Double(T($0)) }
        let sentinel = T(12.125)
        var b = [T](repeating: sentinel, count: rows * ldb)
        for r in 0..<rows { for c in 0..<columns { b[r * ldb + c] = T(bv[r * columns + c]) } }
        let rhs = bv.map { alpha * $0 }
        // Left: op(T) X = αB. Right: X op(T) = αB ⇔ op(T)ᵀ Xᵀ = αBᵀ.
        let expected = side == .left
            ? Naive.solve(op, rhs, n: n, rhs: columns)
            : Naive.transpose(Naive.solve(Naive.transpose(op, rows: n, columns: n),
                                          Naive.transpose(rhs, rows: rows, columns: columns), n: n, rhs: rows),
                              rows: columns, columns: rows)
        t.withUnsafeBufferPointer { tp in
            b.withUnsafeMutableBufferPointer { bp in
                T.trsm(side: side, triangle: triangle, transpose: transpose, unitDiagonal: unit, rows: rows,
                       columns: columns, alpha: T(alpha), triangular: tp.baseAddress!, ldt: ldt,
                       b: bp.baseAddress!, ldb: ldb)
            }
        }
        // Componentwise forward-error bound of a triangular solve (Higham, Thm 8.5): γ_n (|M⁻¹||M||x|)_i, doubled
        // for the Double reference's own rounding. Left: M = op(T) on each column; right: M = op(T)ᵀ on each row.
        let bound: [Double]
        if side == .left {
            let xt = Naive.transpose(expected, rows: rows, columns: columns)
            bound = Naive.transpose((0..<columns).flatMap { c in
                solveBound(op, n: n, x: Array(xt[(c * rows)..<((c + 1) * rows)]), unit: Double(T.ulpOfOne))
            }, rows: columns, columns: rows)
        } else {
            let opT = Naive.transpose(op, rows: n, columns: n)
            bound = (0..<rows).flatMap { r in
                solveBound(opT, n: n, x: Array(expected[(r * columns)..<((r + 1) * columns)]), unit: Double(T.ulpOfOne))
            }
        }
        let what = "\(T.self) trsm \(side) \(triangle) \(transpose) unit=\(unit) \(rows)×\(columns) α=\(alpha)"
        for r in 0..<rows {
            for c in 0..<ldb {
                if c >= columns {
                    XCTAssertEqual(b[r * ldb + c], sentinel, "\(what): padding written", file: file, line: line)
                } else {
                    XCTAssertEqual(Double(b[r * ldb + c]), expected[r * columns + c], accuracy: bound[r * columns + c],
                                   "\(what): X[\(r), \(c)]", file: file, line: line)
                }
            }
        }
    }

    func runTRSM<T: BLASScalar>(_ type: T.Type) {
        var seed: UInt64 = 500
        for side in [Side.left, .right] {
            for triangle in [Triangle.lower, .upper] {
                for transpose in [Transpose.none, .transpose] {
                    for unit in [false, true] {
                        for (rows, columns) in [(4, 3), (1, 5), (6, 1), (5, 5)] {
                            for (alpha, pad) in [(1.0, 0), (-2.5, 2)] {
                                seed += 2
                                checkTRSM(type, side: side, triangle: triangle, transpose: transpose, unit: unit,
                                          rows: rows, columns: columns, alpha: alpha, pad: pad, seed: seed)
                            }
                        }
                    }
                }
            }
        }
    }

    func testTRSMDouble() { runTRSM(Double.self) }
    func testTRSMFloat() { runTRSM(Float.self) }

    func checkTRSV<T: BLASScalar>(_ type: T.Type, triangle: Triangle, transpose: Transpose, order n: Int,
                                  increment: Int, pad: Int, seed: UInt64,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let ld = n + pad
        let (t, op) = triangular(type, order: n, ld: ld, triangle: triangle, transpose: transpose, unit: false, seed: seed)
        let bv = Naive.uniform(n, seed: seed + 1).map { Double(T($0)) }
        let sentinel = T(-3.5)
        var x = [T](repeating: sentinel, count: (n - 1) * increment + 1)
        for i in 0..<n { x[i * increment] = T(bv[i]) }
        let expected = Naive.solve(op, bv, n: n, rhs: 1)
        t.withUnsafeBufferPointer { tp in
            x.withUnsafeMutableBufferPointer { xp in
                T.trsv(triangle: triangle, transpose: transpose, order: n, triangular: tp.baseAddress!, ldt: ld,
                       x: xp.baseAddress!, increment: increment)
            }
        }
        let bound = solveBound(op, n: n, x: expected, unit: Double(T.ulpOfOne))
        for i in 0..<x.count {
            if i % increment != 0 {
                XCTAssertEqual(x[i], sentinel, "trsv: gap \(i) written", file: file, line: line)
            } else {
                XCTAssertEqual(Double(x[i]), expected[i / increment], accuracy: bound[i / increment],
                               "\(T.self) trsv \(triangle) \(transpose) n=\(n) inc=\(increment): x[\(i / increment)]",
                               file: file, line: line)
            }
        }
    }

    func runTRSV<T: BLASScalar>(_ type: T.Type) {
        var seed: UInt64 = 900
        for triangle in [Triangle.lower, .upper] {
            for transpose in [Transpose.none, .transpose] {
                for n in [1, 2, 5, 9] {
                    for (increment, pad) in [(1, 0), (2, 3)] {
                        seed += 2
                        checkTRSV(type, triangle: triangle, transpose: transpose, order: n, increment: increment,
                                  pad: pad, seed: seed)
                    }
                }
            }
        }
    }

    func testTRSVDouble() { runTRSV(Double.self) }
    func testTRSVFloat() { runTRSV(Float.self) }

    /// 2·γ_{n+1}·(|M⁻¹||M||x|)_i plus one rounding of x_i: the componentwise error bound of solving M x = b.
    func solveBound(_ m: [Double], n: Int, x: [Double], unit: Double) -> [Double] {
        var identity = [Double](repeating: 0, count: n * n)
        for i in 0..<n { identity[i * n + i] = 1 }
        let inverse = Naive.solve(m, identity, n: n, rhs: n)
        let mx = Naive.product(m.map(abs), x.map(abs), m: n, k: n, n: 1)
        let cond = Naive.product(inverse.map(abs), mx, m: n, k: n, n: 1)
        let u = unit / 2
        return (0..<n).map { 2 * Double(n + 1) * u * cond[$0] + u * abs(x[$0]) }
    }

    /// A hand-checked 2×2 lower solve: [[2, 0], [1, 4]] x = [4, 10] → x = [2, 2].
    func testTRSVKnownSystem() {
        let t: [Double] = [2, 0, 1, 4]
        var x: [Double] = [4, 10]
        t.withUnsafeBufferPointer { tp in
            x.withUnsafeMutableBufferPointer { xp in
                Double.trsv(triangle: .lower, transpose: .none, order: 2, triangular: tp.baseAddress!, ldt: 2,
                            x: xp.baseAddress!, increment: 1)
            }
        }
        XCTAssertEqual(x, [2, 2])
    }
}
