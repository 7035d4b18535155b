import LatentCore
import LatentModels
import LatentData

/// Why a picture of a model could not be made, and what to do about it.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    /// A latent map decodes a regular 2-D grid of codes, and this model's latent space has `latent` dimensions.
    case latentMapNeedsTwoDimensions(latent: Int)
    /// The request (`flag`) needs `needed` test images and the test set has `available`.
    case notEnoughTestImages(needed: Int, available: Int, flag: String)
    /// A count (`name` is its flag, e.g. `--count`) is below 1.
    case invalidCount(name: String, value: Int)
    /// A flag value whose grid would exceed `PNGWriter.maximumSide`; width and height as `ImageGrid.size` gives them.
    case imageTooLarge(flag: String, value: Int, maximum: Int, width: Int, height: Int)
    /// `count` codes or images (`what`) need `needed` values and `found` were given.
    case inputTooShort(what: String, count: Int, needed: Int, found: Int)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .latentMapNeedsTwoDimensions(latent):
            return "latent-map needs a model with a 2-dimensional latent space, this one has \(latent); "
                + "train one with --latent 2"
        case let .notEnoughTestImages(needed, available, flag):
            return "this needs \(needed) test images but the test set has only \(available); lower \(flag)"
        case let .invalidCount(name, value):
            return "\(name) must be at least 1 (got \(value))"
        case let .imageTooLarge(flag, value, maximum, width, height):
            let size = width == Int.max || height == Int.max ? "" : "the image would be \(width)×\(height) pixels, "
            return "\(flag) must be at most \(maximum) (got \(value)): \(size)PNG images are at most "
                + "\(PNGWriter.maximumSide) pixels per side"
        case let .inputTooShort(what, count, needed, found):
            return "\(count) \(what) need \(needed) values, but \(found) were given"
        }
    }
}

/// What a trained model draws: decoder means for latent codes from the prior, from posterior means of images,
/// along straight lines between them, and over a regular 2-D grid — as pixel intensities and as image grids.
///
/// The decoder mean of a Bernoulli decoder is sigmoid(logits), the probability of each pixel being ink (MATH.md §1).
/// Every function processes at most `chunk` rows at a time through one reusable MLP workspace.
public enum Generation {
    /// Rows per encoder/decoder pass.
    @usableFromInline package static let chunk = 256

    /// Tile side of the models `latent train` makes (784 inputs = 28×28): what commands check flags against
    /// before a checkpoint is loaded.
    @usableFromInline package static let defaultTile = 28

    // MARK: - Image size limits

    /// Throws unless `count` prior samples in a near-square grid fit a PNG: at most n² for n tiles per side.
    @usableFromInline package static func checkSampleCount(_ count: Int, tile: Int = defaultTile) throws {
        let n = ImageGrid.maximumTiles(tile: tile)
        let columns = ImageGrid.squareColumns(count: count)
        try check("--count", count, maximum: n * n, size(count, columns: columns, tile: tile))
    }

    /// Throws unless `count` image–reconstruction pairs (2⌈√count⌉ tiles per row) fit a PNG: at most ⌊n/2⌋².
    @usableFromInline package static func checkReconstructionCount(_ count: Int, tile: Int = defaultTile) throws {
        let n = ImageGrid.maximumTiles(tile: tile) / 2
        let columns = ImageGrid.squareColumns(count: count)
        let (tiles, overflow) = count.multipliedReportingOverflow(by: 2)
        let layout = overflow ? (width: Int.max, height: Int.max) : size(tiles, columns: 2 * columns, tile: tile)
        try check("--count", count, maximum: n * n, layout)
    }

    /// Throws unless `pairs` rows of `steps` columns fit a PNG: each at most n.
    @usableFromInline package static func checkInterpolation(pairs: Int, steps: Int, tile: Int = defaultTile) throws {
        let n = ImageGrid.maximumTiles(tile: tile)
        let width = size(steps, columns: steps, tile: tile).width, height = size(pairs, columns: 1, tile: tile).height
        try check("--pairs", pairs, maximum: n, (width, height))
        try check("--steps", steps, maximum: n, (width, height))
    }

    /// Throws unless a side×side latent map fits a PNG: side at most n.
    @usableFromInline package static func checkLatentMap(side: Int, tile: Int = defaultTile) throws {
        let n = ImageGrid.maximumTiles(tile: tile)
        let (width, _) = size(side, columns: side, tile: tile)
        try check("--grid", side, maximum: n, (width, width))
    }

    /// The pixel size of `count` square tiles in `columns` columns, as `ImageGrid.compose` lays them out.
    private static func size(_ count: Int, columns: Int, tile: Int) -> (width: Int, height: Int) {
        ImageGrid.size(count: count, columns: columns, tileWidth: tile, tileHeight: tile)
    }

    private static func check(_ flag: String, _ value: Int, maximum: Int, _ size: (width: Int, height: Int)) throws {
        guard value <= maximum else {
            throw GenerationError.imageTooLarge(flag: flag, value: value, maximum: maximum, width: size.width,
                                                height: size.height)
        }
    }

    // MARK: - Intensities

    /// Decoder means sigmoid(decoder(z)) for `count` latent codes `z` (count × latent), as count × inputs values.
    /// Throws when `z` holds fewer values: the check stays in every build, as it guards the reads.
    public static func decode<T: BLASScalar>(_ model: VariationalAutoencoder<T>, latents z: [T], count: Int) throws
        -> [T] {
        let k = model.configuration.latent, d = model.configuration.inputs
        guard count >= 0, z.count / k >= count else {
            throw GenerationError.inputTooShort(what: "latent codes", count: count, needed: needed(count, k),
                                                found: z.count)
        }
        var out = [T](repeating: 0, count: count * d)
        guard count > 0 else { return out }
        let workspace = MLPWorkspace<T>(model.decoder, capacity: min(count, chunk))
        let p = UnsafePointer(model.store.parameters.pointer)
        z.withUnsafeBufferPointer { zs in
            out.withUnsafeMutableBufferPointer { o in
                var start = 0
                while start < count {
                    let rows = min(chunk, count - start)
                    model.decoder.forward(parameters: p, input: zs.baseAddress! + start * k, rows: rows,
                                          workspace: workspace)
                    let logits = workspace.output, target = o.baseAddress! + start * d
                    for i in 0..<(rows * d) { target[i] = ElementWise.sigmoid(logits[i]) }
                    start += rows
                }
            }
        }
        return out
    }

    /// `count` × `width` values, or `Int.max` past it.
    private static func needed(_ count: Int, _ width: Int) -> Int {
        let (product, overflow) = count.multipliedReportingOverflow(by: width)
        return overflow ? Int.max : product
    }

    /// Posterior means μ(x) (the first `latent` encoder outputs of every family) for `count` images x (count × inputs).
    /// Throws when `x` holds fewer values: the check stays in every build, as it guards the reads.
    public static func posteriorMeans<T: BLASScalar>(_ model: VariationalAutoencoder<T>, images x: [T], count: Int)
        throws -> [T] {
        let k = model.configuration.latent, d = model.configuration.inputs
        let width = model.configuration.posteriorParameterCount
        guard count >= 0, x.count / d >= count else {
            throw GenerationError.inputTooShort(what: "images", count: count, needed: needed(count, d), found: x.count)
        }
        var out = [T](repeating: 0, count: count * k)
        guard count > 0 else { return out }
        let workspace = MLPWorkspace<T>(model.encoder, capacity: min(count, chunk))
        let p = UnsafePointer(model.store.parameters.pointer)
        x.withUnsafeBufferPointer { xs in
            var start = 0
            while start < count {
                let rows = min(chunk, count - start)
                model.encoder.forward(parameters: p, input: xs.baseAddress! + start * d, rows: rows, workspace: workspace)
                let parameters = workspace.output
                for r in 0..<rows {
                    for i in 0..<k { out[(start + r) * k + i] = parameters[r * width + i] }
                }
                start += rows
            }
        }
        return out
    }

    /// `count` latent codes drawn from the model's prior: N(0, I), or for the mixture a uniformly chosen component j
    /// and z = m_j + exp(ℓ_j/2)·ε. Code i uses the stream keyed by (seed, i), so any prefix agrees across counts.
    public static func priorLatents<T: BLASScalar>(_ model: VariationalAutoencoder<T>, count: Int, seed: UInt64) -> [T] {
        let k = model.configuration.latent
        var z = [T](repeating: 0, count: count * k)
        let p = UnsafePointer(model.store.parameters.pointer)
        z.withUnsafeMutableBufferPointer { zs in
            for n in 0..<count {
                var rng = RandomStream(seed: seed, purpose: .sampling, index: UInt64(n))
                let row = zs.baseAddress! + n * k
                if let mixture = model.mixture {
                    let j = rng.index(below: mixture.components)
                    rng.fillNormal(row, count: k)
                    let means = p + mixture.means.offset + j * k, logVariances = p + mixture.logVariances.offset + j * k
                    for i in 0..<k { row[i] = means[i] + T.exp(logVariances[i] / 2) * row[i] }
                } else {
                    rng.fillNormal(row, count: k)
                }
            }
        }
        return z
    }

    /// `steps` points on the straight line from a to b, both ends included: a + t(b − a), t = s/(steps − 1).
    @usableFromInline package static func line<T: BLASScalar>(from a: ArraySlice<T>, to b: ArraySlice<T>, steps: Int) -> [T] {
        precondition(a.count == b.count, "line: endpoints of different dimension")
        var out = [T]()
        out.reserveCapacity(steps * a.count)
        for s in 0..<steps {
            let t = steps > 1 ? T(s) / T(steps - 1) : 0
            for (x, y) in zip(a, b) { out.append(x + t * (y - x)) }
        }
        return out
    }

    /// side² points of a regular grid over [−range, range]²: row r (top to bottom) has z₂ = range − r·h, column c
    /// has z₁ = −range + c·h, h = 2·range/(side − 1), so the picture reads like a plot with z₂ pointing up.
    @usableFromInline package static func gridLatents<T: BLASScalar>(side: Int, range: Double) -> [T] {
        var out = [T]()
        out.reserveCapacity(side * side * 2)
        let h = side > 1 ? 2 * range / Double(side - 1) : 0
        for r in 0..<side {
            for c in 0..<side {
                out.append(T(side > 1 ? -range + Double(c) * h : 0))
                out.append(T(side > 1 ? range - Double(r) * h : 0))
            }
        }
        return out
    }

    // MARK: - Image grids

    /// A near-square grid of `count` decoder means of prior samples.
    public static func sampleGrid<T: BLASScalar>(_ model: VariationalAutoencoder<T>, count: Int, seed: UInt64) throws -> GrayImage {
        guard count > 0 else { throw GenerationError.invalidCount(name: "--count", value: count) }
        let side = try ImageGrid.squareSide(pixels: model.configuration.inputs)
        try checkSampleCount(count, tile: side)
        let means = try decode(model, latents: priorLatents(model, count: count, seed: seed), count: count)
        return try ImageGrid.compose(tiles: means, count: count, tileWidth: side, tileHeight: side,
                                     columns: ImageGrid.squareColumns(count: count))
    }

    /// The first `count` test images, statically binarized as in evaluation, each followed on its right by its
    /// reconstruction (decoder mean at z = μ(x)); ⌈√count⌉ pairs per row.
    public static func reconstructionGrid<T: BLASScalar>(
        _ model: VariationalAutoencoder<T>, testImages: ImageSet, count: Int
    ) throws -> GrayImage {
        guard count > 0 else { throw GenerationError.invalidCount(name: "--count", value: count) }
        guard testImages.count >= count else {
            throw GenerationError.notEnoughTestImages(needed: count, available: testImages.count, flag: "--count")
        }
        let side = try ImageGrid.squareSide(pixels: model.configuration.inputs)
        try checkReconstructionCount(count, tile: side)
        let d = model.configuration.inputs
        let x = Binarization.evaluationInputs(testImages.prefix(count), mode: model.configuration.binarization,
                                              seed: Evaluator.testBinarizationSeed, as: T.self)
        let reconstructions = try decode(model, latents: posteriorMeans(model, images: x, count: count), count: count)
        var tiles = [T]()
        tiles.reserveCapacity(2 * count * d)
        for n in 0..<count {
            tiles += x[(n * d)..<((n + 1) * d)]
            tiles += reconstructions[(n * d)..<((n + 1) * d)]
        }
        return try ImageGrid.compose(tiles: tiles, count: 2 * count, tileWidth: side, tileHeight: side,
                                     columns: 2 * ImageGrid.squareColumns(count: count))
    }

    /// One row per pair of test images (2p, 2p + 1): the decoder means along the straight line between their
    /// posterior means, `steps` columns from the first image's μ to the second's.
    public static func interpolationGrid<T: BLASScalar>(
        _ model: VariationalAutoencoder<T>, testImages: ImageSet, pairs: Int, steps: Int
    ) throws -> GrayImage {
        guard pairs > 0 else { throw GenerationError.invalidCount(name: "--pairs", value: pairs) }
        guard steps > 0 else { throw GenerationError.invalidCount(name: "--steps", value: steps) }
        let side = try ImageGrid.squareSide(pixels: model.configuration.inputs)
        try checkInterpolation(pairs: pairs, steps: steps, tile: side)
        guard testImages.count >= 2 * pairs else {
            throw GenerationError.notEnoughTestImages(needed: 2 * pairs, available: testImages.count, flag: "--pairs")
        }
        let k = model.configuration.latent
        let x = Binarization.evaluationInputs(testImages.prefix(2 * pairs), mode: model.configuration.binarization,
                                              seed: Evaluator.testBinarizationSeed, as: T.self)
        let mu = try posteriorMeans(model, images: x, count: 2 * pairs)
        var path = [T]()
        path.reserveCapacity(pairs * steps * k)
        for p in 0..<pairs {
            path += line(from: mu[(2 * p * k)..<((2 * p + 1) * k)], to: mu[((2 * p + 1) * k)..<((2 * p + 2) * k)],
                         steps: steps)
        }
        let means = try decode(model, latents: path, count: pairs * steps)
        return try ImageGrid.compose(tiles: means, count: pairs * steps, tileWidth: side, tileHeight: side, columns: steps)
    }

    /// The decoded manifold of a model with a 2-D latent space: decoder means over a side×side grid of z in
    /// [−range, range]² (z₁ left to right, z₂ bottom to top).
    public static func latentMap<T: BLASScalar>(_ model: VariationalAutoencoder<T>, side: Int, range: Double = 3) throws -> GrayImage {
        guard model.configuration.latent == 2 else {
            throw GenerationError.latentMapNeedsTwoDimensions(latent: model.configuration.latent)
        }
        guard side > 0 else { throw GenerationError.invalidCount(name: "--grid", value: side) }
        let tile = try ImageGrid.squareSide(pixels: model.configuration.inputs)
        try checkLatentMap(side: side, tile: tile)
        let means = try decode(model, latents: gridLatents(side: side, range: range) as [T], count: side * side)
        return try ImageGrid.compose(tiles: means, count: side * side, tileWidth: tile, tileHeight: tile, columns: side)
    }
}
