import LatentCore
import LatentEvaluation
import LatentModels

extension TensorParallelStep {
    /// Task `u` of `stage`: block u's per-example work, or column block u of a layer over the whole batch.
    package func run(_ stage: TeamStage, task u: Int) {
        let p = UnsafePointer(model.store.parameters.pointer)
        let samples = model.configuration.samples
        let ws = blocks[u]
        let rows = team.examples[u]
        switch stage {
        case let .forward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder, rowsPerExample = decoder ? samples : 1
            let columns = self.columns(of: stage, task: u)
            let input = UnsafePointer(decoder ? shared.z.pointer : shared.x.pointer)
            let workspace = decoder ? shared.decoder : shared.encoder
            mlp.forwardProducts(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample,
                                parameters: p, input: input, workspace: workspace)
            mlp.forwardActivation(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample,
                                  parameters: p, workspace: workspace)
        case let .backward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder, rowsPerExample = decoder ? samples : 1
            let columns = self.columns(of: stage, task: u)
            let workspace = decoder ? shared.decoder : shared.encoder
            mlp.backwardProducts(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample,
                                 parameters: p, workspace: workspace)
            mlp.backwardActivation(layer: l, columns: columns, team: team, rowsPerExample: rowsPerExample,
                                   workspace: workspace)
        case let .partialBackward(decoder, l):
            if gradientIsPartial[decoder ? 1 : 0][l] {
                addPartials(decoder: decoder, layer: l, columns: columns(of: stage, task: u))
            }
            partialProducts(decoder: decoder, layer: l, task: u)
        case .prepare:
            blockSums[u] = TermSums()
            blockFailures[u] = nil
            guard rows > 0, let batch else { return }
            batch.prepare(rows: Parallel.slice(batch.rows, parts: workers, part: u), model: model, into: ws)
        case .encoderHead, .afterEncoder:
            guard rows > 0 else { return }
            if case .encoderHead = stage { encoderHead(forward: true, block: u) }
            do {
                try objective.afterEncoder(model: model, rows: rows, samples: samples, workspace: ws)
            } catch {
                // The block's later stages compute on whatever the failed factorization left; the batch is dropped.
                blockFailures[u] = .factorization
            }
        case .afterDecoder:
            guard rows > 0, let batch else { return }
            blockSums[u] = objective.afterDecoder(
                model: model, parameters: p, rows: rows, samples: samples, workspace: ws,
                gradients: updates.workerGradients[u].pointer, lossScale: batch.lossScale, accumulate: true)
        case .afterDecoderBackward:
            guard rows > 0, let batch else { return }
            if gradientIsPartial[1][0] { addPartials(block: u, rows: rows * samples) }
            model.decoder.layers[0].inputGradient(parameters: p, outputGradient: ws.decoder.gradients[0].pointer,
                                                  rows: rows * samples, into: ws.dz.pointer)
            objective.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: samples, workspace: ws,
                                           gradients: updates.workerGradients[u].pointer,
                                           lossScale: batch.lossScale, accumulate: true)
            if blockFailures[u] == nil { blockFailures[u] = StepFailure.diagnose(ws, rows: rows, model: model) }
            if headByBlocks { encoderHead(forward: false, block: u) }
        }
    }

    /// The columns task `u` computes in a layer stage: output columns forward, input columns backward, its own rows
    /// of W (output columns) in a partial-sum stage.
    package func columns(of stage: TeamStage, task u: Int) -> Range<Int> {
        let samples = model.configuration.samples
        switch stage {
        case let .forward(decoder, l), let .backward(decoder, l), let .partialBackward(decoder, l):
            let layer = (decoder ? model.decoder : model.encoder).layers[l]
            var forward = true
            if case .backward = stage { forward = false }
            let (width, inner) = forward ? (layer.outputs, layer.inputs) : (layer.inputs, layer.outputs)
            return team.columns(width, inner: inner, rows: team.shortestRun(rowsPerExample: decoder ? samples : 1),
                                part: u)
        default:
            return 0..<0
        }
    }

    /// Task u's partial sum of the gradient of layer l − 1's output: dy W over its own columns of dy (the rows of W
    /// it owns), into its own buffer.
    package func partialProducts(decoder: Bool, layer l: Int, task u: Int) {
        let p = UnsafePointer(model.store.parameters.pointer)
        let layer = (decoder ? model.decoder : model.encoder).layers[l]
        let buffers = decoder ? shared.decoder : shared.encoder
        let own = columns(of: .partialBackward(decoder: decoder, layer: l), task: u)
        let partial = partialGradient(task: u, decoder: decoder, layer: l - 1)
        team.forEachRun(rowsPerExample: decoder ? model.configuration.samples : 1) { first, rows in
            let c = partial + first * layer.inputs
            guard !own.isEmpty else { return c.update(repeating: 0, count: rows * layer.inputs) }
            Float.gemm(.none, .none, rows: rows, columns: layer.inputs, inner: own.count, alpha: 1,
                       a: buffers.gradients[l].pointer + first * layer.outputs + own.lowerBound,
                       lda: layer.outputs, b: p + layer.weight.offset + own.lowerBound * layer.inputs,
                       ldb: layer.inputs, beta: 0, c: c, ldc: layer.inputs)
        }
    }

    /// The encoder's last layer on block u's rows (`TeamStage.encoderHead`): its forward pass with bias and
    /// activation, or (`forward: false`) the gradient through it to the layer below's pre-activation.
    package func encoderHead(forward: Bool, block u: Int) {
        let p = UnsafePointer(model.store.parameters.pointer)
        let ws = blocks[u], rows = team.examples[u]
        let encoder = model.encoder, top = encoder.layers.count - 1
        let head = encoder.layers[top]
        if forward {
            let input = top > 0 ? UnsafePointer(ws.encoder.outputs[top - 1].pointer) : UnsafePointer(ws.x.pointer)
            head.forward(parameters: p, input: input, rows: rows, output: ws.encoder.outputs[top].pointer)
            encoder.activation(of: top).forward(ws.encoder.outputs[top].pointer, bias: p + head.bias.offset, rows: rows,
                                                columns: head.outputs)
        } else if top > 0 {
            head.inputGradient(parameters: p, outputGradient: ws.encoder.gradients[top].pointer, rows: rows,
                               into: ws.encoder.gradients[top - 1].pointer)
            encoder.activation(of: top - 1).backward(output: ws.encoder.outputs[top - 1].pointer,
                                                     gradient: ws.encoder.gradients[top - 1].pointer,
                                                     count: rows * head.inputs)
        }
    }

    /// Task u's buffer for its partial sum of layer l's output gradient: task 0's is the shared workspace's own.
    package func partialGradient(task u: Int, decoder: Bool, layer l: Int) -> UnsafeMutablePointer<Float> {
        u == 0 ? (decoder ? shared.decoder : shared.encoder).gradients[l].pointer
            : partialGradients[u - 1][decoder ? 1 : 0][l].pointer
    }

    /// Layer l's output gradient on `columns` over the whole batch from its partial sums (in task order, so the sum
    /// is the same whoever adds it up), times the derivative of l's activation: its pre-activation gradient.
    package func addPartials(decoder: Bool, layer l: Int, columns: Range<Int>) {
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
    package func addPartials(block u: Int, rows: Int) {
        let width = model.decoder.layers[0].outputs
        addPartials(decoder: true, layer: 0, start: u * team.capacity * model.configuration.samples * width,
                    count: rows * width)
    }

    /// Elements `start..<start + count` of layer l's output gradient: task 0's partial sum plus the others' in task
    /// order, times the derivative of l's activation (the last sum added in the same pass).
    @inline(__always)
    package func addPartials(decoder: Bool, layer l: Int, start: Int, count: Int) {
        let mlp = decoder ? model.decoder : model.encoder
        let buffers = decoder ? shared.decoder : shared.encoder
        let g = buffers.gradients[l].pointer + start
        let d = decoder ? 1 : 0
        for u in 1..<(workers - 1) {
            let h = partialGradients[u - 1][d][l].pointer + start
            for i in 0..<count { g[i] += h[i] }
        }
        mlp.activation(of: l).backward(output: buffers.outputs[l].pointer + start, gradient: g,
                                       adding: partialGradients[workers - 2][d][l].pointer + start, count: count)
    }
}
