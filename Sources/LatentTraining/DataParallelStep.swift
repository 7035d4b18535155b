import LatentCore
import LatentEvaluation
import LatentModels
import Synchronization

/// Data parallelism (DESIGN.md § The training step): the reference step's phases on slices of the batch, one
/// slice per worker, single-threaded BLAS in each, in two parallel regions:
/// 1. the workers take the batch's slices from a queue and take each through the forward pass and the backward pass
///    of the activations (every layer's pre-activation gradient dy, no weight gradients): a worker that starts late
///    (its core taken by another process) finds its slice done by one that has finished;
/// 2. `WeightUpdates`: the workers take blocks of output rows of the layers from a shared queue (largest first),
///    form each block of dW = Σ_slices dyᵀx from every slice in slice order, so the result does not depend on who
///    takes the block, and hand it to Adam.
package final class DataParallelStep: TrainingStrategy {
    package let model: VariationalAutoencoder<Float>
    package let objective: any TrainingObjective
    package let pool: WorkerPool
    package let workers: Int
    package var blasThreads: Int { 1 }
    /// Per slice: every buffer of its pass, its weight gradients deferred to the second region.
    package let workspaces: [StepWorkspace<Float>]
    package let updates: WeightUpdates
    package let updateBlocks: [UpdateBlock]
    package let nextSlice = Atomic<Int>(0)
    package let nextUpdateBlock = Atomic<Int>(0)
    let regions = (pass: StepRegion<DataParallelStep> { $0.pass(part: $1) },
                   update: StepRegion<DataParallelStep> { $0.update(part: $1) })
    /// Per slice: its term sums and failure.
    package let sliceSums: UnsafeMutablePointer<TermSums>
    package let sliceFailures: UnsafeMutablePointer<StepFailure?>
    /// The current step's batch and gradient consumer, set while its regions run.
    package var batch: StepBatch?
    package var consumer: (any GradientConsumer)?

    package init(model: VariationalAutoencoder<Float>, batchSize: Int, threads: Int, pool: WorkerPool?) throws {
        self.model = model
        objective = model.objective
        let workers = max(1, min(threads, batchSize))
        self.workers = workers
        self.pool = try pool.flatMap { $0.size == workers ? $0 : nil } ?? WorkerPool(size: workers)
        let capacity = (batchSize + workers - 1) / workers
        workspaces = (0..<workers).map { _ in
            let workspace = StepWorkspace(model: model, capacity: capacity)
            workspace.encoder.defersWeightGradients = true
            workspace.decoder.defersWeightGradients = true
            return workspace
        }
        var blocks: [UpdateBlock] = []
        updates = WeightUpdates(model: model, workers: workers) { tasks in
            blocks = UpdateBlock.queue(tasks, workers: workers)
            return UpdateBlock.largest(blocks, tasks)
        }
        updateBlocks = blocks
        sliceSums = .allocate(capacity: workers)
        sliceSums.initialize(repeating: TermSums(), count: workers)
        sliceFailures = .allocate(capacity: workers)
        sliceFailures.initialize(repeating: nil, count: workers)
        regions.pass.owner = self
        regions.update.owner = self
    }

    deinit {
        sliceSums.deallocate()
        sliceFailures.deallocate()
    }

    package func computeGradients(_ batch: StepBatch) -> (sums: TermSums, failedTerm: String?) {
        self.batch = batch
        nextSlice.store(0, ordering: .relaxed)
        pool.run(regions.pass)
        var sums = TermSums()
        for w in 0..<workers { sums = sums + sliceSums[w] }
        return (sums, StepFailure.failedTerm(sums, UnsafeBufferPointer(start: sliceFailures, count: workers)))
    }

    package func apply(_ consumer: any GradientConsumer) {
        self.consumer = consumer
        nextUpdateBlock.store(0, ordering: .relaxed)
        pool.run(regions.update)
        self.consumer = nil
    }

    package func discard() { updates.discard() }

    /// Region 1, part `w`: the slices it takes from the queue.
    package func pass(part _: Int) {
        takeInTurn(from: nextSlice, count: workers) { pass(slice: $0) }
    }

    /// Slice `w` of the batch: its inputs and noise, then the objective's forward pass and the backward pass of the
    /// activations. Everything it writes is the slice's own, so the result does not depend on who computes it.
    package func pass(slice w: Int) {
        let batch = batch!
        let slice = Parallel.slice(batch.rows, parts: workers, part: w)
        let ws = workspaces[w]
        sliceSums[w] = TermSums()
        sliceFailures[w] = nil
        guard !slice.isEmpty else { return }
        batch.prepare(rows: slice, model: model, into: ws)
        do {
            sliceSums[w] = try Objective.evaluate(
                objective, model: model, parameters: model.store.parameters.pointer, rows: slice.count,
                samples: model.configuration.samples, workspace: ws, gradients: updates.workerGradients[w].pointer,
                lossScale: batch.lossScale, accumulate: true)
            sliceFailures[w] = StepFailure.diagnose(ws, rows: slice.count, model: model)
        } catch {
            sliceFailures[w] = .factorization
        }
    }

    /// Region 2, part `w`: the blocks it takes from the queue, then its share of the other parameters.
    package func update(part w: Int) {
        let consumer = consumer!
        takeInTurn(from: nextUpdateBlock, count: updateBlocks.count) { i in
            let block = updateBlocks[i]
            updates.update(updates.layerTasks[block.task], block.outputs, worker: w, consumer: consumer,
                           operands: operands)
        }
        updates.updateOtherParameters(part: w, consumer: consumer)
    }

    /// A layer's weight-gradient operands, one stretch per slice (times the importance samples in the decoder).
    package func operands(of task: LayerTask, _ body: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void) {
        let rowsPerExample = task.isDecoder ? model.configuration.samples : 1
        var first = true
        for v in 0..<workers {
            let n = Parallel.slice(batch!.rows, parts: workers, part: v).count
            guard n > 0 else { continue }
            let ws = workspaces[v]
            let mlp = task.isDecoder ? ws.decoder : ws.encoder
            let input = task.index > 0 ? mlp.outputs[task.index - 1].pointer
                : (task.isDecoder ? ws.z.pointer : ws.x.pointer)
            body(input, mlp.gradients[task.index].pointer, n * rowsPerExample, first)
            first = false
        }
    }
}
