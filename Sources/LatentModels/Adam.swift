import LatentCore

/// Adam with bias correction (Kingma & Ba), over the model's flat parameter and gradient buffers, PyTorch's form:
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
@usableFromInline package final class Adam<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package var learningRate: Double
    @usableFromInline package let beta1: Double, beta2: Double, epsilon: Double
    @usableFromInline package private(set) var step = 0
    @usableFromInline package let firstMoment: Buffer<T>
    @usableFromInline package let secondMoment: Buffer<T>

    @usableFromInline package init(count: Int, learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        firstMoment = Buffer(count: count)
        secondMoment = Buffer(count: count)
    }

    /// Advances the step counter; call once per step before `update(range:)` on every part.
    @usableFromInline package func beginStep() { step += 1 }

    /// Restores the step counter from a checkpoint.
    @usableFromInline package func restore(step: Int) { self.step = step }

    /// Updates parameters in `range` with the gradient `g` (+ `g2` when given: the reduction of two workers'
    /// buffers fused into the update, so the summed gradient is never written). Ranges of one step may run in parallel.
    /// With `zeroingGradients` the gradient buffers are cleared while their lines are in cache, so the next step can
    /// accumulate into them.
    @inlinable
    package func update(parameters p: UnsafeMutablePointer<T>, gradients g: UnsafeMutablePointer<T>,
                       plus g2: UnsafeMutablePointer<T>? = nil, range: Range<Int>, zeroingGradients: Bool = false) {
        let start = range.lowerBound
        update(start: start, count: range.count, parameters: p, gradients: g + start, plus: g2.map { $0 + start },
               zeroingGradients: zeroingGradients)
    }

    /// Updates the parameters in `range` from a gradient held apart from the flat buffer: `block[i]` is the
    /// gradient of parameter `range.lowerBound + i`. The trainer forms each block of dW in a small per-worker
    /// buffer that stays in cache, so no model-sized gradient is written to and read back from memory.
    @inlinable
    package func update(parameters p: UnsafeMutablePointer<T>, range: Range<Int>, blockGradient block: UnsafePointer<T>) {
        update(start: range.lowerBound, count: range.count, parameters: p, gradients: UnsafeMutablePointer(mutating: block),
               plus: nil, zeroingGradients: false)
    }

    /// The update of `count` parameters from `start`, whose gradients are `g[0..<count]` (+ `g2`).
    ///
    /// Eight lanes at a time through `SIMD8` and `fastSquareRoot` (libm's scalar square root does not vectorize).
    @inlinable
    func update(start: Int, count: Int, parameters: UnsafeMutablePointer<T>, gradients g: UnsafeMutablePointer<T>,
                plus g2: UnsafeMutablePointer<T>?, zeroingGradients: Bool) {
        let t = Double(step)
        let stepSize = T(learningRate / (1 - integerPower(beta1, t)))
        let correction2 = T(1 / (1 - integerPower(beta2, t)).squareRoot())
        let b1 = T(beta1), b2 = T(beta2), eps = T(epsilon)
        let p = parameters + start, m = firstMoment.pointer + start, v = secondMoment.pointer + start
        var i = 0
        while i + 8 <= count {
            var gi = load(g + i)
            if let g2 { gi += load(g2 + i) }
            if zeroingGradients {
                store(.zero, g + i)
                if let g2 { store(.zero, g2 + i) }
            }
            let mi = b1 * load(m + i) + (1 - b1) * gi
            let vi = b2 * load(v + i) + (1 - b2) * gi * gi
            store(mi, m + i)
            store(vi, v + i)
            store(load(p + i) - stepSize * mi / (T.fastSquareRoot(vi) * correction2 + eps), p + i)
            i += 8
        }
        while i < count {
            let gi = g[i] + (g2?[i] ?? 0)
            if zeroingGradients {
                g[i] = 0
                g2?[i] = 0
            }
            let mi = b1 * m[i] + (1 - b1) * gi
            let vi = b2 * v[i] + (1 - b2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= stepSize * mi / (vi.squareRoot() * correction2 + eps)
            i += 1
        }
    }

    @inlinable @inline(__always)
    func load(_ x: UnsafePointer<T>) -> SIMD8<T> {
        UnsafeRawPointer(x).loadUnaligned(as: SIMD8<T>.self)
    }

    @inlinable @inline(__always)
    func load(_ x: UnsafeMutablePointer<T>) -> SIMD8<T> { load(UnsafePointer(x)) }

    @inlinable @inline(__always)
    func store(_ value: SIMD8<T>, _ x: UnsafeMutablePointer<T>) {
        UnsafeMutableRawPointer(x).storeBytes(of: value, as: SIMD8<T>.self)
    }
}

/// xⁿ by repeated squaring, for the bias corrections (n is a step count).
@inlinable func integerPower(_ x: Double, _ y: Double) -> Double {
    var result = 1.0, base = x, n = Int(y)
    while n > 0 {
        if n & 1 == 1 { result *= base }
        base *= base
        n >>= 1
    }
    return result
}
