import LatentCore
import LatentEvaluation
import LatentModels

/// One stage of the tensor-parallel step (`ColumnTeam`): per-example work on each block of the batch, or one layer's
/// pass split into column blocks.
package enum TeamStage: Equatable {
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
    package static func schedule(_ model: VariationalAutoencoder<Float>, workers: Int, batchSize: Int) -> [TeamStage] {
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
    package static let partialSumRows = 64

    /// Whether an MLP's backward pass over `rows` rows runs as partial sums (`partialBackward`): each worker's GEMMs
    /// then read only its own rows of the weights, as its forward pass and its Adam update do, and only the columns
    /// of the gradient it formed itself, at the cost of writing a whole-width partial sum that the next stage adds
    /// up (docs/PERFORMANCE.md § Tensor parallelism says where that pays).
    package static func splitsInnerDimension(rows: Int) -> Bool { rows <= partialSumRows }

    /// Whether this is the encoder head's stage (the schedule put the head on blocks of the batch).
    package var isEncoderHead: Bool { if case .encoderHead = self { true } else { false } }
}
