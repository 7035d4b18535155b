import LatentCore

/// A fully connected layer y = x Wᵀ + b on a row-major batch x (rows × inputs), W stored outputs × inputs.
@usableFromInline package struct Linear: Sendable {
    @usableFromInline package let inputs: Int
    @usableFromInline package let outputs: Int
    @usableFromInline package let weight: ParameterView
    @usableFromInline package let bias: ParameterView

    @usableFromInline package init(inputs: Int, outputs: Int, name: String, store: ParameterStore<some BLASScalar>) {
        self.inputs = inputs
        self.outputs = outputs
        weight = store.reserve(name + ".weight", count: outputs * inputs)
        bias = store.reserve(name + ".bias", count: outputs)
    }

    /// y (rows × outputs) ← x Wᵀ (one GEMM); the bias is added by the activation pass that follows.
    @inlinable
    package func forward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, input x: UnsafePointer<T>, rows: Int, output y: UnsafeMutablePointer<T>
    ) {
        T.gemm(.none, .transpose, rows: rows, columns: outputs, inner: inputs, alpha: 1,
               a: x, lda: inputs, b: p + weight.offset, ldb: inputs, beta: 0, c: y, ldc: outputs)
    }

    /// Given dy (rows × outputs, gradient of the pre-activation): dW (+)= dyᵀx, db (+)= Σ_rows dy, and dx = dy W if asked.
    /// With `weightGradients: false` only dx is computed (the trainer forms dW later from every worker's dy).
    @inlinable
    package func backward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>, input x: UnsafePointer<T>,
        outputGradient dy: UnsafePointer<T>, rows: Int, inputGradient dx: UnsafeMutablePointer<T>?, accumulate: Bool,
        weightGradients: Bool = true
    ) {
        if weightGradients {
            accumulateWeightGradients(g, input: x, outputGradient: dy, rows: rows, outputRange: 0..<outputs,
                                      accumulate: accumulate)
        }
        if let dx { inputGradient(parameters: p, outputGradient: dy, rows: rows, into: dx) }
    }

    /// dx (rows × inputs) ← dy W (one GEMM).
    @inlinable
    package func inputGradient<T: BLASScalar>(
        parameters p: UnsafePointer<T>, outputGradient dy: UnsafePointer<T>, rows: Int, into dx: UnsafeMutablePointer<T>
    ) {
        T.gemm(.none, .none, rows: rows, columns: inputs, inner: outputs, alpha: 1,
               a: dy, lda: outputs, b: p + weight.offset, ldb: inputs, beta: 0, c: dx, ldc: inputs)
    }

    /// dW[o, :] (+)= Σ_rows dy[:, o] x and db[o] (+)= Σ_rows dy[:, o] for the outputs o in `outputRange` only, so
    /// that workers can each form a disjoint block of rows of dW (contiguous, as W is stored outputs × inputs).
    @inlinable
    package func accumulateWeightGradients<T: BLASScalar>(
        _ g: UnsafeMutablePointer<T>, input x: UnsafePointer<T>, outputGradient dy: UnsafePointer<T>, rows: Int,
        outputRange range: Range<Int>, accumulate: Bool
    ) {
        weightGradients(input: x, outputGradient: dy, rows: rows, outputRange: range, accumulate: accumulate,
                        weights: g + weight.offset + range.lowerBound * inputs, bias: g + bias.offset + range.lowerBound)
    }

    /// The block of rows `outputRange` of dW (range.count × inputs, row-major) into `weights` and of db into `bias`,
    /// wherever those live: summed into them when `accumulate`, else overwriting them.
    @inlinable
    package func weightGradients<T: BLASScalar>(
        input x: UnsafePointer<T>, outputGradient dy: UnsafePointer<T>, rows: Int, outputRange range: Range<Int>,
        accumulate: Bool, weights dW: UnsafeMutablePointer<T>, bias db: UnsafeMutablePointer<T>
    ) {
        guard !range.isEmpty else { return }
        weightProduct(input: x, outputGradient: dy, rows: rows, outputRange: range, accumulate: accumulate,
                      weights: dW)
        ElementWise.columnSums(dy + range.lowerBound, rows: rows, columns: range.count, stride: outputs,
                               into: db, accumulate: accumulate)
    }

    /// The GEMM of `weightGradients` alone, dW[range] (+)= dy[:, range]ᵀ x (`GEMMReplay` times it).
    @inlinable
    package func weightProduct<T: BLASScalar>(
        input x: UnsafePointer<T>, outputGradient dy: UnsafePointer<T>, rows: Int, outputRange range: Range<Int>,
        accumulate: Bool, weights dW: UnsafeMutablePointer<T>
    ) {
        T.gemm(.transpose, .none, rows: range.count, columns: inputs, inner: rows, alpha: 1,
               a: dy + range.lowerBound, lda: outputs, b: x, ldb: inputs, beta: accumulate ? 1 : 0,
               c: dW, ldc: inputs)
    }

    /// Multiply-adds of one forward pass over `rows` examples (the backward costs about twice as much).
    @usableFromInline package func forwardFLOPs(rows: Int) -> Double { 2 * Double(rows) * Double(inputs) * Double(outputs) }
}
