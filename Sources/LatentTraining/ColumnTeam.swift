import LatentCore
import LatentEvaluation
import LatentModels
import Synchronization

/// The schedule of a tensor-parallel step (DESIGN.md § The training step): the batch lies in one block per worker (block u's
/// examples from u·capacity on, in one batch-sized workspace), and the step is a sequence of stages separated by a
/// barrier. A stage has one task per worker: block u's per-example work, or column block u of a layer (its outputs for
/// the whole batch, one GEMM over every block; in a backward pass at small batches, the partial sum of dx over the rows
/// of W that u owns, `TeamStage.partialBackward`). Each worker takes its own task first, so in the quiet case each
/// weight is read and updated by one core only, then any task left unclaimed, so a worker that lost its core to another
/// process holds up at most the task it is in. Every task computes the same thing whoever runs it: the results depend
/// on the worker count only.
@usableFromInline package final class ColumnTeam: @unchecked Sendable {
    @usableFromInline package let workers: Int
    /// Examples per block (the blocks' spacing in the shared buffers).
    @usableFromInline package let capacity: Int
    @usableFromInline package let barrier: SpinBarrier
    /// The current step's examples in each block.
    @usableFromInline package let examples: UnsafeMutablePointer<Int>
    /// Per stage, a bit per task: claimed.
    let claims: [Claims]

    /// The most workers a team has (a stage's claims are the bits of one word).
    @usableFromInline package static let maximumWorkers = Int.bitWidth - 1

    @usableFromInline package init(workers: Int, capacity: Int, stages: Int) {
        precondition(workers <= ColumnTeam.maximumWorkers, "a team has at most \(ColumnTeam.maximumWorkers) workers")
        self.workers = workers
        self.capacity = capacity
        barrier = SpinBarrier(count: workers)
        examples = .allocate(capacity: workers)
        examples.initialize(repeating: 0, count: workers)
        claims = (0..<stages).map { _ in Claims() }
    }

    deinit { examples.deallocate() }

    /// Sets the examples of each block for a batch of `rows` (block u takes `Parallel.slice(rows, workers, u)`) and
    /// clears every stage's claims; call before the step's region.
    @usableFromInline package func beginStep(rows: Int) {
        for u in 0..<workers { examples[u] = Parallel.slice(rows, parts: workers, part: u).count }
        for claim in claims { claim.bits.store(0, ordering: .relaxed) }
    }

    /// The column block `part` of a layer with `width` outputs: whole groups of `group` columns, split as evenly as
    /// they go, and the last block takes the remainder.
    @inlinable
    package func columns(_ width: Int, part: Int, group: Int = 16) -> Range<Int> {
        let groups = Parallel.slice(width / group, parts: workers, part: part)
        return (group * groups.lowerBound)..<(part == workers - 1 ? width : group * groups.upperBound)
    }

    /// The column group for splitting a layer of `width` outputs whose GEMMs take `inner` terms over runs of at
    /// least `rows` rows. OpenBLAS's small-matrix NN kernel for SkylakeX mallocs a buffer on every call whose column
    /// count leaves 1–8 over a multiple of 16 (with K ≥ 32), so where a block's GEMM may take that kernel (M·N·K ≤
    /// 100³) no block but the last (which has the full width's remainder, as data parallelism does, and which
    /// `Float.gemm` keeps from allocating: `SmallMatrixPieces.mallocFreeNN`) may: groups of 16, one AVX-512 vector,
    /// which also start every row of a block on a cache line when the width is a multiple of 16. Past that bound
    /// OpenBLAS always packs, and for a width whose rows are not so aligned anyway, groups of 8 split 300 outputs
    /// 152/148 instead of 144/156, whose 12-column edge is slow.
    @inlinable
    package func group(width: Int, rows: Int, inner: Int) -> Int {
        guard width % 16 != 0 else { return 16 }
        var narrowest = width
        for part in 0..<workers { narrowest = min(narrowest, columns(width, part: part, group: 8).count) }
        return Double(rows) * Double(narrowest) * Double(inner) > 1e6 ? 8 : 16
    }

    /// The column block `part` of a layer of `width` outputs whose GEMMs take `inner` terms over runs of at least
    /// `rows` rows, in the groups `group(width:rows:inner:)` picks.
    @inlinable
    package func columns(_ width: Int, inner: Int, rows: Int, part: Int) -> Range<Int> {
        columns(width, part: part, group: group(width: width, rows: rows, inner: inner))
    }

    /// The fewest rows of one GEMM over the batch (`forEachRun`), at `rowsPerExample` rows per example.
    @inlinable
    package func shortestRun(rowsPerExample: Int) -> Int {
        var shortest = Int.max
        forEachRun(rowsPerExample: rowsPerExample) { _, rows in shortest = min(shortest, rows) }
        return shortest == .max ? 0 : shortest
    }

    /// Runs `body(task)` for the tasks of `stage` that worker `w` claims: task w first, then any still unclaimed.
    @inline(__always)
    @usableFromInline package func forEachTask(stage: Int, worker w: Int, _ body: (Int) -> Void) {
        let claim = claims[stage]
        for i in 0..<workers {
            let task = (w + i) % workers
            let bit = 1 << task
            if claim.bits.load(ordering: .relaxed) & bit != 0 { continue }
            if claim.bits.bitwiseOr(bit, ordering: .relaxed).oldValue & bit == 0 { body(task) }
        }
    }

    /// `body(firstRow, rows)` for the rows of the batch in the shared buffers, `rowsPerExample` rows per example (1 for
    /// the encoder, m for the decoder): one call over adjacent full blocks, so a GEMM spans the batch's full height.
    @inlinable @inline(__always)
    package func forEachRun(rowsPerExample: Int, _ body: (Int, Int) -> Void) {
        let blockRows = capacity * rowsPerExample
        var start = 0, rows = 0
        for u in 0..<workers {
            let n = examples[u] * rowsPerExample
            rows += n
            if n < blockRows || u == workers - 1 {
                if rows > 0 { body(start * blockRows, rows) }
                start = u + 1
                rows = 0
            }
        }
    }

    @usableFromInline package final class Claims: @unchecked Sendable {
        @usableFromInline package let bits = Atomic<Int>(0)
        @usableFromInline package init() {}
    }
}

extension MLP {
    /// Layer `l`'s output columns `columns` for the whole batch before bias and activation: y = x Wᵀ, one GEMM per
    /// run of blocks. `input` and `ws` are the shared, batch-sized buffers.
    @inlinable
    package func forwardProducts<T: BLASScalar>(layer l: Int, columns: Range<Int>, team: ColumnTeam,
                                                rowsPerExample: Int, parameters p: UnsafePointer<T>,
                                                input: UnsafePointer<T>, workspace ws: MLPWorkspace<T>) {
        guard !columns.isEmpty else { return }
        let layer = layers[l]
        let x = l == 0 ? input : UnsafePointer(ws.outputs[l - 1].pointer)
        team.forEachRun(rowsPerExample: rowsPerExample) { first, rows in
            T.gemm(.none, .transpose, rows: rows, columns: columns.count, inner: layer.inputs, alpha: 1,
                   a: x + first * layer.inputs, lda: layer.inputs,
                   b: p + layer.weight.offset + columns.lowerBound * layer.inputs, ldb: layer.inputs, beta: 0,
                   c: ws.outputs[l].pointer + first * layer.outputs + columns.lowerBound, ldc: layer.outputs)
        }
    }

    /// Bias and activation on layer `l`'s output columns `columns` (after `forwardProducts`).
    @inlinable
    func forwardActivation<T: BLASScalar>(layer l: Int, columns: Range<Int>, team: ColumnTeam, rowsPerExample: Int,
                                          parameters p: UnsafePointer<T>, workspace ws: MLPWorkspace<T>) {
        guard !columns.isEmpty else { return }
        let layer = layers[l]
        team.forEachRun(rowsPerExample: rowsPerExample) { first, rows in
            activation(of: l).forward(ws.outputs[l].pointer + first * layer.outputs + columns.lowerBound,
                                      bias: p + layer.bias.offset + columns.lowerBound, rows: rows,
                                      columns: columns.count, stride: layer.outputs)
        }
    }

    /// Layer `l` (≥ 1) backward for its input columns `columns` over the whole batch: the gradient of layer l − 1's
    /// output, dy W, one GEMM per run of blocks. Layer l's dy must be complete (every column); the weight gradients
    /// are formed later by each layer's owner.
    @inlinable
    package func backwardProducts<T: BLASScalar>(layer l: Int, columns: Range<Int>, team: ColumnTeam,
                                                 rowsPerExample: Int, parameters p: UnsafePointer<T>,
                                                 workspace ws: MLPWorkspace<T>) {
        guard !columns.isEmpty else { return }
        let layer = layers[l]
        team.forEachRun(rowsPerExample: rowsPerExample) { first, rows in
            T.gemm(.none, .none, rows: rows, columns: columns.count, inner: layer.outputs, alpha: 1,
                   a: ws.gradients[l].pointer + first * layer.outputs, lda: layer.outputs,
                   b: p + layer.weight.offset + columns.lowerBound, ldb: layer.inputs, beta: 0,
                   c: ws.gradients[l - 1].pointer + first * layer.inputs + columns.lowerBound, ldc: layer.inputs)
        }
    }

    /// Times the derivative of layer l − 1's activation, on the columns `backwardProducts` formed.
    @inlinable
    func backwardActivation<T: BLASScalar>(layer l: Int, columns: Range<Int>, team: ColumnTeam, rowsPerExample: Int,
                                           workspace ws: MLPWorkspace<T>) {
        guard !columns.isEmpty else { return }
        let below = layers[l - 1].outputs
        team.forEachRun(rowsPerExample: rowsPerExample) { first, rows in
            let start = first * below + columns.lowerBound
            activation(of: l - 1).backward(output: ws.outputs[l - 1].pointer + start,
                                           gradient: ws.gradients[l - 1].pointer + start, rows: rows,
                                           columns: columns.count, stride: below)
        }
    }
}
