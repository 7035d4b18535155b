import LatentCore
import LatentEvaluation
import LatentModels
import Synchronization

/// Tensor parallelism (DESIGN.md § The training step): the reference step's phases as a team's stages
/// (`ColumnTeam`, `TeamStage.schedule`). Each worker computes its column block of every layer for the whole batch,
/// so it reads only the rows of W that it updates itself in the second region (`WeightUpdates`); the per-example
/// phases run on each worker's block of the batch. At small batches the backward pass forms partial sums over the
/// rows of W each worker owns (`TeamStage.partialBackward`) instead of column blocks of dx, which read every
/// worker's rows. Every task computes the same thing whoever runs it: results depend on the worker count only.
package final class TensorParallelStep: TrainingStrategy {
    package let model: VariationalAutoencoder<Float>
    package let objective: any TrainingObjective
    package let pool: WorkerPool
    package let workers: Int
    package var blasThreads: Int { 1 }
    package let team: ColumnTeam
    package let stages: [TeamStage]
    /// The batch-sized workspace, and per block of the batch a view of it.
    package let shared: StepWorkspace<Float>
    package let blocks: [StepWorkspace<Float>]
    /// Whether the encoder's last layer runs by blocks of the batch (the schedule has a `TeamStage.encoderHead`).
    package let headByBlocks: Bool
    /// Task u ≥ 1's partial sums of the backward pass's output gradients, per MLP (encoder, decoder) and layer,
    /// empty where `gradientIsPartial` is false; task 0's are the shared workspace's own.
    package let partialGradients: [[[Buffer<Float>]]]
    /// Per MLP and layer: whether the layer's output gradient comes as partial sums, added up by its first reader.
    package let gradientIsPartial: [[Bool]]
    package let updates: WeightUpdates
    /// The second region's blocks per owner (the rows of W each worker computes in the forward pass), and how many
    /// of each owner's blocks have been taken.
    package let ownedBlocks: [[UpdateBlock]]
    package let ownedTaken: [ColumnTeam.Claims]
    let regions = (pass: StepRegion<TensorParallelStep> { $0.pass(part: $1) },
                   update: StepRegion<TensorParallelStep> { $0.update(part: $1) })
    package let blockSums: UnsafeMutablePointer<TermSums>
    package let blockFailures: UnsafeMutablePointer<StepFailure?>
    package var batch: StepBatch?
    package var consumer: (any GradientConsumer)?

    package init(model: VariationalAutoencoder<Float>, batchSize: Int, threads: Int, pool: WorkerPool?) throws {
        self.model = model
        objective = model.objective
        let workers = max(1, min(threads, batchSize, ColumnTeam.maximumWorkers))
        self.workers = workers
        self.pool = try pool.flatMap { $0.size == workers ? $0 : nil } ?? WorkerPool(size: workers)
        let capacity = (batchSize + workers - 1) / workers
        let stages = TeamStage.schedule(model, workers: workers, batchSize: batchSize)
        self.stages = stages
        headByBlocks = stages.contains { $0.isEncoderHead }
        let partial = [model.encoder, model.decoder].enumerated().map { d, mlp in
            mlp.layers.indices.map { stages.contains(.partialBackward(decoder: d == 1, layer: $0 + 1)) }
        }
        gradientIsPartial = partial
        team = ColumnTeam(workers: workers, capacity: capacity, stages: stages.count)
        let shared = StepWorkspace(model: model, capacity: workers * capacity)
        self.shared = shared
        let sharedRows = workers * capacity
        // Only the layers whose gradient the schedule forms as partial sums get a buffer.
        partialGradients = (1..<workers).map { _ in
            [model.encoder, model.decoder].enumerated().map { d, mlp in
                mlp.layers.enumerated().map { l, layer in
                    Buffer(count: partial[d][l] ? sharedRows * (d == 1 ? model.configuration.samples : 1)
                        * layer.outputs : 0)
                }
            }
        }
        blocks = (0..<workers).map { w in
            let block = StepWorkspace(viewOf: shared, model: model, examples: (w * capacity)..<((w + 1) * capacity))
            block.encoder.defersWeightGradients = true
            block.decoder.defersWeightGradients = true
            return block
        }
        var owned: [[UpdateBlock]] = []
        let team = team
        updates = WeightUpdates(model: model, workers: workers) { tasks in
            owned = UpdateBlock.owned(tasks, team: team, batchSize: batchSize, samples: model.configuration.samples)
            return UpdateBlock.largest(Array(owned.joined()), tasks)
        }
        ownedBlocks = owned
        ownedTaken = owned.map { _ in ColumnTeam.Claims() }
        blockSums = .allocate(capacity: workers)
        blockSums.initialize(repeating: TermSums(), count: workers)
        blockFailures = .allocate(capacity: workers)
        blockFailures.initialize(repeating: nil, count: workers)
        regions.pass.owner = self
        regions.update.owner = self
    }

    deinit {
        blockSums.deallocate()
        blockFailures.deallocate()
    }

    package func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        self.batch = batch
        team.beginStep(rows: batch.rows)
        pool.run(regions.pass)
        var sums = TermSums()
        for w in 0..<workers { sums = sums + blockSums[w] }
        return (sums, StepFailure.failedTerm(sums, UnsafeBufferPointer(start: blockFailures, count: workers)))
    }

    package func apply(_ consumer: any GradientConsumer) {
        self.consumer = consumer
        for taken in ownedTaken { taken.bits.store(0, ordering: .relaxed) }
        pool.run(regions.update)
        self.consumer = nil
    }

    package func discard() { updates.discard() }

    /// Region 1, worker `w`: every stage's tasks it claims, a barrier after each stage but the last.
    package func pass(part w: Int) {
        for (index, stage) in stages.enumerated() {
            team.forEachTask(stage: index, worker: w) { run(stage, task: $0) }
            if index < stages.count - 1 { team.barrier.wait() }
        }
    }

    /// Region 2, worker `w`: the blocks it owns, then any of the others' not yet taken (each block's update is the
    /// same whoever computes it), then its share of the other parameters.
    package func update(part w: Int) {
        let consumer = consumer!
        forEachOwnedBlock(worker: w) { block in
            let task = updates.layerTasks[block.task]
            // The first encoder layer's gradient, when it came as partial sums, is added up here, block by block.
            if !task.isDecoder, task.index == 0, gradientIsPartial[0][0] {
                addPartials(decoder: false, layer: 0, columns: block.outputs)
            }
            updates.update(task, block.outputs, worker: w, consumer: consumer, operands: operands)
        }
        updates.updateOtherParameters(part: w, consumer: consumer)
    }

    /// The owned blocks for worker `w`: its own first, then the others' in turn.
    package func forEachOwnedBlock(worker w: Int, _ body: (UpdateBlock) -> Void) {
        for i in 0..<workers {
            let owner = (w + i) % workers
            takeInTurn(from: ownedTaken[owner].bits, count: ownedBlocks[owner].count) { body(ownedBlocks[owner][$0]) }
        }
    }

    /// A layer's weight-gradient operands: the runs of adjacent full blocks of the shared workspace, usually the
    /// whole batch in one GEMM.
    package func operands(of task: LayerTask,
                          _ body: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void) {
        let mlp = task.isDecoder ? shared.decoder : shared.encoder
        let x = UnsafePointer(task.index > 0 ? mlp.outputs[task.index - 1].pointer
            : (task.isDecoder ? shared.z.pointer : shared.x.pointer))
        let dy = UnsafePointer(mlp.gradients[task.index].pointer)
        var first = true
        team.forEachRun(rowsPerExample: task.isDecoder ? model.configuration.samples : 1) { start, rows in
            body(x + start * task.layer.inputs, dy + start * task.layer.outputs, rows, first)
            first = false
        }
    }
}
