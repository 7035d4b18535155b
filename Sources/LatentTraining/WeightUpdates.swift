import LatentCore
import LatentEvaluation
import LatentModels
import Synchronization

/// The second region of the parallel strategies: blocks of output rows of the layers, each block's dW = Σ dyᵀx and
/// db formed over the whole batch in the worker's small block buffer and handed at once to the gradient's consumer
/// (Adam), then the parameters outside the layers (the prior's and the likelihood's) summed over the workers'
/// buffers. No worker holds a copy of the whole gradient, so there is nothing to sum for the layers, and a block
/// stays in cache until Adam has read it.
package final class WeightUpdates {
    package let model: VariationalAutoencoder<Float>
    package let workers: Int
    /// The layers whose weight gradients this region forms, and the parameters after them.
    package let layerTasks: [LayerTask]
    package let otherParameters: Range<Int>
    /// Per worker: the gradients of `otherParameters`, accumulated by the first region and summed here.
    package let workerGradients: [Buffer<Float>]
    /// Per worker: the block of dW and db being formed.
    package let blockGradients: [Buffer<Float>]

    package init(model: VariationalAutoencoder<Float>, workers: Int, largestBlock: (([LayerTask]) -> Int)) {
        self.model = model
        self.workers = workers
        layerTasks = model.encoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: false) }
            + model.decoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: true) }
        let layerEnd = layerTasks.map { max($0.layer.weight.range.upperBound, $0.layer.bias.range.upperBound) }.max()!
        precondition(layerTasks.reduce(0) { $0 + $1.layer.weight.count + $1.layer.bias.count } == layerEnd,
                     "the layers' parameters come first in the store")
        otherParameters = layerEnd..<model.parameterCount
        let largest = largestBlock(layerTasks)
        blockGradients = (0..<workers).map { _ in Buffer(count: largest) }
        workerGradients = (0..<workers).map { _ in Buffer(count: model.parameterCount) }
    }

    /// The rows `share` of `task`'s dW and db from `operands` (which calls its body with each stretch of the batch:
    /// input x, pre-activation gradient dy, rows, first), handed to `consumer` by worker `w`.
    @inline(__always)
    package func update(_ task: LayerTask, _ share: Range<Int>, worker w: Int, consumer: any GradientConsumer,
                operands: (LayerTask, (UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void) -> Void) {
        let layer = task.layer, block = blockGradients[w].pointer
        let bias = block + share.count * layer.inputs
        operands(task) { x, dy, n, first in
            layer.weightGradients(input: x, outputGradient: dy, rows: n, outputRange: share, accumulate: !first,
                                  weights: block, bias: bias)
        }
        let p = model.store.parameters.pointer
        let weights = layer.weight.offset + share.lowerBound * layer.inputs
        consumer.consume(parameters: p, range: weights..<(weights + share.count * layer.inputs), gradient: block)
        let biases = layer.bias.offset + share.lowerBound
        consumer.consume(parameters: p, range: biases..<(biases + share.count), gradient: bias)
    }

    /// Worker `w`'s part of the parameters outside the layers: the workers' gradients summed in worker order into
    /// worker 0's buffer, handed to `consumer`, and every buffer cleared for the next step.
    package func updateOtherParameters(part w: Int, consumer: any GradientConsumer) {
        guard !otherParameters.isEmpty else { return }
        let part = Parallel.slice(otherParameters.count, parts: workers, part: w)
        let range = (otherParameters.lowerBound + part.lowerBound)..<(otherParameters.lowerBound + part.upperBound)
        guard !range.isEmpty else { return }
        let g = workerGradients[0].pointer
        for other in 1..<max(1, workers) {
            let h = workerGradients[other].pointer
            for i in range {
                g[i] += h[i]
                h[i] = 0
            }
        }
        consumer.consume(parameters: model.store.parameters.pointer, range: range, gradient: g + range.lowerBound)
        (g + range.lowerBound).update(repeating: 0, count: range.count)
    }

    /// Clears the gradients of a batch that is dropped.
    package func discard() {
        for buffer in workerGradients { buffer.zero() }
    }
}

/// A block of output rows of one layer: the second region's unit of work.
package struct UpdateBlock {
    package let task: Int
    package let outputs: Range<Int>

    /// Each layer split into up to two blocks per worker (at least 32 rows each, so the GEMMs stay efficient),
    /// ordered by their GEMM work, largest first: the queue then ends on small blocks that even out the workers.
    /// One worker takes each layer whole.
    package static func queue(_ tasks: [LayerTask], workers: Int) -> [UpdateBlock] {
        var blocks: [UpdateBlock] = []
        for (i, task) in tasks.enumerated() {
            let outputs = task.layer.outputs
            let count = workers == 1 ? 1 : max(1, min(2 * workers, outputs / 32))
            for part in 0..<count {
                blocks.append(UpdateBlock(task: i, outputs: Parallel.slice(outputs, parts: count, part: part)))
            }
        }
        func work(_ block: UpdateBlock) -> Int { block.outputs.count * tasks[block.task].layer.inputs }
        return blocks.sorted { (work($0), $1.task) > (work($1), $0.task) }
    }

    /// Tensor parallelism's blocks per owner: worker w's are the rows of W it computes in the forward pass of a full
    /// batch (its column block of y), so in the quiet case each weight, its gradient and its Adam moments stay with
    /// one core. Split into blocks of at most 64 Ki gradients, so a block buffer stays in cache until Adam has read it.
    package static func owned(_ tasks: [LayerTask], team: ColumnTeam, batchSize: Int, samples: Int) -> [[UpdateBlock]] {
        (0..<team.workers).map { w in
            tasks.enumerated().flatMap { i, task -> [UpdateBlock] in
                let layer = task.layer
                let rows = team.columns(layer.outputs, inner: layer.inputs,
                                        rows: batchSize * (task.isDecoder ? samples : 1), part: w)
                guard !rows.isEmpty else { return [] }
                let parts = (rows.count * (task.layer.inputs + 1) + 65_535) / 65_536
                return (0..<parts).map { part in
                    let share = Parallel.slice(rows.count, parts: parts, part: part)
                    return UpdateBlock(task: i, outputs: (rows.lowerBound + share.lowerBound)..<(rows.lowerBound
                        + share.upperBound))
                }
            }
        }
    }

    /// The largest block of `blocks` as gradients (its rows of dW and db).
    package static func largest(_ blocks: [UpdateBlock], _ tasks: [LayerTask]) -> Int {
        blocks.map { $0.outputs.count * (tasks[$0.task].layer.inputs + 1) }.max() ?? 0
    }
}

/// A layer whose weight gradient the second region forms.
package struct LayerTask {
    package let layer: Linear
    /// Position in its MLP (its input is the previous layer's output, or x / z for the first).
    package let index: Int
    package let isDecoder: Bool
}

/// Calls `body` with the indices 0..<count taken in turn from `counter` (set to 0 before the region starts) until
/// none is left: each index goes to exactly one of the workers drawing on the same counter.
@inline(__always)
package func takeInTurn(from counter: borrowing Atomic<Int>, count: Int, _ body: (Int) -> Void) {
    while true {
        let i = counter.add(1, ordering: .relaxed).oldValue
        guard i < count else { return }
        body(i)
    }
}
