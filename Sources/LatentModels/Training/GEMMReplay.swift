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
    /// With tensor parallelism and `synchronized: false`, each worker runs its tasks' GEMMs back to back without the
    /// stages' barriers: the GEMM work alone, a stricter reference than the GEMMs as the step schedules them.
    public func run(rows: Int? = nil, synchronized: Bool = true) {
        let batch = rows ?? trainer.batchSize
        if BLASThreads.current != trainer.blasThreads { BLASThreads.set(trainer.blasThreads) }
        if let team = trainer.team { return runAsTeam(team, batch: batch, synchronized: synchronized) }
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

    /// The dW GEMMs of one block of output rows (`Trainer.forEachOperand`'s stretches of the batch), into worker `w`'s
    /// block buffer.
    func replayWeightGradient(_ task: LayerTask, _ share: Range<Int>, batch: Int, worker w: Int) {
        let block = trainer.blockGradients[w].pointer
        trainer.forEachOperand(of: task, batchRows: batch) { x, dy, rows, first in
            task.layer.weightProduct(input: x, outputGradient: dy, rows: rows, outputRange: share, accumulate: !first,
                                     weights: block)
        }
    }

    /// Tensor parallelism's GEMMs as the step runs them: the same stages, tasks and barriers between the stages
    /// (`Trainer.runStages` with `productsOnly`: column blocks of the layers over the whole batch, each block's head
    /// and dz), then the dW blocks each worker owns. The barriers are part of the GEMMs' own schedule: a step that did
    /// nothing but its GEMMs would wait at them too, so it would score 1.
    func runAsTeam(_ team: ColumnTeam, batch: Int, synchronized: Bool) {
        team.beginStep(rows: batch)
        trainer.pool.run { w in
            if synchronized { return trainer.runStages(team, worker: w, productsOnly: true) }
            for stage in trainer.stages { trainer.run(stage, task: w, team: team, productsOnly: true) }
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
            layer.forward(parameters: p, input: x, rows: rows, output: ws.outputs[i].pointer)
            x = UnsafePointer(ws.outputs[i].pointer)
        }
    }

    /// dx = dy W for every layer from the top (the first layer's only when `inputGradient` is given).
    static func inputGradients(_ mlp: MLP, _ p: UnsafePointer<Float>, rows: Int, _ ws: MLPWorkspace<Float>,
                               inputGradient: UnsafeMutablePointer<Float>?) {
        for i in stride(from: mlp.layers.count - 1, through: 0, by: -1) {
            let layer = mlp.layers[i]
            guard let dx = i == 0 ? inputGradient : ws.gradients[i - 1].pointer else { continue }
            layer.inputGradient(parameters: p, outputGradient: ws.gradients[i].pointer, rows: rows, into: dx)
        }
    }
}
