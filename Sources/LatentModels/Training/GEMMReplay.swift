import LatentCore

/// Replays exactly the GEMMs of one training step, the way the trainer runs them (same workers, rows per worker,
/// operands and BLAS threads), and nothing else: its time over the step's time is how close the step is to the
/// BLAS limit (the benchmark's efficiency column).
public final class GEMMReplay: @unchecked Sendable {
    let trainer: Trainer

    /// Replays `trainer`'s GEMMs into its own workspaces and block buffers (scratch between steps).
    public init(trainer: Trainer) {
        self.trainer = trainer
    }

    /// Runs the GEMMs of one step of `rows` examples (the trainer's batch size by default) in the trainer's two
    /// regions: the forward and input-gradient GEMMs of each slice from region 1's queue, then the blocks of dW from
    /// region 2's queue; with tensor parallelism, each worker's share of the team's GEMMs.
    public func run(rows: Int? = nil) {
        let batch = rows ?? trainer.batchSize
        if BLASThreads.current != trainer.blasThreads { BLASThreads.set(trainer.blasThreads) }
        if let team = trainer.team { return runAsTeam(team, batch: batch) }
        let model = trainer.model
        let samples = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        trainer.nextSlice.store(0, ordering: .relaxed)
        trainer.pool.run { _ in
            trainer.forEachSlice { w in
                let n = Parallel.slice(batch, parts: trainer.workers, part: w).count
                guard n > 0 else { return }
                let ws = trainer.workspaces[w]
                GEMMReplay.forward(model.encoder, p, input: ws.x.pointer, rows: n, ws.encoder)
                GEMMReplay.forward(model.decoder, p, input: ws.z.pointer, rows: n * samples, ws.decoder)
                GEMMReplay.inputGradients(model.decoder, p, rows: n * samples, ws.decoder,
                                          inputGradient: ws.dz.pointer)
                GEMMReplay.inputGradients(model.encoder, p, rows: n, ws.encoder, inputGradient: nil)
            }
        }
        trainer.nextUpdateBlock.store(0, ordering: .relaxed)
        trainer.pool.run { w in trainer.forEachUpdateBlock { replayWeightGradient($0, $1, batch: batch, worker: w) } }
    }

    /// The dW GEMMs of one block of output rows, from every worker's slice, into worker `w`'s block buffer.
    func replayWeightGradient(_ task: LayerTask, _ share: Range<Int>, batch: Int, worker w: Int) {
        let block = trainer.blockGradients[w].pointer
        var beta: Float = 0
        for v in 0..<trainer.workers {
            guard let slice = trainer.operands(of: task, worker: v, batchRows: batch) else { continue }
            let inputs = task.layer.inputs, outputs = task.layer.outputs
            Float.gemm(.transpose, .none, rows: share.count, columns: inputs, inner: slice.rows, alpha: 1,
                       a: slice.outputGradient + share.lowerBound, lda: outputs, b: slice.input,
                       ldb: inputs, beta: beta, c: block, ldc: inputs)
            beta = 1
        }
    }

    /// Tensor parallelism's GEMMs, each worker taking the same tasks as in the step: its column block of every
    /// layer's forward and input-gradient GEMMs over the whole batch, its block's dz, then the dW blocks it owns.
    func runAsTeam(_ team: ColumnTeam, batch: Int) {
        let model = trainer.model
        let samples = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        let shared = trainer.teamWorkspace!
        team.beginStep(rows: batch)
        trainer.pool.run { w in
            for (mlp, ws, input, perExample) in [(model.encoder, shared.encoder, shared.x.pointer, 1),
                                                 (model.decoder, shared.decoder, shared.z.pointer, samples)] {
                for (l, layer) in mlp.layers.enumerated() {
                    let columns = team.columns(layer.outputs, part: w)
                    let x = l == 0 ? UnsafePointer(input) : UnsafePointer(ws.outputs[l - 1].pointer)
                    team.forEachRun(rowsPerExample: perExample) { first, rows in
                        Float.gemm(.none, .transpose, rows: rows, columns: columns.count, inner: layer.inputs,
                                   alpha: 1, a: x + first * layer.inputs, lda: layer.inputs,
                                   b: p + layer.weight.offset + columns.lowerBound * layer.inputs, ldb: layer.inputs,
                                   beta: 0, c: ws.outputs[l].pointer + first * layer.outputs + columns.lowerBound,
                                   ldc: layer.outputs)
                    }
                }
                for l in stride(from: mlp.layers.count - 1, through: 1, by: -1) {
                    let layer = mlp.layers[l], columns = team.columns(layer.inputs, part: w)
                    team.forEachRun(rowsPerExample: perExample) { first, rows in
                        Float.gemm(.none, .none, rows: rows, columns: columns.count, inner: layer.outputs, alpha: 1,
                                   a: ws.gradients[l].pointer + first * layer.outputs, lda: layer.outputs,
                                   b: p + layer.weight.offset + columns.lowerBound, ldb: layer.inputs, beta: 0,
                                   c: ws.gradients[l - 1].pointer + first * layer.inputs + columns.lowerBound,
                                   ldc: layer.inputs)
                    }
                }
            }
            let block = trainer.workspaces[w]
            let n = team.examples[w]
            if n > 0 {
                model.decoder.inputGradient(parameters: p, rows: n * samples, workspace: block.decoder,
                                            into: block.dz.pointer)
            }
        }
        for taken in trainer.ownedTaken { taken.bits.store(0, ordering: .relaxed) }
        trainer.pool.run { w in
            trainer.forEachOwnedBlock(worker: w) {
                replayWeightGradient(trainer.layerTasks[$0.task], $0.outputs, batch: batch, worker: w)
            }
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

    /// dx = dy W for every layer from the top (the first layer's only when `inputGradient` is given).
    static func inputGradients(_ mlp: MLP, _ p: UnsafePointer<Float>, rows: Int, _ ws: MLPWorkspace<Float>,
                               inputGradient: UnsafeMutablePointer<Float>?) {
        for i in stride(from: mlp.layers.count - 1, through: 0, by: -1) {
            let layer = mlp.layers[i]
            guard let dx = i == 0 ? inputGradient : ws.gradients[i - 1].pointer else { continue }
            Float.gemm(.none, .none, rows: rows, columns: layer.inputs, inner: layer.outputs, alpha: 1,
                       a: ws.gradients[i].pointer, lda: layer.outputs, b: p + layer.weight.offset, ldb: layer.inputs,
                       beta: 0, c: dx, ldc: layer.inputs)
        }
    }
}
