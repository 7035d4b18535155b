import LatentCore

/// One stage of the tensor-parallel step (`ColumnTeam`): per-example work on each block of the batch, or one layer's
/// pass split into column blocks.
enum TeamStage {
    /// Binarized inputs and noise of block u.
    case prepare
    /// Column block u of a layer's forward pass.
    case forward(decoder: Bool, layer: Int)
    /// Block u's per-example work between the passes (`Objective.afterEncoder`, …).
    case afterEncoder, afterDecoder
    /// Block u's dz (the decoder's input gradient) and `Objective.afterDecoderBackward`, then its diagnosis.
    case afterDecoderBackward
    /// Column block u of the gradient of layer l − 1's output (l ≥ 1), through layer l's weights and l − 1's activation.
    case backward(decoder: Bool, layer: Int)

    /// The stages of one step of `model`, in order; a barrier separates each from the next.
    static func schedule(_ model: VariationalAutoencoder<Float>) -> [TeamStage] {
        let encoder = model.encoder.layers.count, decoder = model.decoder.layers.count
        return [.prepare]
            + (0..<encoder).map { .forward(decoder: false, layer: $0) } + [.afterEncoder]
            + (0..<decoder).map { .forward(decoder: true, layer: $0) } + [.afterDecoder]
            + stride(from: decoder - 1, through: 1, by: -1).map { .backward(decoder: true, layer: $0) }
            + [.afterDecoderBackward]
            + stride(from: encoder - 1, through: 1, by: -1).map { .backward(decoder: false, layer: $0) }
    }
}

extension Trainer {
    /// Worker `w`'s part of region 1 under tensor parallelism: every stage's tasks it claims, then the barrier.
    func runStages(_ team: ColumnTeam, worker w: Int) {
        for (index, stage) in stages.enumerated() {
            team.forEachTask(stage: index, worker: w) { run(stage, task: $0, team: team) }
            if index < stages.count - 1 { team.barrier.wait() }
        }
    }

    /// Task `u` of `stage`: block u's per-example work, or column block u of a layer over the whole batch.
    func run(_ stage: TeamStage, task u: Int, team: ColumnTeam) {
        let step = inputs!
        let p = UnsafePointer(model.store.parameters.pointer)
        let samples = model.configuration.samples
        let shared = teamWorkspace!
        let ws = workspaces[u]
        let rows = team.examples[u]
        switch stage {
        case let .forward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder
            mlp.forward(layer: l, columns: team.columns(mlp.layers[l].outputs, part: u), team: team,
                        rowsPerExample: decoder ? samples : 1, parameters: p,
                        input: UnsafePointer(decoder ? shared.z.pointer : shared.x.pointer),
                        workspace: decoder ? shared.decoder : shared.encoder)
        case let .backward(decoder, l):
            let mlp = decoder ? model.decoder : model.encoder
            mlp.backward(layer: l, columns: team.columns(mlp.layers[l].inputs, part: u), team: team,
                         rowsPerExample: decoder ? samples : 1, parameters: p,
                         workspace: decoder ? shared.decoder : shared.encoder)
        case .prepare:
            workerSums[u] = TermSums()
            workerFailures[u] = 0
            guard rows > 0 else { return }
            prepareInputs(rows: Parallel.slice(step.rows, parts: workers, part: u), of: step, into: ws)
        case .afterEncoder:
            guard rows > 0 else { return }
            do {
                try Objective.afterEncoder(model: model, rows: rows, samples: samples, workspace: ws)
            } catch {
                // The block's later stages compute on whatever the failed factorization left; the batch is dropped.
                workerFailures[u] = 1
            }
        case .afterDecoder:
            guard rows > 0 else { return }
            workerSums[u] = Objective.afterDecoder(model: model, parameters: p, rows: rows, samples: samples,
                                                   workspace: ws, gradients: true, lossScale: 1 / Float(step.rows))
        case .afterDecoderBackward:
            guard rows > 0 else { return }
            model.decoder.layers[0].inputGradient(parameters: p, outputGradient: ws.decoder.gradients[0].pointer,
                                                  rows: rows * samples, into: ws.dz.pointer)
            Objective.afterDecoderBackward(model: model, parameters: p, rows: rows, samples: samples, workspace: ws,
                                           gradients: workerGradients[u].pointer, lossScale: 1 / Float(step.rows),
                                           accumulate: true)
            if workerFailures[u] == 0 {
                workerFailures[u] = Trainer.diagnose(ws, rows: rows, samples: samples, mixture: model.mixture != nil,
                                                     width: model.posterior.parameterCount)
            }
        }
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
