import LatentCore

/// One stage of the tensor-parallel step (`ColumnTeam`): per-example work on each block of the batch, or one layer's
/// pass split into column blocks.
enum TeamStage: Equatable {
    /// Binarized inputs and noise of block u.
    case prepare
    /// Column block u of a layer's forward pass.
    case forward(decoder: Bool, layer: Int)
    /// Block u's rows through the encoder's last layer (when it is too narrow to split by columns), then
    /// `Objective.afterEncoder`: both per block, so no barrier lies between them.
    case encoderHead
    /// Block u's per-example work between the passes (`Objective.afterEncoder`, …).
    case afterEncoder, afterDecoder
    /// Block u's dz (the decoder's input gradient) and `Objective.afterDecoderBackward`, then its diagnosis; with a
    /// narrow encoder head, also the block's gradient through the head to the layer below.
    case afterDecoderBackward
    /// Column block u of the gradient of layer l − 1's output (l ≥ 1), through layer l's weights and l − 1's activation.
    case backward(decoder: Bool, layer: Int)
    /// Task u's partial sum of the gradient of layer l − 1's output (l ≥ 1), dy W over column block u of dy (the
    /// rows of W that u owns), into its own buffer; first, when layer l's gradient itself came as partial sums, that
    /// block of it added up (times its activation's derivative). Whoever reads a gradient first adds it up: the
    /// next `partialBackward`, `afterDecoderBackward` for the decoder's first layer, region 2 for the encoder's.
    case partialBackward(decoder: Bool, layer: Int)

    /// The stages of one step of `model` on `workers` workers at batches of `batchSize`, in order; a barrier separates
    /// each from the next. An encoder head narrower than a 16-column group per worker (the posterior's parameters, 2k
    /// columns for a diagonal posterior) runs by blocks of the batch instead: a column split would leave a worker
    /// nearly idle, and two barriers fall away. An MLP's backward pass runs as partial sums
    /// (`splitsInnerDimension(rows:)`) over up to `partialSumRows` rows, else by column blocks.
    static func schedule(_ model: VariationalAutoencoder<Float>, workers: Int, batchSize: Int) -> [TeamStage] {
        let encoder = model.encoder.layers.count, decoder = model.decoder.layers.count
        let headByBlocks = model.encoder.layers.last!.outputs < 16 * workers
        let encoderColumns = headByBlocks ? encoder - 1 : encoder
        func backward(decoder: Bool, layer: Int) -> TeamStage {
            splitsInnerDimension(rows: batchSize * (decoder ? model.configuration.samples : 1))
                ? .partialBackward(decoder: decoder, layer: layer) : .backward(decoder: decoder, layer: layer)
        }
        return [.prepare]
            + (0..<encoderColumns).map { .forward(decoder: false, layer: $0) }
            + [headByBlocks ? .encoderHead : .afterEncoder]
            + (0..<decoder).map { .forward(decoder: true, layer: $0) } + [.afterDecoder]
            + stride(from: decoder - 1, through: 1, by: -1).map { backward(decoder: true, layer: $0) }
            + [.afterDecoderBackward]
            + stride(from: encoderColumns - 1, through: 1, by: -1).map { backward(decoder: false, layer: $0) }
    }

    /// The most rows of an MLP's pass whose backward pass runs as partial sums.
    static let partialSumRows = 64

    /// Whether an MLP's backward pass over `rows` rows runs as partial sums (`partialBackward`): each worker's GEMMs
    /// then read only its own rows of the weights, as its forward pass and its Adam update do, and only the columns
    /// of the gradient it formed itself, at the cost of writing a whole-width partial sum that the next stage adds
    /// up. On the 2-core machine of the README the step ran 1.11× faster at batch 16 and 1.06–1.11× at 32 than with
    /// column blocks, the same at 64 and 100 (0.98–1.01×) and 0.99× at 128 (in-process alternation, 100 pairs).
    static func splitsInnerDimension(rows: Int) -> Bool { rows <= partialSumRows }

    /// Whether this is the encoder head's stage (the schedule put the head on blocks of the batch).
    var isEncoderHead: Bool { if case .encoderHead = self { true } else { false } }
}

extension Trainer {
    /// Worker `w`'s part of region 1 under tensor parallelism: every stage's tasks it claims, then the barrier.
    /// With `productsOnly`, the same schedule with each task's GEMMs alone (`GEMMReplay`).
    func runStages(_ team: ColumnTeam, worker w: Int, productsOnly: Bool = false) {
        for (index, stage) in stages.enumerated() {
            team.forEachTask(stage: index, worker: w) { run(stage, task: $0, team: team, productsOnly: productsOnly) }
            if index < stages.count - 1 { team.barrier.wait() }
        }
    }

    /// Task `u` of `stage`: block u's per-example work, or column block u of a layer over the whole batch. With
    /// `productsOnly`, its GEMMs alone, the same calls on the same operands (`GEMMReplay` times them).
    func run(_ stage: TeamStage, task u: Int, team: ColumnTeam, productsOnly: Bool = false) {
        let step = inputs
        let p = UnsafePointer(model.store.parameters.pointer)
        let samples = model.configuration.samples
        let shared = teamWorkspace!
        let ws = workspaces[u]
        let rows = team.examples[u]
        switch stage {
        case let .forward(decoder, l), let .backward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder
            let layer = mlp.layers[l], rowsPerExample = decoder ? samples : 1
            let workspace = decoder ? shared.decoder : shared.encoder
            // Forward splits the layer's outputs, backward its inputs (the columns of dx = dy W).
            let forward = if case .forward = stage { true } else { false }
            let (width, inner) = forward ? (layer.outputs, layer.inputs) : (layer.inputs, layer.outputs)
            let columns = team.columns(width, inner: inner, rows: team.shortestRun(rowsPerExample: rowsPerExample),
                                       part: u)
            if forward {
                mlp.forward(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample, parameters: p,
                            input: UnsafePointer(decoder ? shared.z.pointer : shared.x.pointer), workspace: workspace,
                            productOnly: productsOnly)
            } else {
                mlp.backward(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample, parameters: p,
                             workspace: workspace, productOnly: productsOnly)
            }
        case let .partialBackward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder
            let layer = mlp.layers[l], rowsPerExample = decoder ? samples : 1
            let buffers = decoder ? shared.decoder : shared.encoder
            let own = team.columns(layer.outputs, inner: layer.inputs,
                                   rows: team.shortestRun(rowsPerExample: rowsPerExample), part: u)
            if !productsOnly && gradientIsPartial[decoder ? 1 : 0][l] {
                addPartials(decoder: decoder, layer: l, columns: own, team: team)
            }
            let partial = partialGradient(task: u, decoder: decoder, layer: l - 1)
            team.forEachRun(rowsPerExample: rowsPerExample) { first, rows in
                let c = partial + first * layer.inputs
                guard !own.isEmpty else { return c.update(repeating: 0, count: rows * layer.inputs) }
                Float.gemm(.none, .none, rows: rows, columns: layer.inputs, inner: own.count, alpha: 1,
                           a: buffers.gradients[l].pointer + first * layer.outputs + own.lowerBound,
                           lda: layer.outputs, b: p + layer.weight.offset + own.lowerBound * layer.inputs,
                           ldb: layer.inputs, beta: 0, c: c, ldc: layer.inputs)
            }
        case .prepare:
            guard !productsOnly, let step else { return }
            workerSums[u] = TermSums()
            workerFailures[u] = 0
            guard rows > 0 else { return }
            prepareInputs(rows: Parallel.slice(step.rows, parts: workers, part: u), of: step, into: ws)
        case .encoderHead, .afterEncoder:
            guard rows > 0 else { return }
            if case .encoderHead = stage {
                encoderHead(forward: true, block: ws, rows: rows, parameters: p, productOnly: productsOnly)
            }
            guard !productsOnly else { return }
            do {
                try Objective.afterEncoder(model: model, rows: rows, samples: samples, workspace: ws)
            } catch {
                // The block's later stages compute on whatever the failed factorization left; the batch is dropped.
                workerFailures[u] = 1
            }
        case .afterDecoder:
            guard !productsOnly, let step, rows > 0 else { return }
            workerSums[u] = Objective.afterDecoder(model: model, parameters: p, rows: rows, samples: samples,
                                                   workspace: ws, gradients: true, lossScale: 1 / Float(step.rows))
        case .afterDecoderBackward:
            guard rows > 0 else { return }
            if !productsOnly && gradientIsPartial[1][0] { addPartials(block: u, rows: rows * samples, team: team) }
            model.decoder.layers[0].inputGradient(parameters: p, outputGradient: ws.decoder.gradients[0].pointer,
                                                  rows: rows * samples, into: ws.dz.pointer)
            if !productsOnly, let step {
                Objective.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: samples,
                                               workspace: ws, gradients: workerGradients[u].pointer,
                                               lossScale: 1 / Float(step.rows), accumulate: true)
                if workerFailures[u] == 0 {
                    workerFailures[u] = Trainer.diagnose(ws, rows: rows, samples: samples,
                                                         mixture: model.mixture != nil,
                                                         width: model.posterior.parameterCount)
                }
            }
            if headByBlocks {
                encoderHead(forward: false, block: ws, rows: rows, parameters: p, productOnly: productsOnly)
            }
        }
    }

    /// The encoder's last layer on one block's rows (`TeamStage.encoderHead`): its forward pass with bias, or
    /// (`forward: false`) the gradient through it to the layer below's pre-activation; the GEMM alone with
    /// `productOnly` (`GEMMReplay`).
    func encoderHead(forward: Bool, block ws: StepWorkspace<Float>, rows: Int, parameters p: UnsafePointer<Float>,
                     productOnly: Bool = false) {
        let encoder = model.encoder, top = encoder.layers.count - 1
        let head = encoder.layers[top]
        if forward {
            let input = top > 0 ? UnsafePointer(ws.encoder.outputs[top - 1].pointer) : UnsafePointer(ws.x.pointer)
            head.forward(parameters: p, input: input, rows: rows, output: ws.encoder.outputs[top].pointer)
            if productOnly { return }
            encoder.activation(of: top).forward(ws.encoder.outputs[top].pointer, bias: p + head.bias.offset, rows: rows,
                                                columns: head.outputs)
        } else if top > 0 {
            head.inputGradient(parameters: p, outputGradient: ws.encoder.gradients[top].pointer, rows: rows,
                               into: ws.encoder.gradients[top - 1].pointer)
            if productOnly { return }
            encoder.activation(of: top - 1).backward(output: ws.encoder.outputs[top - 1].pointer,
                                                     gradient: ws.encoder.gradients[top - 1].pointer,
                                                     count: rows * head.inputs)
        }
    }

    /// Task u's buffer for its partial sum of layer l's output gradient: task 0's is the shared workspace's own.
    func partialGradient(task u: Int, decoder: Bool, layer l: Int) -> UnsafeMutablePointer<Float> {
        u == 0 ? (decoder ? teamWorkspace!.decoder : teamWorkspace!.encoder).gradients[l].pointer
            : partialGradients[u - 1][decoder ? 1 : 0][l].pointer
    }

    /// Layer l's output gradient on `columns` over the whole batch from its partial sums (in task order, so the sum
    /// is the same whoever adds it up), times the derivative of l's activation: its pre-activation gradient.
    func addPartials(decoder: Bool, layer l: Int, columns: Range<Int>, team: ColumnTeam) {
        guard !columns.isEmpty else { return }
        let width = (decoder ? model.decoder : model.encoder).layers[l].outputs
        team.forEachRun(rowsPerExample: decoder ? model.configuration.samples : 1) { first, rows in
            for r in first..<(first + rows) {
                addPartials(decoder: decoder, layer: l, start: r * width + columns.lowerBound, count: columns.count)
            }
        }
    }

    /// The decoder's first layer's output gradient on block u's `rows` rows from its partial sums, times the
    /// activation's derivative.
    func addPartials(block u: Int, rows: Int, team: ColumnTeam) {
        let width = model.decoder.layers[0].outputs
        addPartials(decoder: true, layer: 0, start: u * team.capacity * model.configuration.samples * width,
                    count: rows * width)
    }

    /// Elements `start..<start + count` of layer l's output gradient: task 0's partial sum plus the others' in task
    /// order, times the derivative of l's activation (the last sum added in the same pass).
    @inline(__always)
    func addPartials(decoder: Bool, layer l: Int, start: Int, count: Int) {
        let mlp = decoder ? model.decoder : model.encoder
        let buffers = decoder ? teamWorkspace!.decoder : teamWorkspace!.encoder
        let g = buffers.gradients[l].pointer + start
        let d = decoder ? 1 : 0
        for u in 1..<(workers - 1) {
            let h = partialGradients[u - 1][d][l].pointer + start
            for i in 0..<count { g[i] += h[i] }
        }
        mlp.activation(of: l).backward(output: buffers.outputs[l].pointer + start, gradient: g,
                                       adding: partialGradients[workers - 2][d][l].pointer + start, count: count)
    }

    /// Region 2's blocks for worker `w` under tensor parallelism: the ones it owns, then any of the others' not yet
    /// taken (each block's update is the same whoever computes it).
    func forEachOwnedBlock(worker w: Int, _ body: (UpdateBlock) -> Void) {
        for i in 0..<workers {
            let owner = (w + i) % workers
            Trainer.takeInTurn(from: ownedTaken[owner].bits, count: ownedBlocks[owner].count) {
                body(ownedBlocks[owner][$0])
            }
        }
    }
}
