import LatentCore

/// Element-wise nonlinearities; each backward is written in terms of the forward's output y, so no pre-activation is kept.
public enum Activation: String, Sendable, CaseIterable, Codable {
    /// ELU with α = 1: y = v for v > 0, eᵛ − 1 otherwise (the default for hidden layers).
    case elu
    /// ReLU: y = max(v, 0).
    case relu
    /// The hyperbolic tangent.
    case tanh
    /// y = v: what output layers use, which are linear.
    case identity

    /// y ← act(y + bias) over a rows×columns row-major block, the bias broadcast over rows (fused in one pass);
    /// rows lie `stride` elements apart (default `columns`), so a block of columns of a wider matrix works too.
    @inlinable
    package func forward<T: BLASScalar>(_ y: UnsafeMutablePointer<T>, bias: UnsafePointer<T>, rows: Int, columns: Int,
                                       stride: Int? = nil) {
        for r in 0..<rows {
            let row = y + r * (stride ?? columns)
            switch self {
            case .elu:
                // ELU (α = 1): y = v for v > 0, eᵛ − 1 otherwise.
                for c in 0..<columns {
                    let v = row[c] + bias[c]
                    let negative = T.fastExpMinusOne(min(v, 0))
                    row[c] = v > 0 ? v : negative
                }
            case .relu:
                for c in 0..<columns { row[c] = max(row[c] + bias[c], 0) }
            case .tanh:
                for c in 0..<columns {
                    // tanh(v) = 1 − 2/(e^{2v} + 1), stable for either sign.
                    let v = row[c] + bias[c]
                    let e = T.exp(-2 * abs(v))
                    let t = (1 - e) / (1 + e)
                    row[c] = v >= 0 ? t : -t
                }
            case .identity:
                for c in 0..<columns { row[c] += bias[c] }
            }
        }
    }

    /// g ← g ⊙ act′, with act′ from the forward output y: ELU 1 or y + 1, ReLU 1 or 0, tanh 1 − y², identity 1.
    @inlinable
    package func backward<T: BLASScalar>(output y: UnsafePointer<T>, gradient g: UnsafeMutablePointer<T>, count: Int) {
        switch self {
        case .elu:
            for i in 0..<count {
                let v = y[i], gi = g[i]
                g[i] = v > 0 ? gi : gi * (v + 1)
            }
        case .relu:
            for i in 0..<count { g[i] = y[i] > 0 ? g[i] : 0 }
        case .tanh:
            for i in 0..<count { g[i] *= 1 - y[i] * y[i] }
        case .identity:
            break
        }
    }

    /// g ← (g + h) ⊙ act′: `backward(output:gradient:count:)` on the sum of two partial sums of the gradient, in one
    /// pass (tensor parallelism's `TeamStage.partialBackward`).
    @inlinable
    package func backward<T: BLASScalar>(output y: UnsafePointer<T>, gradient g: UnsafeMutablePointer<T>,
                                        adding h: UnsafePointer<T>, count: Int) {
        switch self {
        case .elu:
            for i in 0..<count {
                let v = y[i], gi = g[i] + h[i]
                g[i] = v > 0 ? gi : gi * (v + 1)
            }
        case .relu:
            for i in 0..<count { g[i] = y[i] > 0 ? g[i] + h[i] : 0 }
        case .tanh:
            for i in 0..<count { g[i] = (g[i] + h[i]) * (1 - y[i] * y[i]) }
        case .identity:
            for i in 0..<count { g[i] += h[i] }
        }
    }

    /// `backward(output:gradient:count:)` on a rows×columns block of a matrix whose rows lie `stride` elements apart.
    @inlinable
    package func backward<T: BLASScalar>(output y: UnsafePointer<T>, gradient g: UnsafeMutablePointer<T>, rows: Int,
                                        columns: Int, stride: Int) {
        guard self != .identity else { return }
        for r in 0..<rows { backward(output: y + r * stride, gradient: g + r * stride, count: columns) }
    }
}
