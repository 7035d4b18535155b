import LatentCore

/// Replays exactly the GEMMs of one training step, the way the trainer runs them (same workers, rows per worker,
/// operands and BLAS threads), and nothing else: its time over the step's time is how close the step is to the
/// BLAS limit (the benchmark's efficiency column).
public final class GEMMReplay: @unchecked Sendable {
    let trainer: Trainer
    /// Weight-gradient targets of the replay, one per worker (the trainer's own buffers stay untouched).
    let gradients: [Buffer<Float>]
    /// Alternates ±1 so that repeated accumulation (β = 1, as in the step) keeps the scratch values bounded.
    var sign: Float = 1

    public init(trainer: Trainer) {
        self.trainer = trainer
        gradients = (0..<trainer.workers).map { _ in Buffer(count: trainer.model.parameterCount) }
    }

    /// Runs the forward and backward GEMMs of one step of `rows` examples (the trainer's batch size by default).
    public func run(rows: Int? = nil) {
        let batch = rows ?? trainer.batchSize
        let model = trainer.model
        let samples = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        if BLASThreads.current != trainer.blasThreads { BLASThreads.set(trainer.blasThreads) }
        sign = -sign
        let alpha = sign
        trainer.pool.run { w in
            let n = Parallel.slice(batch, parts: trainer.workers, part: w).count
            guard n > 0 else { return }
            let ws = trainer.workspaces[w]
            let g = gradients[w].pointer
            GEMMReplay.forward(model.encoder, p, input: ws.x.pointer, rows: n, ws.encoder)
            GEMMReplay.forward(model.decoder, p, input: ws.z.pointer, rows: n * samples, ws.decoder)
            GEMMReplay.backward(model.decoder, p, g, alpha: alpha, input: ws.z.pointer, rows: n * samples, ws.decoder,
                                inputGradient: ws.dz.pointer)
            GEMMReplay.backward(model.encoder, p, g, alpha: alpha, input: ws.x.pointer, rows: n, ws.encoder,
                                inputGradient: nil)
        }
    }

    static func forward(_ mlp: MLP, _ p: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                        _ ws: MLPWorkspace<Float>) {
        var x = input
        for (i, layer) in mlp.layers.enumerated() {
            Float.gemm(.none, .transpose, rows: rows, columns: layer.outputs, inner: layer.inputs, alpha: 1, a: x,
                       lda: layer.inputs, b: p + layer.weight.offset, ldb: layer.inputs, beta: 0,
                       c: ws.outputs[i].pointer, ldc: layer.outputs)
            x = UnsafePointer(ws.outputs[i].pointer)
        }
    }

    static func backward(_ mlp: MLP, _ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, alpha: Float,
                         input: UnsafePointer<Float>, rows: Int, _ ws: MLPWorkspace<Float>,
                         inputGradient: UnsafeMutablePointer<Float>?) {
        for i in stride(from: mlp.layers.count - 1, through: 0, by: -1) {
            let layer = mlp.layers[i]
            let x = i == 0 ? input : UnsafePointer(ws.outputs[i - 1].pointer)
            let dy = UnsafePointer(ws.gradients[i].pointer)
            Float.gemm(.transpose, .none, rows: layer.outputs, columns: layer.inputs, inner: rows, alpha: alpha, a: dy,
                       lda: layer.outputs, b: x, ldb: layer.inputs, beta: 1, c: g + layer.weight.offset,
                       ldc: layer.inputs)
            if let dx = i == 0 ? inputGradient : ws.gradients[i - 1].pointer {
                Float.gemm(.none, .none, rows: rows, columns: layer.inputs, inner: layer.outputs, alpha: 1, a: dy,
                           lda: layer.outputs, b: p + layer.weight.offset, ldb: layer.inputs, beta: 0, c: dx,
                           ldc: layer.inputs)
            }
        }
    }
}
