import LatentCore
import XCTest

#if arch(x86_64) && !os(Windows)
/// The precision in which Double results are checked: 64-bit significands.
typealias WideDouble = Float80
#else
typealias WideDouble = Double
#endif

/// The batched Cholesky factorization and triangular solves (`InterleavedMatrices`) against LAPACKE's `potrf` and
/// CBLAS's `trsm`, lane by lane, on random SPD matrices of orders 1–128 in Float and Double, well conditioned and
/// near singular, and on matrices that are not positive definite. Each result must satisfy the backward-error
/// bound of its algorithm (Higham, Thms 8.5 and 10.3) and be as close to a reference computed in wider precision as
/// the LAPACK/BLAS result is: within a factor 10 of its error, or of 4·n·u·κ where conditioning dominates.
final class BatchedCholeskyTests: XCTestCase {
    static let orders = Array(1...18) + [23, 31, 32, 33, 47, 64, 127, 128]
    let lanes = InterleavedMatrices<Float>.lanes

    /// The lanes checked entry by entry (every lane runs through the kernels): all of them up to order 40, beyond that
    /// a well-conditioned and a near-singular one, which keeps the debug build's wide references quick.
    func checkedLanes(order n: Int) -> [Int] { n <= 40 ? Array(0..<lanes) : [0, lanes - 1] }

    /// κ(Σ) estimated from a Cholesky factor, (max L_ii / min L_ii)²: a lower bound, near the true value for the
    /// near-singular cases, where forward errors of any backward-stable factorization or solve grow like κ·u.
    func conditionEstimate<R: BinaryFloatingPoint>(_ l: [R], order n: Int) -> Double {
        let diagonal = (0..<n).map { Double(l[$0 * n + $0]) }
        return (diagonal.max()! / diagonal.min()!) * (diagonal.max()! / diagonal.min()!)
    }

    // MARK: - Matrices

    /// Σ = B Bᵀ + shift·I (B of order n × rank, uniform), symmetric to the bit, rounded to T and returned in Double.
    func spd<T: BLASScalar>(_: T.Type, order n: Int, rank: Int, shift: Double, seed: UInt64) -> [Double] {
        let b = Naive.uniform(n * rank, seed: seed)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = i == j ? shift : 0
                for t in 0..<rank { s += b[i * rank + t] * b[j * rank + t] }
                a[i * n + j] = Double(T(s))
                a[j * n + i] = a[i * n + j]
            }
        }
        return a
    }

    /// Eight matrices of one order: well conditioned (shift n) on even lanes; on odd lanes, when `nearSingular`, of
    /// rank ⌈n/2⌉ plus a shift of 50·n·u times the largest diagonal entry (condition number about 1/(50u)).
    func group<T: BLASScalar>(_ type: T.Type, order n: Int, nearSingular: Bool, seed: UInt64) -> [[Double]] {
        (0..<lanes).map { q in
            let seed = seed + UInt64(q) * 7
            guard nearSingular, q % 2 == 1, n > 1 else {
                return spd(type, order: n, rank: n, shift: Double(n), seed: seed)
            }
            let rank = (n + 1) / 2
            let scale = spd(type, order: n, rank: rank, shift: 0, seed: seed).enumerated()
                .filter { $0.offset % (n + 1) == 0 }.map(\.element).max()!
            return spd(type, order: n, rank: rank, shift: 50 * Double(n) * Double(T.ulpOfOne) * scale, seed: seed)
        }
    }

    /// Storage for a group whose chunks lie `gap` scalars apart beyond their capacity, the gaps holding a sentinel.
    final class Storage<T: BLASScalar> {
        let pointer: UnsafeMutablePointer<T>
        let count: Int, stride: Int, order: Int
        static var sentinel: T { T(-7.25) }
        init(order: Int, gap: Int) {
            self.order = order
            stride = InterleavedMatrices<T>.chunkCapacity(order: order) + gap
            count = InterleavedMatrices<T>.lanes * stride
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: Self.sentinel, count: count)
        }
        deinit { pointer.deallocate() }
        var matrices: InterleavedMatrices<T> { InterleavedMatrices(order: order, storage: pointer, chunkStride: stride) }
        /// Whether every gap still holds the sentinel.
        var gapsIntact: Bool {
            let used = InterleavedMatrices<T>.chunkCapacity(order: order)
            return (0..<InterleavedMatrices<T>.lanes).allSatisfy { c in
                (used..<stride).allSatisfy { pointer[c * stride + $0] == Self.sentinel }
            }
        }
    }

    /// Packs row-major Double matrices (as T) into a group with gapped chunks.
    func pack<T: BLASScalar>(_ matrices: [[Double]], order n: Int, as _: T.Type) -> Storage<T> {
        let storage = Storage<T>(order: n, gap: 3)
        let flat = matrices.flatMap { $0.map { T($0) } }
        flat.withUnsafeBufferPointer {
            storage.matrices.pack(from: $0.baseAddress!, stride: n * n, ld: n, count: matrices.count)
        }
        return storage
    }

    /// Lane q of a group as row-major Double.
    func unpack<T: BLASScalar>(_ storage: Storage<T>, order n: Int, count: Int) -> [[Double]] {
        var out = [T](repeating: T(99), count: lanes * n * n)
        out.withUnsafeMutableBufferPointer {
            storage.matrices.unpack(into: $0.baseAddress!, stride: n * n, ld: n, count: count)
        }
        return (0..<lanes).map { q in out[(q * n * n)..<((q + 1) * n * n)].map { Double($0) } }
    }

    // MARK: - References

    /// Textbook Cholesky in precision R; nil when a pivot is not positive.
    func wideCholesky<R: BinaryFloatingPoint>(_ a: [Double], order n: Int, _: R.Type) -> [R]? {
        var l = [R](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = R(a[i * n + j])
                for t in 0..<j { s -= l[i * n + t] * l[j * n + t] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        return l
    }

    /// LAPACK's factor of `a` rounded to T, or the leading minor it reports.
    func lapack<T: BLASScalar>(_ a: [Double], order n: Int, _: T.Type) -> (factor: [Double], minor: Int) {
        var m = a.map { T($0) }
        do {
            try m.withUnsafeMutableBufferPointer { try choleskyLower($0.baseAddress!, order: n) }
            return (m.map { Double($0) }, 0)
        } catch let LinearAlgebraError.notPositiveDefinite(_, minor) {
            return ([], minor)
        } catch {
            XCTFail("LAPACK: \(error)")
            return ([], -1)
        }
    }

    func maxDifference<R: BinaryFloatingPoint>(_ a: [Double], _ b: [R]) -> Double {
        zip(a, b).map { abs(Double($0 - Double($1))) }.max() ?? 0
    }

    // MARK: - Factorization

    func checkFactorization<T: BLASScalar, R: BinaryFloatingPoint>(_ type: T.Type, wide: R.Type, order n: Int,
                                                                    nearSingular: Bool, seed: UInt64) {
        let u = Double(T.ulpOfOne) / 2
        let matrices = group(type, order: n, nearSingular: nearSingular, seed: seed)
        let storage = pack(matrices, order: n, as: type)
        let info = storage.matrices.factorCholesky()
        let factors = unpack(storage, order: n, count: lanes)
        XCTAssertTrue(storage.gapsIntact, "\(T.self) order \(n): wrote outside its chunks")
        for q in checkedLanes(order: n) {
            let label = "\(T.self) order \(n) lane \(q)\(nearSingular && q % 2 == 1 ? " (near singular)" : "")"
            let (reference, minor) = lapack(matrices[q], order: n, type)
            XCTAssertEqual(minor, 0, "\(label): the case must be one LAPACK factorizes")
            XCTAssertEqual(info[q], 0, "\(label): reported minor \(info[q])")
            let l = factors[q]
            for i in 0..<n {
                for j in (i + 1)..<max(i + 1, n) where l[i * n + j] != 0 {
                    XCTFail("\(label): upper entry (\(i), \(j)) not zeroed")
                    return
                }
            }
            // Backward error: |L Lᵀ − Σ| ≤ γ_{n+1} |L| |Lᵀ| entry by entry, the product formed in precision R.
            var worst = 0.0
            for i in 0..<n {
                for j in 0...i {
                    var product: R = 0, bound: R = 0
                    for t in 0...j {
                        product += R(l[i * n + t]) * R(l[j * n + t])
                        bound += R(abs(l[i * n + t] * l[j * n + t]))
                    }
                    let gamma = Double(n + 1) * u / (1 - Double(n + 1) * u)
                    let excess = Double(abs(product - R(matrices[q][i * n + j]))) / (gamma * Double(bound))
                    worst = max(worst, excess)
                }
            }
            XCTAssertLessThanOrEqual(worst, 1, "\(label): backward error \(worst) of its bound")
            // Forward error against the wide reference, as small as LAPACK's.
            guard let wide = wideCholesky(matrices[q], order: n, R.self) else {
                XCTFail("\(label): the wide reference failed")
                continue
            }
            let scale = Double(wide.map { abs($0) }.max()!)
            let batchedError = maxDifference(l, wide) / scale, lapackError = maxDifference(reference, wide) / scale
            let floor = 4 * Double(n) * u * conditionEstimate(wide, order: n)
            XCTAssertLessThanOrEqual(batchedError, max(10 * lapackError, floor),
                                     "\(label): error \(batchedError) against LAPACK's \(lapackError)")
        }
    }

    func testFactorizationMatchesLAPACKFloat() {
        for (i, n) in Self.orders.enumerated() {
            checkFactorization(Float.self, wide: Double.self, order: n, nearSingular: false, seed: UInt64(100 + i))
            checkFactorization(Float.self, wide: Double.self, order: n, nearSingular: true, seed: UInt64(200 + i))
        }
    }

    func testFactorizationMatchesLAPACKDouble() {
        for (i, n) in Self.orders.enumerated() {
            checkFactorization(Double.self, wide: WideDouble.self, order: n, nearSingular: false, seed: UInt64(300 + i))
            checkFactorization(Double.self, wide: WideDouble.self, order: n, nearSingular: true, seed: UInt64(400 + i))
        }
    }

    /// Lanes that are not positive definite at a chosen leading minor (the pivot there is −1), or hold a NaN, report
    /// it as LAPACK does; the other lanes of the group factorize as if alone.
    func checkFailures<T: BLASScalar>(_ type: T.Type, order n: Int, seed: UInt64) {
        var matrices = group(type, order: n, nearSingular: false, seed: seed)
        var expected = [Int32](repeating: 0, count: lanes)
        for q in stride(from: 1, to: lanes, by: 2) {
            let p = (q * 5) % n  // the 0-based pivot that fails
            let l = wideCholesky(matrices[q], order: n, Double.self)!
            matrices[q][p * n + p] = Double(T(matrices[q][p * n + p] - l[p * n + p] * l[p * n + p] - 1))
            expected[q] = Int32(p + 1)
            XCTAssertEqual(lapack(matrices[q], order: n, type).minor, p + 1, "\(T.self) order \(n) lane \(q): LAPACK")
        }
        if n >= 3 {
            matrices[lanes - 2][2 * n + 1] = .nan
            expected[lanes - 2] = 3
        }
        let storage = pack(matrices, order: n, as: type)
        let info = storage.matrices.factorCholesky()
        let factors = unpack(storage, order: n, count: lanes)
        for q in 0..<lanes {
            XCTAssertEqual(info[q], expected[q], "\(T.self) order \(n) lane \(q): reported minor")
            guard expected[q] == 0 else { continue }
            let reference = lapack(matrices[q], order: n, type).factor
            let scale = reference.map(abs).max()!
            XCTAssertLessThanOrEqual(zip(factors[q], reference).map { abs($0 - $1) }.max()! / scale,
                                     8 * Double(n) * Double(T.ulpOfOne), "\(T.self) order \(n) lane \(q): factor")
        }
    }

    func testNotPositiveDefiniteLanesAreReportedAndIsolated() {
        for (i, n) in [1, 2, 3, 7, 16, 33, 64].enumerated() {
            checkFailures(Float.self, order: n, seed: UInt64(500 + i))
            checkFailures(Double.self, order: n, seed: UInt64(520 + i))
        }
    }

    /// A partial group: the lanes past `count` are identities and `unpack` writes only `count` matrices.
    func testPartialGroupPacksIdentityAndUnpacksOnlyItsMatrices() {
        let n = 5, count = 3
        let matrices = group(Double.self, order: n, nearSingular: false, seed: 600).prefix(count).map { $0 }
        let storage = pack(matrices, order: n, as: Double.self)
        XCTAssertEqual(storage.matrices.factorCholesky(), InterleavedMatrices<Double>.FactorizationInfo())
        let all = unpack(storage, order: n, count: lanes)
        for q in count..<lanes {
            XCTAssertEqual(all[q], (0..<(n * n)).map { $0 % (n + 1) == 0 ? 1 : 0 }, "lane \(q): identity")
        }
        let some = unpack(storage, order: n, count: count)
        for q in count..<lanes { XCTAssertEqual(some[q], [Double](repeating: 99, count: n * n), "lane \(q)") }
        for q in 0..<count {
            let reference = lapack(matrices[q], order: n, Double.self).factor
            XCTAssertLessThan(zip(some[q], reference).map { abs($0 - $1) }.max()!, 1e-14, "lane \(q)")
        }
    }

    // MARK: - Triangular solves

    /// op(L) as a dense matrix.
    func op(_ l: [Double], order n: Int, _ transpose: Transpose) -> [Double] {
        transpose == .none ? l : Naive.transpose(l, rows: n, columns: n)
    }

    /// op(L) X = B (left) or X op(L) = B (right) by substitution in precision R.
    func wideSolve<R: BinaryFloatingPoint>(_ l: [Double], _ b: [Double], order n: Int, side: Side,
                                           transpose: Transpose, _: R.Type) -> [R] {
        // Right-side systems are left-side ones for the transposes: X op(L) = B ⇔ op(L)ᵀ Xᵀ = Bᵀ.
        let t = side == .left ? op(l, order: n, transpose) : Naive.transpose(op(l, order: n, transpose), rows: n, columns: n)
        let rhs = side == .left ? b : Naive.transpose(b, rows: n, columns: n)
        let lowerSystem = (side == .left) == (transpose == .none)
        var x = [R](repeating: 0, count: n * n)
        for column in 0..<n {
            for step in 0..<n {
                let i = lowerSystem ? step : n - 1 - step
                var s = R(rhs[i * n + column])
                for m in (lowerSystem ? 0..<i : (i + 1)..<n) { s -= R(t[i * n + m]) * x[m * n + column] }
                x[i * n + column] = s / R(t[i * n + i])
            }
        }
        if side == .left { return x }
        var back = [R](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { back[i * n + j] = x[j * n + i] } }
        return back
    }

    /// CBLAS's trsm on lane data rounded to T.
    func cblas<T: BLASScalar>(_ l: [Double], _ b: [Double], order n: Int, side: Side, transpose: Transpose,
                              _: T.Type) -> [Double] {
        let lt = l.map { T($0) }
        var x = b.map { T($0) }
        lt.withUnsafeBufferPointer { lp in
            x.withUnsafeMutableBufferPointer { xp in
                T.trsm(side: side, triangle: .lower, transpose: transpose, unitDiagonal: false, rows: n, columns: n,
                       alpha: 1, triangular: lp.baseAddress!, ldt: n, b: xp.baseAddress!, ldb: n)
            }
        }
        return x.map { Double($0) }
    }

    func checkSolves<T: BLASScalar, R: BinaryFloatingPoint>(_ type: T.Type, wide: R.Type, order n: Int,
                                                             nearSingular: Bool, seed: UInt64) {
        let u = Double(T.ulpOfOne) / 2
        // The factors: LAPACK's, of well-conditioned or near-singular Σ, with garbage above the diagonal.
        let factors = group(type, order: n, nearSingular: nearSingular, seed: seed).map { sigma -> [Double] in
            var l = lapack(sigma, order: n, type).factor
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { l[i * n + j] = 1e3 } }
            return l
        }
        let rightHandSides = (0..<lanes).map { q in Naive.uniform(n * n, seed: seed + 50 + UInt64(q)).map { Double(T($0)) } }
        let factorStorage = pack(factors, order: n, as: type)
        for side in [Side.left, .right] {
            for transpose in [Transpose.none, .transpose] {
                let storage = pack(rightHandSides, order: n, as: type)
                storage.matrices.solve(side: side, transpose: transpose, lower: factorStorage.matrices)
                let solutions = unpack(storage, order: n, count: lanes)
                XCTAssertTrue(storage.gapsIntact && factorStorage.gapsIntact)
                for q in checkedLanes(order: n) {
                    let label = "\(T.self) order \(n) lane \(q) \(side) \(transpose)"
                        + (nearSingular && q % 2 == 1 ? " (ill conditioned)" : "")
                    var l = factors[q]
                    for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { l[i * n + j] = 0 } }
                    let t = op(l, order: n, transpose), x = solutions[q], b = rightHandSides[q]
                    // Residual: |B − op(L) X| ≤ γ_{n+1} |op(L)| |X| (left) or |X| |op(L)| (right), entry by entry.
                    var worst = 0.0
                    for i in 0..<n {
                        for j in 0..<n {
                            var product: R = 0, bound: R = 0
                            for m in 0..<n {
                                let term = side == .left ? t[i * n + m] * x[m * n + j] : x[i * n + m] * t[m * n + j]
                                let wideTerm = side == .left ? R(t[i * n + m]) * R(x[m * n + j])
                                    : R(x[i * n + m]) * R(t[m * n + j])
                                product += wideTerm
                                bound += R(abs(term))
                            }
                            let gamma = Double(n + 1) * u / (1 - Double(n + 1) * u)
                            let excess = Double(abs(R(b[i * n + j]) - product)) / (gamma * Double(bound))
                            worst = max(worst, excess.isNaN ? .infinity : excess)
                        }
                    }
                    XCTAssertLessThanOrEqual(worst, 1, "\(label): residual \(worst) of its bound")
                    let reference = wideSolve(l, b, order: n, side: side, transpose: transpose, R.self)
                    let scale = Double(reference.map { abs($0) }.max()!)
                    let blas = cblas(factors[q], b, order: n, side: side, transpose: transpose, type)
                    let batchedError = maxDifference(x, reference) / scale
                    let blasError = maxDifference(blas, reference) / scale
                    // κ(L) ≤ κ(Σ) bounds the solve's forward error as κ(Σ) bounds the factor's.
                    let floor = 4 * Double(n) * u * conditionEstimate(l, order: n)
                    XCTAssertLessThanOrEqual(batchedError, max(10 * blasError, floor),
                                             "\(label): error \(batchedError) against CBLAS's \(blasError)")
                }
            }
        }
    }

    /// The solves' orders: those of the factorization but 127 (the debug build's wide references cost n³ per lane).
    static let solveOrders = orders.filter { $0 != 127 }

    func testSolvesMatchCBLASFloat() {
        for (i, n) in Self.solveOrders.enumerated() {
            checkSolves(Float.self, wide: Double.self, order: n, nearSingular: false, seed: UInt64(700 + i))
            checkSolves(Float.self, wide: Double.self, order: n, nearSingular: true, seed: UInt64(800 + i))
        }
    }

    func testSolvesMatchCBLASDouble() {
        for (i, n) in Self.solveOrders.enumerated() {
            checkSolves(Double.self, wide: WideDouble.self, order: n, nearSingular: false, seed: UInt64(900 + i))
            checkSolves(Double.self, wide: WideDouble.self, order: n, nearSingular: true, seed: UInt64(1000 + i))
        }
    }
}
