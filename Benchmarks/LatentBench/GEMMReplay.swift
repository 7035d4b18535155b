import LatentCore
import LatentModels
import LatentEvaluation
import LatentTraining
import Synchronization

/// Replays exactly the GEMMs of one training step, the way the trainer's strategy runs them (same workers, rows per
/// worker, operands and BLAS threads), and nothing else: its time over the step's time is how close the step is to
/// the BLAS limit (the benchmark's efficiency column).
final class GEMMReplay: @unchecked Sendable {
    let trainer: Trainer

    /// Replays `trainer`'s GEMMs into its own workspaces and block buffers (scratch between steps).
    init(trainer: Trainer) {
        self.trainer = trainer
    }

    /// Whether the step runs as a team's stages separated by barriers, so that `run(synchronized: false)` has
    /// barriers to leave out.
    var runsInStages: Bool { trainer.strategy is TensorParallelStep }

    /// Runs the GEMMs of one step: the forward and input-gradient GEMMs of each worker's part, then the blocks of dW;
    /// with tensor parallelism and `synchronized: false`, each worker's GEMMs back to back without the stages'
    /// barriers (the GEMM work alone, a stricter reference than the GEMMs as the step schedules them).
    func run(synchronized: Bool = true) {
        if BLASThreads.current != trainer.blasThreads { BLASThreads.set(trainer.blasThreads) }
        switch trainer.strategy {
        case let tensor as TensorParallelStep: runAsTeam(tensor, synchronized: synchronized)
        case let data as DataParallelStep: runSlices(data)
        case let reference as ReferenceStep: runReference(reference)
        case let blas as BLASThreadedStep: runReference(blas.reference)
        default: preconditionFailure("no GEMM replay for \(type(of: trainer.strategy))")
        }
    }

    func runReference(_ step: ReferenceStep) {
        let model = trainer.model, ws = step.workspace, g = step.gradient.pointer
        let rows = trainer.batchSize, m = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        forward(model.encoder, p, input: ws.x.pointer, rows: rows, ws.encoder)
        forward(model.decoder, p, input: ws.z.pointer, rows: rows * m, ws.decoder)
        backward(model.decoder, p, input: ws.z.pointer, rows: rows * m, ws.decoder, dx: ws.dz.pointer, g: g)
        backward(model.encoder, p, input: ws.x.pointer, rows: rows, ws.encoder, dx: nil, g: g)
    }

    func runSlices(_ step: DataParallelStep) {
        let model = trainer.model, m = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        let next = Atomic<Int>(0)
        step.pool.run { _ in
            takeInTurn(from: next, count: step.workers) { w in
                let n = Parallel.slice(trainer.batchSize, parts: step.workers, part: w).count
                guard n > 0 else { return }
                let ws = step.workspaces[w]
                forward(model.encoder, p, input: ws.x.pointer, rows: n, ws.encoder)
                forward(model.decoder, p, input: ws.z.pointer, rows: n * m, ws.decoder)
                backward(model.decoder, p, input: ws.z.pointer, rows: n * m, ws.decoder, dx: ws.dz.pointer, g: nil)
                backward(model.encoder, p, input: ws.x.pointer, rows: n, ws.encoder, dx: nil, g: nil)
            }
        }
        let blocks = Atomic<Int>(0)
        step.pool.run { w in
            takeInTurn(from: blocks, count: step.updateBlocks.count) { i in
                let block = step.updateBlocks[i]
                weightProduct(step.updates, step.updates.layerTasks[block.task], block.outputs, worker: w,
                              operands: step.operands)
            }
        }
    }

    /// Tensor parallelism's GEMMs as the step runs them: the same stages, tasks and barriers, then the dW blocks
    /// each worker owns. The barriers belong to the GEMMs' own schedule: a step that did nothing but its GEMMs
    /// would wait at them too.
    func runAsTeam(_ step: TensorParallelStep, synchronized: Bool) {
        let team = step.team
        team.beginStep(rows: trainer.batchSize)
        step.pool.run { w in
            for (index, stage) in step.stages.enumerated() {
                if synchronized {
                    team.forEachTask(stage: index, worker: w) { products(step, stage, task: $0) }
                    if index < step.stages.count - 1 { team.barrier.wait() }
                } else {
                    products(step, stage, task: w)
                }
            }
        }
        for taken in step.ownedTaken { taken.bits.store(0, ordering: .relaxed) }
        step.pool.run { w in
            step.forEachOwnedBlock(worker: w) {
                weightProduct(step.updates, step.updates.layerTasks[$0.task], $0.outputs, worker: w,
                              operands: step.operands)
            }
        }
    }

    /// The GEMMs of task `u` of `stage`.
    func products(_ step: TensorParallelStep, _ stage: TeamStage, task u: Int) {
        let model = trainer.model, m = model.configuration.samples
        let p = UnsafePointer(model.store.parameters.pointer)
        let shared = step.shared, ws = step.blocks[u], rows = step.team.examples[u]
        switch stage {
        case let .forward(decoder, l):
            (decoder ? model.decoder : model.encoder).forwardProducts(
                layer: l, columns: step.columns(of: stage, task: u), team: step.team, rowsPerExample: decoder ? m : 1,
                parameters: p, input: UnsafePointer(decoder ? shared.z.pointer : shared.x.pointer),
                workspace: decoder ? shared.decoder : shared.encoder)
        case let .backward(decoder, l):
            (decoder ? model.decoder : model.encoder).backwardProducts(
                layer: l, columns: step.columns(of: stage, task: u), team: step.team, rowsPerExample: decoder ? m : 1,
                parameters: p, workspace: decoder ? shared.decoder : shared.encoder)
        case let .partialBackward(decoder, l):
            step.partialProducts(decoder: decoder, layer: l, task: u)
        case .encoderHead:
            guard rows > 0 else { return }
            let top = model.encoder.layers.count - 1
            let input = top > 0 ? UnsafePointer(ws.encoder.outputs[top - 1].pointer) : UnsafePointer(ws.x.pointer)
            model.encoder.layers[top].forward(parameters: p, input: input, rows: rows,
                                              output: ws.encoder.outputs[top].pointer)
        case .afterDecoderBackward:
            guard rows > 0 else { return }
            model.decoder.layers[0].inputGradient(parameters: p, outputGradient: ws.decoder.gradients[0].pointer,
                                                  rows: rows * m, into: ws.dz.pointer)
            let top = model.encoder.layers.count - 1
            if step.stages.contains(.encoderHead), top > 0 {
                model.encoder.layers[top].inputGradient(
                    parameters: p, outputGradient: ws.encoder.gradients[top].pointer, rows: rows,
                    into: ws.encoder.gradients[top - 1].pointer)
            }
        case .prepare, .afterEncoder, .afterDecoder:
            break
        }
    }

    /// The dW GEMMs of one block of output rows into worker `w`'s block buffer.
    func weightProduct(_ updates: WeightUpdates, _ task: LayerTask, _ share: Range<Int>, worker w: Int,
                       operands: (LayerTask, (UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void) -> Void) {
        let block = updates.blockGradients[w].pointer
        operands(task) { x, dy, rows, first in
            task.layer.weightProduct(input: x, outputGradient: dy, rows: rows, outputRange: share, accumulate: !first,
                                     weights: block)
        }
    }

    /// Every layer's forward GEMM.
    func forward(_ mlp: MLP, _ p: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                 _ ws: MLPWorkspace<Float>) {
        var x = input
        for (i, layer) in mlp.layers.enumerated() {
            layer.forward(parameters: p, input: x, rows: rows, output: ws.outputs[i].pointer)
            x = UnsafePointer(ws.outputs[i].pointer)
        }
    }

    /// dx = dy W for every layer from the top (the first layer's only when `dx` is given), and with `g` every
    /// layer's dW as well (the reference step forms it in its backward pass).
    func backward(_ mlp: MLP, _ p: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                  _ ws: MLPWorkspace<Float>, dx: UnsafeMutablePointer<Float>?, g: UnsafeMutablePointer<Float>?) {
        for i in stride(from: mlp.layers.count - 1, through: 0, by: -1) {
            let layer = mlp.layers[i]
            if let g {
                let x = i == 0 ? input : UnsafePointer(ws.outputs[i - 1].pointer)
                layer.weightProduct(input: x, outputGradient: ws.gradients[i].pointer, rows: rows,
                                    outputRange: 0..<layer.outputs, accumulate: false,
                                    weights: g + layer.weight.offset)
            }
            guard let into = i == 0 ? dx : ws.gradients[i - 1].pointer else { continue }
            layer.inputGradient(parameters: p, outputGradient: ws.gradients[i].pointer, rows: rows, into: into)
        }
    }
}
