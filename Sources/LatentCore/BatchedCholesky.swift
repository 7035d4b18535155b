/// Where the dense posterior families switch from one LAPACK/BLAS call per matrix to the batched kernels below.
@usableFromInline package enum BatchedCholesky {
    /// The smallest order factorized and solved in groups of `InterleavedMatrices.lanes`: below it the per-matrix
    /// `potrf` and `trsm` calls are cheap enough, above it their per-call overhead dominates (docs/PERFORMANCE.md).
    @usableFromInline package static let crossoverOrder = 16
}

// Cholesky factorization and triangular solves of eight matrices at once, one per SIMD lane: the same arithmetic as
// LAPACK's unblocked `potf2` and BLAS's `trsm`, in another order of summation. They are tested against LAPACKE and
// CBLAS (BatchedCholeskyTests).
extension InterleavedMatrices {
    /// Per lane: 0, or the order of the first leading minor that is not positive definite (LAPACK's `info`).
    @usableFromInline package typealias FactorizationInfo = SIMD8<Int32>

    /// Σ = L Lᵀ in place of every lane's lower triangle (its strictly upper triangle is ignored, then zeroed). A lane
    /// whose pivot is not positive (or NaN) reports its order and holds garbage; the other lanes are unaffected.
    @inlinable
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    package func factorCholesky() -> FactorizationInfo {
        let n = order, w = Self.lanes
        var failed = SIMD8<T>(repeating: 0)
        // The reciprocals of the pivots wait in the strictly upper triangle, at (j, n − 1) for j < n − 1.
        @inline(__always) func reciprocal(_ j: Int) -> SIMD8<T> { load(row(j) + (n - 1) * w) }
        for i in 0..<n {
            let ri = row(i)
            var j = 0
            // Four entries of row i at a time share the loads of row i; the terms among the four come after.
            while j + 4 <= i {
                let r0 = row(j), r1 = row(j + 1), r2 = row(j + 2), r3 = row(j + 3)
                var a0 = SIMD8<T>(), a1 = SIMD8<T>(), a2 = SIMD8<T>(), a3 = SIMD8<T>()
                for l in 0..<j {
                    let x = load(ri + l * w)
                    a0 += x * load(r0 + l * w)
                    a1 += x * load(r1 + l * w)
                    a2 += x * load(r2 + l * w)
                    a3 += x * load(r3 + l * w)
                }
                let v0 = (load(ri + j * w) - a0) * reciprocal(j)
                store(v0, ri + j * w)
                a1 += v0 * load(r1 + j * w)
                let v1 = (load(ri + (j + 1) * w) - a1) * reciprocal(j + 1)
                store(v1, ri + (j + 1) * w)
                a2 += v0 * load(r2 + j * w) + v1 * load(r2 + (j + 1) * w)
                let v2 = (load(ri + (j + 2) * w) - a2) * reciprocal(j + 2)
                store(v2, ri + (j + 2) * w)
                a3 += v0 * load(r3 + j * w) + v1 * load(r3 + (j + 1) * w) + v2 * load(r3 + (j + 2) * w)
                store((load(ri + (j + 3) * w) - a3) * reciprocal(j + 3), ri + (j + 3) * w)
                j += 4
            }
            while j < i {
                let rj = row(j)
                var a = SIMD8<T>()
                for l in 0..<j { a += load(ri + l * w) * load(rj + l * w) }
                store((load(ri + j * w) - a) * reciprocal(j), ri + j * w)
                j += 1
            }
            var s0 = SIMD8<T>(), s1 = SIMD8<T>()
            var l = 0
            while l + 2 <= i {
                let x0 = load(ri + l * w), x1 = load(ri + (l + 1) * w)
                s0 += x0 * x0
                s1 += x1 * x1
                l += 2
            }
            if l < i {
                let x = load(ri + l * w)
                s0 += x * x
            }
            var pivot = load(ri + i * w) - (s0 + s1)
            let bad = .!(pivot .> 0)
            failed.replace(with: T(i + 1), where: bad .& (failed .== 0))
            pivot.replace(with: 1, where: bad)
            let diagonal = T.fastSquareRoot(pivot)
            store(diagonal, ri + i * w)
            if i < n - 1 { store(1 / diagonal, ri + (n - 1) * w) }
        }
        for i in 0..<n {
            let ri = row(i)
            for j in (i + 1)..<max(i + 1, n) { store(SIMD8<T>(), ri + j * w) }
        }
        var info = FactorizationInfo()
        for q in 0..<w { info[q] = Int32(failed[q]) }
        return info
    }

    /// Solves op(L) X = B (side left) or X op(L) = B (side right) in place of these matrices, B, lane by lane; L is
    /// the lower triangle of `factor` (its strictly upper triangle is not read) with a nonzero diagonal.
    @inlinable
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    package func solve(side: Side, transpose: Transpose, lower factor: InterleavedMatrices<T>) {
        precondition(factor.order == order, "the factor and the right-hand sides have one order")
        switch (side, transpose) {
        case (.left, .none): solveLeft(factor, forward: true)
        case (.left, .transpose): solveLeft(factor, forward: false)
        case (.right, .none): solveRight(factor, forward: false)
        case (.right, .transpose): solveRight(factor, forward: true)
        }
    }

    /// L X = B (forward: X_i = (B_i − Σ_{l<i} L_il X_l) / L_ii) or Lᵀ X = B (backward: the sum over l > i of
    /// L_li X_l), row by row of X, four columns at a time.
    @inlinable
    func solveLeft(_ factor: InterleavedMatrices<T>, forward: Bool) {
        let n = order, w = Self.lanes
        for step in 0..<n {
            let i = forward ? step : n - 1 - step
            let xi = row(i)
            let inverse = 1 / load(factor.row(i) + i * w)
            let terms = forward ? 0..<i : (i + 1)..<n
            var c = 0
            while c < n {
                let width = min(4, n - c)
                let at = xi + c * w
                var a0 = load(at), a1 = SIMD8<T>(), a2 = SIMD8<T>(), a3 = SIMD8<T>()
                if width == 4 {
                    a1 = load(at + w)
                    a2 = load(at + 2 * w)
                    a3 = load(at + 3 * w)
                    for l in terms {
                        let f = load(forward ? factor.row(i) + l * w : factor.row(l) + i * w)
                        let xl = row(l) + c * w
                        a0 -= f * load(xl)
                        a1 -= f * load(xl + w)
                        a2 -= f * load(xl + 2 * w)
                        a3 -= f * load(xl + 3 * w)
                    }
                    store(a1 * inverse, at + w)
                    store(a2 * inverse, at + 2 * w)
                    store(a3 * inverse, at + 3 * w)
                    store(a0 * inverse, at)
                    c += 4
                } else {
                    for l in terms {
                        let f = load(forward ? factor.row(i) + l * w : factor.row(l) + i * w)
                        a0 -= f * load(row(l) + c * w)
                    }
                    store(a0 * inverse, at)
                    c += 1
                }
            }
        }
    }

    /// X Lᵀ = B (forward: x_j = (b_j − Σ_{l<j} L_jl x_l) / L_jj) or X L = B (backward: the sum over l > j of
    /// x_l L_lj), four rows of X at a time.
    @inlinable
    func solveRight(_ factor: InterleavedMatrices<T>, forward: Bool) {
        let n = order, w = Self.lanes
        var r = 0
        while r < n {
            let count = min(4, n - r)
            let x0 = row(r), x1 = row(r + min(1, count - 1)), x2 = row(r + min(2, count - 1)),
                x3 = row(r + min(3, count - 1))
            for step in 0..<n {
                let j = forward ? step : n - 1 - step
                let terms = forward ? 0..<j : (j + 1)..<n
                var a0 = load(x0 + j * w), a1 = load(x1 + j * w), a2 = load(x2 + j * w), a3 = load(x3 + j * w)
                for l in terms {
                    let f = load(forward ? factor.row(j) + l * w : factor.row(l) + j * w)
                    a0 -= load(x0 + l * w) * f
                    a1 -= load(x1 + l * w) * f
                    a2 -= load(x2 + l * w) * f
                    a3 -= load(x3 + l * w) * f
                }
                let inverse = 1 / load(factor.row(j) + j * w)
                // Rows past `count` alias the last real row and compute its values again.
                store(a3 * inverse, x3 + j * w)
                store(a2 * inverse, x2 + j * w)
                store(a1 * inverse, x1 + j * w)
                store(a0 * inverse, x0 + j * w)
            }
            r += count
        }
    }
}
