import LatentCore
import LatentData
import Synchronization

/// Data-parallel training of a Float model (DESIGN.md § Multicore) in two parallel regions a step, single-threaded
/// BLAS in each worker:
/// 1. the workers take the minibatch's contiguous slices (one per worker) from a queue and take each through the
///    forward pass and the backward pass of the activations (every layer's pre-activation gradient dy, no weight
///    gradients): in the quiet case each worker takes one, and a worker that starts late (its core taken by another
///    process) finds its slice done by one that has finished;
/// 2. the workers take blocks of output rows of the layers from a shared queue (largest first, so a core slowed by
///    another process does fewer), form each block of dW = Σ_workers dyᵀx and db from all workers' slices (one GEMM
///    per slice, always in slice order, so the result does not depend on who takes the block), and apply Adam to it.
/// No worker holds a copy of the whole gradient, so there is nothing to sum and Adam reads each gradient once.
/// Each block of dW is formed in its worker's small block buffer, which stays in cache until Adam has read it: Adam is
/// bound by memory bandwidth (shared by the cores), and a model-sized gradient would add a write to and a read from
/// memory per parameter. Parameters outside the layers (the mixture prior's) are still accumulated per worker and
/// summed. A multi-process mode would instead gather the blocks into one flat buffer for an allreduce (DESIGN.md).
///
/// With tensor parallelism, region 1 is instead the team's stages (`ColumnTeam`, `TensorStep.swift`): each worker
/// computes its column block of every layer for the whole batch, so that it reads only the rows of W it updates
/// itself in region 2; at small batches its backward pass forms partial sums over those same rows
/// (`TeamStage.partialBackward`) instead of column blocks of dx, which read every worker's rows. At batch 32 the step
/// is about a fifth faster than with data parallelism on the 2-core machine of the README, where each core's writes
/// to weights that the other core has read are slow.
///
/// Random draws are keyed by (seed, step, row in batch), so they do not depend on the thread count or strategy;
/// only how the floating-point sums are cut and ordered does (rows per worker, column blocks, slices of dW).
public final class Trainer: @unchecked Sendable {
    /// How `threads` are used: split the batch over workers with single-threaded BLAS (`data`), split every layer's
    /// outputs over workers that meet between layers (`tensor`, see `ColumnTeam`), or one worker with OpenBLAS's
    /// threads (`blas`). `auto` is tensor for batches up to `tensorBatchLimit` on several threads, else data.
    public enum Parallelism: String, Codable, Sendable, CaseIterable {
        case auto, data, tensor, blas

        /// What `auto` resolves to for a batch size and thread count (the others are themselves).
        public func resolved(batchSize: Int, threads: Int) -> Parallelism {
            guard self == .auto else { return self }
            return threads > 1 && batchSize <= Trainer.tensorBatchLimit ? .tensor : .data
        }
    }
    /// The largest batch that `auto` runs as tensor parallelism, from latent-bench's strategies table on the 2-core
    /// machine of the README's Performance section.
    public static let tensorBatchLimit = 128
    /// The strategy this trainer runs (`auto` resolved).
    public let parallelism: Parallelism
    /// OpenBLAS threads inside each GEMM during a step.
    public let blasThreads: Int
    public let model: VariationalAutoencoder<Float>
    public let adam: Adam<Float>
    public let batchSize: Int
    public let workers: Int
    /// The threads that run the workers' parts (shared with other evaluators of the same run).
    public let pool: WorkerPool
    public let seed: UInt64
    public private(set) var step = 0
    public private(set) var epoch = 0

    let images: ImageSet
    /// Per worker (data parallelism) or per block of the batch (tensor parallelism, views of `teamWorkspace`).
    let workspaces: [StepWorkspace<Float>]
    /// With tensor parallelism: the schedule's team and the batch-sized workspace its blocks share.
    let team: ColumnTeam?
    let teamWorkspace: StepWorkspace<Float>?
    let stages: [TeamStage]
    /// Whether the encoder's last layer runs by blocks of the batch (the schedule has a `TeamStage.encoderHead`).
    let headByBlocks: Bool
    /// With tensor parallelism: task u ≥ 1's partial sums of the backward pass's output gradients
    /// (`TeamStage.partialBackward`), per MLP (encoder, decoder) and layer, empty where `gradientIsPartial` is false;
    /// task 0's are the shared workspace's own.
    let partialGradients: [[[Buffer<Float>]]]
    /// Per MLP (encoder, decoder) and layer: whether the layer's output gradient is formed as partial sums (the layer
    /// above runs `TeamStage.partialBackward`), to be added up by whoever reads it first.
    let gradientIsPartial: [[Bool]]
    /// Per worker: the gradients of the parameters outside the layers (`otherParameters`), summed in region 2.
    let workerGradients: [Buffer<Float>]
    /// Per worker: the block of dW and db that region 2 is forming (sized for the largest block).
    let blockGradients: [Buffer<Float>]
    /// The layers whose weight gradients region 2 forms, and the parameters after them (the mixture prior's).
    let layerTasks: [LayerTask]
    let otherParameters: Range<Int>
    /// Region 2's queue: blocks of output rows of the layers, largest first, taken in turn by whichever worker is free.
    let updateBlocks: [UpdateBlock]
    /// With tensor parallelism, region 2's blocks per owner (the rows of W each worker computes in the forward pass)
    /// and how many of each owner's blocks have been taken.
    let ownedBlocks: [[UpdateBlock]]
    let ownedTaken: [ColumnTeam.Claims]
    let nextUpdateBlock = Atomic<Int>(0)
    /// Region 1's queue: the next slice of the batch to take.
    let nextSlice = Atomic<Int>(0)
    let regions = StepRegions()
    /// The current step's inputs, set before its regions run.
    var inputs: StepInputs?
    let workerSums: UnsafeMutablePointer<TermSums>
    /// Per worker: 0 = fine, 1 = factorization failed, 2 = non-finite log q, 3 = non-finite log prior,
    /// 4 = non-finite gradient of the posterior parameters.
    let workerFailures: UnsafeMutablePointer<Int>
    var permutation: [Int]
    let thresholds: [UInt32]

    /// A trainer of `model` on `images` with `threads` workers, split as `requested` says (`auto`, the default, is what
    /// `latent train --threads` does); `pool` is reused when it has the workers' count.
    public init(model: VariationalAutoencoder<Float>, images: ImageSet, batchSize: Int, learningRate: Double,
                seed: UInt64, threads: Int, parallelism requested: Parallelism = .auto, pool: WorkerPool? = nil) {
        self.model = model
        self.images = images
        self.batchSize = batchSize
        self.seed = seed
        let parallelism = requested.resolved(batchSize: batchSize, threads: threads)
        self.parallelism = parallelism
        let workerCount = parallelism == .blas ? 1
            : max(1, min(threads, batchSize, parallelism == .tensor ? ColumnTeam.maximumWorkers : .max))
        workers = workerCount
        blasThreads = parallelism == .blas ? max(1, threads) : 1
        self.pool = pool.flatMap { $0.size == workerCount ? $0 : nil } ?? WorkerPool(size: workerCount)
        adam = Adam(count: model.parameterCount, learningRate: learningRate)
        let capacity = (batchSize + workers - 1) / workers
        stages = TeamStage.schedule(model, workers: workerCount, batchSize: batchSize)
        headByBlocks = stages.contains { $0.isEncoderHead }
        let schedule = stages
        gradientIsPartial = [model.encoder, model.decoder].enumerated().map { d, mlp in
            mlp.layers.indices.map { schedule.contains(.partialBackward(decoder: d == 1, layer: $0 + 1)) }
        }
        team = parallelism == .tensor && workerCount > 1
            ? ColumnTeam(workers: workerCount, capacity: capacity, stages: stages.count) : nil
        let shared = team.map { _ in StepWorkspace(model: model, capacity: workerCount * capacity) }
        teamWorkspace = shared
        // Only the layers whose gradient the schedule forms as partial sums get a buffer (none past 64 rows).
        let sharedRows = workerCount * capacity, partial = gradientIsPartial
        partialGradients = team == nil ? [] : (1..<workerCount).map { _ in
            [model.encoder, model.decoder].enumerated().map { d, mlp in
                mlp.layers.enumerated().map { l, layer in
                    Buffer(count: partial[d][l] ? sharedRows * (d == 1 ? model.configuration.samples : 1)
                        * layer.outputs : 0)
                }
            }
        }
        workspaces = (0..<workers).map { w in
            let workspace = shared.map {
                StepWorkspace(viewOf: $0, model: model, examples: (w * capacity)..<((w + 1) * capacity))
            } ?? StepWorkspace(model: model, capacity: capacity)
            workspace.encoder.defersWeightGradients = true
            workspace.decoder.defersWeightGradients = true
            return workspace
        }
        layerTasks = model.encoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: false) }
            + model.decoder.layers.enumerated().map { LayerTask(layer: $1, index: $0, isDecoder: true) }
        let layerEnd = layerTasks.map { max($0.layer.weight.range.upperBound, $0.layer.bias.range.upperBound) }.max()!
        precondition(layerTasks.reduce(0) { $0 + $1.layer.weight.count + $1.layer.bias.count } == layerEnd,
                     "the layers' parameters come first in the store")
        otherParameters = layerEnd..<model.parameterCount
        let tasks = layerTasks
        updateBlocks = UpdateBlock.queue(tasks, workers: workerCount)
        ownedBlocks = team.map {
            UpdateBlock.owned(tasks, team: $0, batchSize: batchSize, samples: model.configuration.samples)
        } ?? []
        ownedTaken = ownedBlocks.map { _ in ColumnTeam.Claims() }
        let largestBlock = (updateBlocks + ownedBlocks.joined())
            .map { $0.outputs.count * (tasks[$0.task].layer.inputs + 1) }.max()!
        blockGradients = (0..<workerCount).map { _ in Buffer(count: largestBlock) }
        workerGradients = (0..<workers).map { _ in Buffer(count: model.parameterCount) }
        workerSums = .allocate(capacity: workers)
        workerSums.initialize(repeating: TermSums(), count: workers)
        workerFailures = .allocate(capacity: workers)
        workerFailures.initialize(repeating: 0, count: workers)
        permutation = Array(0..<images.count)
        thresholds = Binarization.thresholds
        regions.pass.trainer = self
        regions.update.trainer = self
    }

    deinit {
        workerSums.deallocate()
        workerFailures.deallocate()
    }

    /// Steps per epoch (the last, smaller batch included).
    public var stepsPerEpoch: Int { (images.count + batchSize - 1) / batchSize }
    /// Whether the step runs as a team's stages separated by barriers (tensor parallelism on several workers), so
    /// that `GEMMReplay.run(synchronized: false)` has barriers to leave out.
    public var runsInStages: Bool { team != nil }

    /// Restores counters after loading a checkpoint; the permutation of the current epoch is recomputed from the seed.
    public func restore(step: Int, epoch: Int, optimizerStep: Int? = nil) {
        self.step = step
        self.epoch = epoch
        adam.restore(step: optimizerStep ?? step)
    }

    /// The shuffled example order of an epoch: a Fisher–Yates shuffle keyed by (seed, epoch).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var rng = RandomStream(seed: seed, purpose: .shuffle, step: UInt64(epoch))
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                order.swapAt(i, rng.index(below: i + 1))
            }
        }
        return order
    }

    /// Prepares the order of `epoch` (0-based); call before its steps.
    public func beginEpoch(_ epoch: Int) {
        self.epoch = epoch
        permutation = Trainer.permutation(count: images.count, seed: seed, epoch: epoch)
    }

    /// One optimization step on batch `index` of the current epoch; returns the batch's term sums.
    /// What to do with a batch whose loss or gradient is not finite.
    public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
        /// Throw `TrainingError.nonFinite` before touching the parameters.
        case stop
        /// Drop the batch's gradient, count it in `skippedBatches`, and go on.
        case skipBatch = "skip-batch"
    }
    public var nonFinitePolicy = NonFinitePolicy.stop
    public private(set) var skippedBatches = 0

    /// Restores the skipped-batch count from a checkpoint.
    public func restore(skippedBatches: Int) { self.skippedBatches = skippedBatches }

    /// One optimization step on batch `index` of the current epoch; returns the batch's term sums (zero examples
    /// when the batch was skipped as non-finite). The parameters are never updated from a non-finite batch.
    public func trainStep(batch index: Int) throws -> TermSums {
        if BLASThreads.current != blasThreads { BLASThreads.set(blasThreads) }
        let start = index * batchSize
        let rows = min(batchSize, images.count - start)
        permutation.withUnsafeBufferPointer { order in
            images.pixels.withUnsafeBufferPointer { pixels in
                thresholds.withUnsafeBufferPointer { thresholds in
                    inputs = StepInputs(start: start, rows: rows, step: step, order: order.baseAddress!,
                                        pixels: pixels.baseAddress!, thresholds: thresholds.baseAddress!)
                    nextSlice.store(0, ordering: .relaxed)
                    team?.beginStep(rows: rows)
                    pool.run(regions.pass)
                }
            }
        }
        var sums = TermSums()
        for w in 0..<workers { sums = sums + workerSums[w] }
        if let term = failedTerm(sums) {
            for w in 0..<workers { workerGradients[w].zero() }
            guard nonFinitePolicy == .skipBatch else { throw TrainingError.nonFinite(step: step, term: term) }
            skippedBatches += 1
            step += 1
            return TermSums()
        }
        adam.beginStep()
        nextUpdateBlock.store(0, ordering: .relaxed)
        for taken in ownedTaken { taken.bits.store(0, ordering: .relaxed) }
        pool.run(regions.update)
        step += 1
        return sums
    }

    /// The first term of the batch that is not finite (nil when all are), named as the error message shows it.
    func failedTerm(_ sums: TermSums) -> String? {
        func failed(_ code: Int) -> Bool { (0..<workers).contains { workerFailures[$0] == code } }
        if sums.loss.isFinite && sums.rec.isFinite && sums.kl.isFinite && !(1...4).contains(where: failed) {
            return nil
        }
        if failed(1) { return "posterior factorization (Cholesky)" }
        if !sums.rec.isFinite { return "Rec" }
        if failed(2) { return "log q" }
        if failed(3) { return "prior" }
        if !sums.kl.isFinite { return "KL" }
        if !sums.loss.isFinite { return "importance-weighted bound" }
        return "gradient"
    }

    /// Checks the per-example log-determinants, log priors and posterior-parameter gradients of a worker's pass.
    static func diagnose(_ ws: StepWorkspace<Float>, rows: Int, samples: Int, mixture: Bool, width: Int) -> Int {
        var logQ: Float = 0
        for r in 0..<rows { logQ += ws.logDeterminant[r] }
        if !logQ.isFinite { return 2 }
        if mixture {
            var prior: Float = 0
            for i in 0..<(rows * samples) { prior += ws.logPrior[i] }
            if !prior.isFinite { return 3 }
        }
        let g = ws.encoder.outputGradient
        for i in 0..<(rows * width) where !g[i].isFinite { return 4 }
        return 0
    }

    /// Calls `body` with the indices 0..<count taken in turn from `counter` (set to 0 before the region starts) until
    /// none is left: each index goes to exactly one of the workers drawing on the same counter. Both regions' queues.
    @inline(__always)
    static func takeInTurn(from counter: borrowing Atomic<Int>, count: Int, _ body: (Int) -> Void) {
        while true {
            let i = counter.add(1, ordering: .relaxed).oldValue
            guard i < count else { return }
            body(i)
        }
    }

    /// Runs `body` on the batch's slices taken from region 1's queue (`nextSlice`).
    @inline(__always)
    func forEachSlice(_ body: (Int) -> Void) {
        Trainer.takeInTurn(from: nextSlice, count: workers, body)
    }

    /// Region 1 of the step: for each slice the worker takes from the queue, or its part of the team's stages.
    func pass(part w: Int) {
        if let team { return runStages(team, worker: w) }
        forEachSlice { pass(slice: $0) }
    }

    /// Slice `w` of the batch: binarize and draw noise for its rows, then the forward pass and the backward pass of
    /// the activations (`Objective.evaluate` on workspaces that defer weight gradients). Everything it writes is the
    /// slice's own (workspace, sums, failure code, gradient buffer) and every draw is keyed by row, so the result
    /// does not depend on which worker computes it.
    func pass(slice w: Int) {
        let step = inputs!
        let slice = Parallel.slice(step.rows, parts: workers, part: w)
        let ws = workspaces[w]
        guard !slice.isEmpty else {
            workerSums[w] = TermSums()
            workerFailures[w] = 0
            return
        }
        let samples = model.configuration.samples
        prepareInputs(rows: slice, of: step, into: ws)
        do {
            workerSums[w] = try Objective.evaluate(
                model: model, parameters: model.store.parameters.pointer, rows: slice.count, samples: samples,
                workspace: ws, gradients: workerGradients[w].pointer, lossScale: 1 / Float(step.rows),
                accumulate: true)
            workerFailures[w] = Trainer.diagnose(ws, rows: slice.count, samples: samples,
                                                 mixture: model.mixture != nil, width: model.posterior.parameterCount)
        } catch {
            workerFailures[w] = 1
        }
    }

    /// Binarized pixels and the posterior's noise for the batch rows `rows`, each drawn from streams keyed by row.
    func prepareInputs(rows slice: Range<Int>, of step: StepInputs, into ws: StepWorkspace<Float>) {
        let k = model.configuration.latent, samples = model.configuration.samples
        binarize(rows: slice, of: step, into: ws.x.pointer)
        for (j, row) in slice.enumerated() {
            var noise = RandomStream(seed: seed, purpose: .noise, step: UInt64(step.step), index: UInt64(row))
            for s in 0..<samples {
                noise.fillNormal(ws.noise.pointer + (s * slice.count + j) * k, count: k)
            }
        }
    }

    /// Fresh binarized pixels for the batch rows `rows` into consecutive rows of `x`, each row from its own stream
    /// keyed by (seed, step, row): eight rows at a time through `RandomStreams8`, the rest one by one (the same pixels
    /// as row by row).
    func binarize(rows: Range<Int>, of step: StepInputs, into x: UnsafeMutablePointer<Float>) {
        let d = model.configuration.inputs
        func stream(_ row: Int) -> RandomStream {
            RandomStream(seed: seed, purpose: .binarization, step: UInt64(step.step), index: UInt64(row))
        }
        func pixels(_ row: Int) -> UnsafePointer<UInt8> { step.pixels + step.order[step.start + row] * d }
        var row = rows.lowerBound
        while row + 8 <= rows.upperBound {
            let first = row
            var streams = RandomStreams8 { stream(first + $0) }
            Binarization.sample(pixels: { pixels(first + $0) }, count: d, thresholds: step.thresholds,
                                rng: &streams, into: x + (row - rows.lowerBound) * d)
            row += 8
        }
        while row < rows.upperBound {
            var bits = stream(row)
            Binarization.sample(pixels: pixels(row), count: d, thresholds: step.thresholds, rng: &bits,
                                into: x + (row - rows.lowerBound) * d)
            row += 1
        }
    }

    /// Runs `body` on the blocks taken from region 2's queue (`nextUpdateBlock`).
    @inline(__always)
    func forEachUpdateBlock(_ body: (LayerTask, Range<Int>) -> Void) {
        Trainer.takeInTurn(from: nextUpdateBlock, count: updateBlocks.count) { i in
            body(layerTasks[updateBlocks[i].task], updateBlocks[i].outputs)
        }
    }

    /// The operands of a layer's weight gradient over a batch of `batchRows`, as `body(input x, pre-activation
    /// gradient dy, rows, first)` for each stretch of rows that one GEMM can take (`first` is true for the first):
    /// each worker's slice (times the importance samples in the decoder), or with tensor parallelism the runs of
    /// adjacent full blocks of the shared workspace, usually the whole batch in one GEMM.
    func forEachOperand(of task: LayerTask, batchRows: Int,
                        _ body: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void) {
        func operands(_ ws: StepWorkspace<Float>) -> (UnsafePointer<Float>, UnsafePointer<Float>) {
            let mlp = task.isDecoder ? ws.decoder : ws.encoder
            let input = task.index > 0 ? mlp.outputs[task.index - 1].pointer
                : (task.isDecoder ? ws.z.pointer : ws.x.pointer)
            return (UnsafePointer(input), UnsafePointer(mlp.gradients[task.index].pointer))
        }
        let rowsPerExample = task.isDecoder ? model.configuration.samples : 1
        var first = true
        if let team, let shared = teamWorkspace {
            let (x, dy) = operands(shared)
            team.forEachRun(rowsPerExample: rowsPerExample) { start, rows in
                body(x + start * task.layer.inputs, dy + start * task.layer.outputs, rows, first)
                first = false
            }
            return
        }
        for v in 0..<workers {
            let n = Parallel.slice(batchRows, parts: workers, part: v).count
            guard n > 0 else { continue }
            let (x, dy) = operands(workspaces[v])
            body(x, dy, n * rowsPerExample, first)
            first = false
        }
    }

    /// Region 2 of the step, part `w`: the worker takes blocks of output rows from the queue (with tensor parallelism,
    /// its own blocks first), forms each block's dW and db over the whole batch in its block buffer
    /// (`forEachOperand`) and updates the block with Adam; then the parameters
    /// outside the layers are summed over the workers' buffers and updated, split by range.
    func update(part w: Int) {
        let rows = inputs!.rows
        let p = model.store.parameters.pointer
        let g = workerGradients[0].pointer
        let block = blockGradients[w].pointer
        func update(_ task: LayerTask, _ share: Range<Int>) {
            let layer = task.layer
            let bias = block + share.count * layer.inputs
            // The first encoder layer's gradient, when it came as partial sums, is added up here, block by block.
            if let team, !task.isDecoder, task.index == 0, gradientIsPartial[0][0] {
                addPartials(decoder: false, layer: 0, columns: share, team: team)
            }
            forEachOperand(of: task, batchRows: rows) { x, dy, n, first in
                layer.weightGradients(input: x, outputGradient: dy, rows: n, outputRange: share, accumulate: !first,
                                      weights: block, bias: bias)
            }
            let weights = layer.weight.offset + share.lowerBound * layer.inputs
            adam.update(parameters: p, range: weights..<(weights + share.count * layer.inputs), blockGradient: block)
            let biases = layer.bias.offset + share.lowerBound
            adam.update(parameters: p, range: biases..<(biases + share.count), blockGradient: bias)
        }
        if team != nil {
            forEachOwnedBlock(worker: w) { update(layerTasks[$0.task], $0.outputs) }
        } else {
            forEachUpdateBlock(update)
        }
        guard !otherParameters.isEmpty else { return }
        let part = Parallel.slice(otherParameters.count, parts: workers, part: w)
        let range = (otherParameters.lowerBound + part.lowerBound)..<(otherParameters.lowerBound + part.upperBound)
        if workers == 2 {
            adam.update(parameters: p, gradients: g, plus: workerGradients[1].pointer, range: range,
                        zeroingGradients: true)
            return
        }
        for other in 1..<max(1, workers) {
            let h = workerGradients[other].pointer
            for i in range {
                g[i] += h[i]
                h[i] = 0
            }
        }
        adam.update(parameters: p, gradients: g, range: range, zeroingGradients: true)
    }
}

/// What the regions of one step read: the batch and pointers into the epoch's order, the images and the
/// binarization thresholds (valid while the regions run).
struct StepInputs {
    let start: Int, rows: Int, step: Int
    let order: UnsafePointer<Int>
    let pixels: UnsafePointer<UInt8>
    let thresholds: UnsafePointer<UInt32>
}

/// The two parallel regions of a step as objects made once, so that starting them allocates nothing. They refer to
/// the trainer without owning it (it owns them), set once at the end of its initializer.
final class StepRegions {
    final class Region: ParallelRegion {
        unowned(unsafe) var trainer: Trainer?
        /// What part `part` does (replaceable by tests, e.g. to make a worker late).
        var body: (Trainer, Int) -> Void
        init(_ body: @escaping (Trainer, Int) -> Void) { self.body = body }
        func run(part: Int) { body(trainer!, part) }
    }
    let pass = Region { $0.pass(part: $1) }
    let update = Region { $0.update(part: $1) }
}

/// A block of output rows of one layer: region 2's unit of work.
struct UpdateBlock {
    let task: Int
    let outputs: Range<Int>

    /// Each layer split into up to two blocks per worker (at least 32 rows each, so the GEMMs stay efficient),
    /// ordered by their GEMM work, largest first: the queue then ends on small blocks that even out the workers.
    /// One worker takes each layer whole.
    static func queue(_ tasks: [LayerTask], workers: Int) -> [UpdateBlock] {
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
    static func owned(_ tasks: [LayerTask], team: ColumnTeam, batchSize: Int, samples: Int) -> [[UpdateBlock]] {
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
}

/// A layer whose weight gradient the trainer forms in its second region.
struct LayerTask {
    let layer: Linear
    /// Position in its MLP (its input is the previous layer's output, or x / z for the first).
    let index: Int
    let isDecoder: Bool
}
