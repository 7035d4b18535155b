import Foundation
import LatentCore
import LatentData
import XCTest
@testable import LatentModels
@testable import LatentEvaluation
@testable import LatentTraining

/// Generation (prior draws, posterior means, decoding, grids) against closed forms and brute-force properties.
final class GenerationTests: XCTestCase {
    let configuration = ModelConfiguration(inputs: 16, hidden: [5], latent: 2, activation: .elu)

    /// A model whose every weight is zero: the encoder outputs its last bias and the decoder emits
    /// sigmoid(its last bias) whatever the input, because ELU(0) = 0 in the hidden layer.
    func zeroWeightModel(_ c: ModelConfiguration? = nil) -> VariationalAutoencoder<Double> {
        let model = VariationalAutoencoder<Double>(c ?? configuration)
        model.initialize(seed: 3)
        let p = model.store.parameters.pointer
        for layer in model.encoder.layers + model.decoder.layers {
            for i in layer.weight.range { p[i] = 0 }
            for i in layer.bias.range { p[i] = 0 }
        }
        return model
    }

    func testPosteriorMeansAreTheFirstLatentEncoderOutputs() throws {
        for posterior in PosteriorKind.allCases {
            var c = configuration
            c.posterior = posterior
            let model = zeroWeightModel(c)
            let p = model.store.parameters.pointer
            let bias = model.encoder.layers.last!.bias
            for (j, i) in bias.range.enumerated() { p[i] = Double(j) + 0.5 }
            let x = (0..<(3 * c.inputs)).map { Double($0 % 2) }
            let mu = try Generation.posteriorMeans(model, images: x, count: 3)
            XCTAssertEqual(mu, [0.5, 1.5, 0.5, 1.5, 0.5, 1.5], "\(posterior)")
        }
    }

    func testDecodeIsTheSigmoidOfTheLogits() throws {
        let model = zeroWeightModel()
        let p = model.store.parameters.pointer
        let bias = model.decoder.layers.last!.bias
        let logits = (0..<configuration.inputs).map { Double($0) - 8 }
        for (j, i) in bias.range.enumerated() { p[i] = logits[j] }
        let out = try Generation.decode(model, latents: [0.3, -2, 5, 1], count: 2)
        XCTAssertEqual(out.count, 2 * configuration.inputs)
        for (n, v) in out.enumerated() {
            XCTAssertEqual(v, 1 / (1 + exp(-logits[n % configuration.inputs])), accuracy: 1e-15)
        }
    }

    /// Too few values for the count asked is an error in every build (`-Ounchecked` drops preconditions, and the
    /// reads would run past the array).
    func testInputsTooShortForTheirCountAreErrors() {
        let model = zeroWeightModel()
        XCTAssertThrowsError(try Generation.decode(model, latents: [0.3, -2, 5], count: 2)) { error in
            XCTAssertEqual(error as? GenerationError,
                           .inputTooShort(what: "latent codes", count: 2, needed: 4, found: 3))
        }
        XCTAssertThrowsError(try Generation.posteriorMeans(model, images: [0, 1], count: Int.max / 2))
        XCTAssertThrowsError(try Generation.decode(model, latents: [], count: -1))
    }

    func testDecodeInChunksEqualsOneRowAtATime() throws {
        let model = VariationalAutoencoder<Double>(configuration)
        model.initialize(seed: 5)
        let count = Generation.chunk + 7
        let z = Generation.priorLatents(model, count: count, seed: 1)
        let all = try Generation.decode(model, latents: z, count: count)
        for n in [0, Generation.chunk - 1, Generation.chunk, count - 1] {
            let one = try Generation.decode(model, latents: Array(z[(2 * n)..<(2 * n + 2)]), count: 1)
            for i in 0..<configuration.inputs {
                XCTAssertEqual(all[n * configuration.inputs + i], one[i], accuracy: 1e-12)
            }
        }
        XCTAssertTrue(all.allSatisfy { $0 > 0 && $0 < 1 })
    }

    func testStandardNormalPriorDrawsAreSeededAndStandard() {
        let model = VariationalAutoencoder<Double>(configuration)
        let a = Generation.priorLatents(model, count: 20_000, seed: 9)
        XCTAssertEqual(Array(a.prefix(20)), Generation.priorLatents(model, count: 10, seed: 9), "a prefix must agree")
        XCTAssertNotEqual(Array(a.prefix(20)), Generation.priorLatents(model, count: 10, seed: 10))
        for i in 0..<2 {
            let values = stride(from: i, to: a.count, by: 2).map { a[$0] }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            // Standard errors: 1/√n ≈ 0.007 for the mean, √(2/n) ≈ 0.01 for the variance.
            XCTAssertEqual(mean, 0, accuracy: 0.04)
            XCTAssertEqual(variance, 1, accuracy: 0.05)
        }
    }

    func testMixturePriorDrawsPickComponentsUniformly() throws {
        let c = ModelConfiguration(model: .gmvae, inputs: 16, hidden: [5], latent: 2, components: 4)
        let model = VariationalAutoencoder<Double>(c)
        let mixture = try XCTUnwrap(model.mixture)
        let p = model.store.parameters.pointer
        let centers: [[Double]] = [[10, 0], [-10, 0], [0, 10], [0, -10]]
        for j in 0..<4 {
            for i in 0..<2 {
                p[mixture.means.offset + j * 2 + i] = centers[j][i]
                p[mixture.logVariances.offset + j * 2 + i] = log(0.01)  // standard deviation 0.1
            }
        }
        let n = 4000
        let z = Generation.priorLatents(model, count: n, seed: 2)
        var counts = [0, 0, 0, 0]
        var squaredDistance = 0.0
        for r in 0..<n {
            let point = [z[2 * r], z[2 * r + 1]]
            let distances = centers.map { c in (0..<2).reduce(0.0) { $0 + (point[$1] - c[$1]) * (point[$1] - c[$1]) } }
            let nearest = distances.indices.min { distances[$0] < distances[$1] }!
            counts[nearest] += 1
            squaredDistance += distances[nearest]
            XCTAssertLessThan(distances[nearest], 1, "every draw lies within 10 standard deviations of a mean")
        }
        // E‖z − m_j‖² = 2 · 0.01; each component is drawn n/4 = 1000 times ± a few √(n·3/16) ≈ 27.
        XCTAssertEqual(squaredDistance / Double(n), 0.02, accuracy: 0.002)
        for count in counts { XCTAssertEqual(Double(count), 1000, accuracy: 120) }
    }

    func testLineEndsAtBothPointsAndIsEvenlySpaced() {
        let a: [Double] = [1, -2, 3], b: [Double] = [5, 2, -1]
        let path = Generation.line(from: a[...], to: b[...], steps: 5)
        XCTAssertEqual(Array(path.prefix(3)), a)
        XCTAssertEqual(Array(path.suffix(3)), b)
        XCTAssertEqual(Array(path[6..<9]), [3, 0, 1])
    }

    func testGridLatentsRunLikeAPlot() {
        let z: [Double] = Generation.gridLatents(side: 3, range: 3)
        XCTAssertEqual(z.count, 18)
        XCTAssertEqual(Array(z.prefix(2)), [-3, 3], "top left is (z₁, z₂) = (−r, r)")
        XCTAssertEqual(Array(z[2..<4]), [0, 3])
        XCTAssertEqual(Array(z[8..<10]), [0, 0], "the centre")
        XCTAssertEqual(Array(z.suffix(2)), [3, -3], "bottom right is (r, −r)")
    }

    func testLatentMapNeedsTwoLatentDimensions() {
        var c = configuration
        c.latent = 3
        let model = VariationalAutoencoder<Float>(c)
        XCTAssertThrowsError(try Generation.latentMap(model, side: 4)) { error in
            XCTAssertEqual(error as? GenerationError, .latentMapNeedsTwoDimensions(latent: 3))
            XCTAssertTrue("\(error)".contains("--latent 2"))
            XCTAssertFalse("\(error)".contains("\n"))
        }
        let image = try? Generation.latentMap(VariationalAutoencoder<Float>(configuration), side: 4)
        XCTAssertEqual(image?.width, 4 * 4 + 5 * ImageGrid.defaultPadding)
    }

    func testReconstructionGridPairsBinarizedImagesWithReconstructions() throws {
        let model = zeroWeightModel()
        let p = model.store.parameters.pointer
        for i in model.decoder.layers.last!.bias.range { p[i] = 0 }  // every reconstruction is 0.5 grey
        let pixels = (0..<(3 * 16)).map { UInt8(truncatingIfNeeded: $0 * 37) }
        let images = ImageSet(count: 3, rows: 4, columns: 4, pixels: pixels)
        let grid = try Generation.reconstructionGrid(model, testImages: images, count: 3)
        // ⌈√3⌉ = 2 pairs per row, 2 rows: 4 tiles of 4 px across, 2 down, padding 2.
        XCTAssertEqual(grid.width, 4 * 4 + 5 * 2)
        XCTAssertEqual(grid.height, 2 * 4 + 3 * 2)
        let binarized = Binarization.staticBinarized(images, seed: TrainingSession.testBinarizationSeed, as: Double.self)
        for y in 0..<4 {
            for x in 0..<4 {
                XCTAssertEqual(grid.pixels[(2 + y) * grid.width + 2 + x], binarized[y * 4 + x] == 1 ? 255 : 0)
                XCTAssertEqual(grid.pixels[(2 + y) * grid.width + 8 + x], 128, "sigmoid(0) = 0.5 → 128")
            }
        }
        XCTAssertThrowsError(try Generation.reconstructionGrid(model, testImages: images, count: 4))
    }

    func testImageGridGeometryAndLevels() throws {
        XCTAssertEqual(try ImageGrid.squareSide(pixels: 784), 28)
        XCTAssertThrowsError(try ImageGrid.squareSide(pixels: 785))
        XCTAssertEqual(ImageGrid.squareColumns(count: 100), 10)
        XCTAssertEqual(ImageGrid.squareColumns(count: 101), 11)
        XCTAssertEqual(ImageGrid.squareColumns(count: 1), 1)
        XCTAssertEqual(GrayImage.level(-0.1), 0)
        XCTAssertEqual(GrayImage.level(Double.nan), 0)
        XCTAssertEqual(GrayImage.level(0.5), 128)
        XCTAssertEqual(GrayImage.level(2.0), 255)
        let tiles: [Float] = [0, 1, 1, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1]
        let grid = try ImageGrid.compose(tiles: tiles, count: 3, tileWidth: 2, tileHeight: 2, columns: 2, padding: 1, fill: 7)
        XCTAssertEqual(grid.width, 2 * 2 + 3)
        XCTAssertEqual(grid.height, 2 * 2 + 3)
        let expected: [UInt8] = [
            7, 7, 7, 7, 7, 7, 7,
            7, 0, 255, 7, 128, 128, 7,
            7, 255, 0, 7, 128, 128, 7,
            7, 7, 7, 7, 7, 7, 7,
            7, 255, 255, 7, 7, 7, 7,
            7, 255, 255, 7, 7, 7, 7,
            7, 7, 7, 7, 7, 7, 7,
        ]
        XCTAssertEqual(grid.pixels, expected)
    }

    /// Brute force: the largest value whose grid, laid out as the grid function lays it out, fits the PNG limit.
    func largestFitting(_ layout: (Int) -> (count: Int, columns: Int), tile: Int, upTo limit: Int) -> Int {
        var best = 0
        for value in 1...limit {
            let (count, columns) = layout(value)
            let rows = (count + columns - 1) / columns
            let width = columns * tile + (columns + 1) * ImageGrid.defaultPadding
            let height = rows * tile + (rows + 1) * ImageGrid.defaultPadding
            if max(width, height) <= PNGWriter.maximumSide { best = value }
        }
        return best
    }

    func assertTooLarge<R>(_ body: @autoclosure () throws -> R, flag: String, maximum: Int, size: String?,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case let .imageTooLarge(f, _, m, _, _)? = error as? GenerationError else {
                return XCTFail("expected imageTooLarge, got \(error)", file: file, line: line)
            }
            XCTAssertEqual([f, "\(m)"], [flag, "\(maximum)"], file: file, line: line)
            let message = "\(error)"
            let prefix = "\(flag) must be at most \(maximum) (got "
            XCTAssertTrue(message.hasPrefix(prefix), message, file: file, line: line)
            if let size { XCTAssertTrue(message.contains(size), message, file: file, line: line) }
            XCTAssertFalse(message.contains("\n"), message, file: file, line: line)
        }
    }

    func testImageSizeLimitsAreTheLargestGridsThatFit() throws {
        let tile = Generation.defaultTile
        let samples = largestFitting({ ($0, ImageGrid.squareColumns(count: $0)) }, tile: tile, upTo: 80_000)
        XCTAssertNoThrow(try Generation.checkSampleCount(samples))
        assertTooLarge(try Generation.checkSampleCount(samples + 1), flag: "--count", maximum: samples, size: nil)
        assertTooLarge(try Generation.checkSampleCount(100_000_000), flag: "--count", maximum: samples,
                       size: "300002×300002 pixels")
        assertTooLarge(try Generation.checkSampleCount(.max), flag: "--count", maximum: samples, size: nil)

        let pairs = largestFitting({ (2 * $0, 2 * ImageGrid.squareColumns(count: $0)) }, tile: tile, upTo: 20_000)
        XCTAssertNoThrow(try Generation.checkReconstructionCount(pairs))
        assertTooLarge(try Generation.checkReconstructionCount(pairs + 1), flag: "--count", maximum: pairs, size: nil)
        assertTooLarge(try Generation.checkReconstructionCount(.max), flag: "--count", maximum: pairs, size: nil)

        let side = largestFitting({ ($0 * $0, $0) }, tile: tile, upTo: 400)
        XCTAssertNoThrow(try Generation.checkLatentMap(side: side))
        assertTooLarge(try Generation.checkLatentMap(side: 40_000), flag: "--grid", maximum: side,
                       size: "1200002×1200002 pixels")
        assertTooLarge(try Generation.checkLatentMap(side: .max), flag: "--grid", maximum: side, size: nil)

        XCTAssertNoThrow(try Generation.checkInterpolation(pairs: side, steps: side))
        assertTooLarge(try Generation.checkInterpolation(pairs: 8, steps: 100_000), flag: "--steps", maximum: side,
                       size: "3000002×242 pixels")
        assertTooLarge(try Generation.checkInterpolation(pairs: 8, steps: .max), flag: "--steps", maximum: side,
                       size: nil)
        assertTooLarge(try Generation.checkInterpolation(pairs: side + 1, steps: 10), flag: "--pairs", maximum: side,
                       size: nil)
        XCTAssertEqual([samples, pairs, side], [273 * 273, 136 * 136, 273])
    }

    /// The grid functions check the model's own tile size before decoding anything.
    func testGridFunctionsRefuseOversizeImages() {
        let model = VariationalAutoencoder<Float>(configuration)  // 16 inputs: 4×4 tiles
        let side = ImageGrid.maximumTiles(tile: 4)
        assertTooLarge(try Generation.latentMap(model, side: side + 1), flag: "--grid", maximum: side, size: nil)
        assertTooLarge(try Generation.sampleGrid(model, count: .max, seed: 0), flag: "--count", maximum: side * side,
                       size: nil)
    }

    func testPNGHeaderSaysEightBitGrayscale() throws {
        let image = try GrayImage(width: 3, height: 2, pixels: [0, 50, 100, 150, 200, 250])
        let png = try PNGWriter.encode(image)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(Array(png[12..<16]), Array("IHDR".utf8))
        XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 3, 0, 0, 0, 2], "width 3, height 2 big-endian")
        XCTAssertEqual(png[24], 8, "bit depth")
        XCTAssertEqual(png[25], 0, "colour type 0: grayscale")
        XCTAssertEqual(Array(png.suffix(8)), [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82], "IEND chunk")
        XCTAssertThrowsError(try PNGWriter.encode(GrayImage(width: 0, height: 0)))
        XCTAssertThrowsError(try PNGWriter.write(image, to: "/proc/no-such-dir/x.png")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot write /proc/no-such-dir/x.png"), "\(error)")
        }
    }

    func testPlotTicksAreRoundAndCoverTheRange() {
        let t = LinePlot.ticks(237.3, 274.4, extend: true)
        XCTAssertEqual(t.lo, 230)
        XCTAssertEqual(t.hi, 280)
        XCTAssertEqual(t.values, [230, 240, 250, 260, 270, 280])
        let single = LinePlot.ticks(1, 1, minimumStep: 1)
        XCTAssertTrue(single.lo < 1 && single.hi > 1)
        XCTAssertEqual(single.values, [1])
    }
}
