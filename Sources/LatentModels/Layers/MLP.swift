import LatentCore

/// A stack of Linear layers with one hidden activation and a linear output layer.
@usableFromInline package struct MLP: Sendable {
    @usableFromInline package let layers: [Linear]
    @usableFromInline package let hiddenActivation: Activation
    @usableFromInline package var inputs: Int { layers.first!.inputs }
    @usableFromInline package var outputs: Int { layers.last!.outputs }
    @usableFromInline package var widths: [Int] { [inputs] + layers.map(\.outputs) }

    /// Reserves the layers' parameters in `store` under `name.0`, `name.1`, ….
    @usableFromInline package init(widths: [Int], activation: Activation, name: String, store: ParameterStore<some BLASScalar>) {
        precondition(widths.count >= 2, "MLP needs at least an input and an output width")
        layers = (0..<(widths.count - 1)).map {
            Linear(inputs: widths[$0], outputs: widths[$0 + 1], name: "\(name).\($0)", store: store)
        }
        hiddenActivation = activation
    }

    @inlinable package func activation(of layer: Int) -> Activation {
        layer == layers.count - 1 ? .identity : hiddenActivation
    }

    /// Runs the batch through every layer; each layer's output lands in `workspace.outputs[layer]`.
    @inlinable
    package func forward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, input x: UnsafePointer<T>, rows: Int, workspace ws: MLPWorkspace<T>
    ) {
        var input = x
        for (i, layer) in layers.enumerated() {
            let y = ws.outputs[i].pointer
            layer.forward(parameters: p, input: input, rows: rows, output: y)
            activation(of: i).forward(y, bias: p + layer.bias.offset, rows: rows, columns: layer.outputs)
            input = UnsafePointer(y)
        }
    }

    /// Backward from `workspace.gradients.last` (dLoss/dOutput, filled by the caller) to the parameters and, if asked, dx.
    /// Afterwards `workspace.gradients[i]` holds the gradient of layer i's pre-activation, from which
    /// `Linear.accumulateWeightGradients` forms dW when the workspace defers it.
    @inlinable
    package func backward<T: BLASScalar>(
        parameters p: UnsafePointer<T>, gradients g: UnsafeMutablePointer<T>, input x: UnsafePointer<T>, rows: Int,
        workspace ws: MLPWorkspace<T>, inputGradient dx: UnsafeMutablePointer<T>?, accumulate: Bool
    ) {
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[i]
            let dy = ws.gradients[i].pointer
            activation(of: i).backward(output: ws.outputs[i].pointer, gradient: dy, count: rows * layer.outputs)
            let input = i == 0 ? x : UnsafePointer(ws.outputs[i - 1].pointer)
            let dInput = i == 0 ? dx : ws.gradients[i - 1].pointer
            layer.backward(parameters: p, gradients: g, input: input, outputGradient: dy, rows: rows,
                           inputGradient: dInput, accumulate: accumulate, weightGradients: !ws.defersWeightGradients)
        }
    }

    /// FLOPs of one forward pass (MATH.md §8).
    @usableFromInline package func forwardFLOPs(rows: Int) -> Double { layers.reduce(0) { $0 + $1.forwardFLOPs(rows: rows) } }
}

/// Per-layer output and gradient buffers of one MLP for up to `capacity` rows, allocated once and reused.
@usableFromInline package final class MLPWorkspace<T: BLASScalar>: @unchecked Sendable {
    @usableFromInline package let capacity: Int
    @usableFromInline package let outputs: [Buffer<T>]
    @usableFromInline package let gradients: [Buffer<T>]
    /// When set, `backward` computes only the input gradients and leaves dW and db to the caller (the data-parallel
    /// trainer forms each block of dW from every worker's rows at once, so no per-worker copy needs summing).
    @usableFromInline package var defersWeightGradients = false

    @usableFromInline package init(_ mlp: MLP, capacity: Int) {
        self.capacity = capacity
        outputs = mlp.layers.map { Buffer(count: capacity * $0.outputs) }
        gradients = mlp.layers.map { Buffer(count: capacity * $0.outputs) }
    }

    /// Rows `rows` of `shared`'s buffers: a view of the same memory (one block of the tensor-parallel batch).
    @usableFromInline package init(viewOf shared: MLPWorkspace<T>, _ mlp: MLP, rows: Range<Int>) {
        capacity = rows.count
        outputs = zip(mlp.layers, shared.outputs).map {
            Buffer(viewOf: $1, offset: rows.lowerBound * $0.outputs, count: rows.count * $0.outputs)
        }
        gradients = zip(mlp.layers, shared.gradients).map {
            Buffer(viewOf: $1, offset: rows.lowerBound * $0.outputs, count: rows.count * $0.outputs)
        }
    }

    /// The last layer's output (rows × outputs).
    @usableFromInline package var output: UnsafeMutablePointer<T> { outputs.last!.pointer }
    /// Where the caller writes dLoss/dOutput before `backward`.
    @usableFromInline package var outputGradient: UnsafeMutablePointer<T> { gradients.last!.pointer }
}
