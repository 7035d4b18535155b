/// Numerically stable scalar functions and the element-wise kernels built from them.
@usableFromInline package enum ElementWise {
    /// softplus(a) = log(1 + eᵃ) = max(a, 0) + log1p(e^−|a|), exact for large |a| (MATH.md §1).
    @inlinable @inline(__always)
    package static func softplus<T: BLASScalar>(_ a: T) -> T {
        let e = T.exp(-abs(a))
        return max(a, 0) + T.log1p(e)
    }

    /// sigmoid(a) = 1 / (1 + e^−a), evaluated without overflow for either sign.
    @inlinable @inline(__always)
    package static func sigmoid<T: BLASScalar>(_ a: T) -> T {
        let e = T.exp(-abs(a))
        return a >= 0 ? 1 / (1 + e) : e / (1 + e)
    }

    /// log Σᵢ exp(xᵢ), shifted by the maximum so that no term overflows; −∞ for an empty or all −∞ input.
    @inlinable
    package static func logSumExp<T: BLASScalar>(_ x: UnsafePointer<T>, count: Int, stride: Int = 1) -> T {
        guard count > 0 else { return -T.infinity }
        var m = -T.infinity
        for i in 0..<count { m = max(m, x[i * stride]) }
        if m == -T.infinity || !m.isFinite { return m }
        var s: T = 0
        for i in 0..<count { s += T.exp(x[i * stride] - m) }
        return m + T.log(s)
    }

    /// Array convenience for `logSumExp(_:count:stride:)`.
    @inlinable
    package static func logSumExp<T: BLASScalar>(_ x: [T]) -> T {
        x.withUnsafeBufferPointer { logSumExp($0.baseAddress!, count: $0.count) }
    }

    /// y ← y + x over `count` elements.
    @inlinable
    package static func add<T: BLASScalar>(_ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count: Int) {
        for i in 0..<count { y[i] += x[i] }
    }

    /// y ← α·y over `count` elements.
    @inlinable
    package static func scale<T: BLASScalar>(_ y: UnsafeMutablePointer<T>, by alpha: T, count: Int) {
        for i in 0..<count { y[i] *= alpha }
    }

    /// Sums the columns of a row-major rows×columns matrix (rows `stride` apart, `columns` by default) into `out`
    /// (β = 0 overwrites, β = 1 accumulates).
    @inlinable
    package static func columnSums<T: BLASScalar>(
        _ m: UnsafePointer<T>, rows: Int, columns: Int, stride: Int? = nil, into out: UnsafeMutablePointer<T>,
        accumulate: Bool
    ) {
        if !accumulate { out.update(repeating: 0, count: columns) }
        let stride = stride ?? columns
        for r in 0..<rows {
            let row = m + r * stride
            for c in 0..<columns { out[c] += row[c] }
        }
    }
}
