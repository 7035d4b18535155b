import Foundation

/// Gauss–Hermite quadrature for expectations under N(0, 1): E[f(ε)] ≈ Σ_i w_i f(x_i), exact for polynomials of
/// degree < 2n. Nodes by Newton's method on the orthonormal Hermite recurrence (Golub & Welsch's weights
/// 1/(n ψ_{n−1}(x)²) in the physicists' form), rescaled from the weight e^{−t²} to the standard normal.
struct GaussHermite {
    let nodes: [Double]
    let weights: [Double]

    init(points n: Int) {
        var t = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        let piQuarter = pow(Double.pi, -0.25)
        var z = 0.0
        for i in 0..<((n + 1) / 2) {
            // Initial guesses of Numerical Recipes' gauher, then Newton on the orthonormal polynomials.
            switch i {
            case 0: z = (2 * Double(n) + 1).squareRoot() - 1.85575 * pow(2 * Double(n) + 1, -0.16667)
            case 1: z -= 1.14 * pow(Double(n), 0.426) / z
            case 2: z = 1.86 * z - 0.86 * t[0]
            case 3: z = 1.91 * z - 0.91 * t[1]
            default: z = 2 * z - t[i - 2]
            }
            var derivative = 0.0
            for _ in 0..<100 {
                var p1 = piQuarter, p2 = 0.0
                for j in 1...n {
                    let p3 = p2
                    p2 = p1
                    p1 = z * (2 / Double(j)).squareRoot() * p2 - (Double(j - 1) / Double(j)).squareRoot() * p3
                }
                derivative = (2 * Double(n)).squareRoot() * p2
                let step = p1 / derivative
                z -= step
                if abs(step) <= 1e-15 * max(1, abs(z)) { break }
            }
            t[i] = z
            t[n - 1 - i] = -z
            w[i] = 2 / (derivative * derivative)
            w[n - 1 - i] = w[i]
        }
        nodes = t.map { $0 * 2.0.squareRoot() }
        weights = w.map { $0 / Double.pi.squareRoot() }
    }

    /// E[f(ε)] for ε ~ N(0, I_d) on the tensor-product grid (nᵈ points); f receives the point and its weight.
    func forEachPoint(dimension d: Int, _ body: ([Double], Double) throws -> Void) rethrows {
        var index = [Int](repeating: 0, count: d)
        while true {
            try body(index.map { nodes[$0] }, index.reduce(1) { $0 * weights[$1] })
            var j = 0
            while j < d {
                index[j] += 1
                if index[j] < nodes.count { break }
                index[j] = 0
                j += 1
            }
            if j == d { return }
        }
    }
}
