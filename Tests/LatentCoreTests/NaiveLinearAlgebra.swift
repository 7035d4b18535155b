import LatentCore

/// Brute-force references in Double, written without BLAS: the independent side of every kernel test.
enum Naive {
    /// Uniform values in [lo, hi) from a keyed stream.
    static func uniform(_ count: Int, seed: UInt64, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        var rng = RandomStream(seed: seed, purpose: .sampling)
        return (0..<count).map { _ in lo + (hi - lo) * rng.uniform() }
    }

    /// Dense product of row-major a (m×k) and b (k×n).
    static func product(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for l in 0..<k { s += a[i * k + l] * b[l * n + j] }
                c[i * n + j] = s
            }
        }
        return c
    }

    static func transpose(_ a: [Double], rows: Int, columns: Int) -> [Double] {
        var t = [Double](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = a[r * columns + c] } }
        return t
    }

    /// Solves M X = B (M n×n, B n×r, both row-major) by Gaussian elimination with partial pivoting.
    static func solve(_ m: [Double], _ b: [Double], n: Int, rhs: Int) -> [Double] {
        var a = m, x = b
        for col in 0..<n {
            var pivot = col
            for r in (col + 1)..<max(col + 1, n) where abs(a[r * n + col]) > abs(a[pivot * n + col]) { pivot = r }
            if pivot != col {
                for j in 0..<n { a.swapAt(col * n + j, pivot * n + j) }
                for j in 0..<rhs { x.swapAt(col * rhs + j, pivot * rhs + j) }
            }
            for r in (col + 1)..<max(col + 1, n) {
                let f = a[r * n + col] / a[col * n + col]
                for j in col..<n { a[r * n + j] -= f * a[col * n + j] }
                for j in 0..<rhs { x[r * rhs + j] -= f * x[col * rhs + j] }
            }
        }
        for col in stride(from: n - 1, through: 0, by: -1) {
            for j in 0..<rhs {
                var s = x[col * rhs + j]
                for l in (col + 1)..<max(col + 1, n) { s -= a[col * n + l] * x[l * rhs + j] }
                x[col * rhs + j] = s / a[col * n + col]
            }
        }
        return x
    }

    static func maxAbs(_ a: [Double]) -> Double { a.map(abs).max() ?? 0 }
}
