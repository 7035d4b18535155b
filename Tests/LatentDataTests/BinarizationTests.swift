import LatentCore
@testable import LatentData
import TestSupport
import XCTest

final class BinarizationTests: XCTestCase {
    func uniformImages(level: UInt8, count: Int, pixels: Int = 784) -> ImageSet {
        ImageSet(count: count, rows: 1, columns: pixels, pixels: [UInt8](repeating: level, count: count * pixels))
    }

    func testStaticBinarizationIsReproducibleAndBinary() {
        let images = ImageSet(count: 20, rows: 28, columns: 28, pixels: IDXFixture.randomPixels(20 * 784, seed: 3))
        let a: [Float] = Binarization.staticBinarized(images, seed: 5)
        let b: [Float] = Binarization.staticBinarized(images, seed: 5)
        let c: [Float] = Binarization.staticBinarized(images, seed: 6)
        XCTAssertEqual(a.count, 20 * 784)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertTrue(a.allSatisfy { $0 == 0 || $0 == 1 })
        // Double and Float draw the same bits.
        let d = Binarization.staticBinarized(images, seed: 5, as: Double.self)
        XCTAssertEqual(d, a.map(Double.init))
        // Image i is keyed by i: a prefix of the set binarizes to a prefix of the result (evaluation with --limit).
        let head: [Float] = Binarization.staticBinarized(images.prefix(7), seed: 5)
        XCTAssertEqual(head, Array(a.prefix(7 * 784)))
    }

    func testExtremeLevelsAreDeterministic() {
        let black: [Double] = Binarization.staticBinarized(uniformImages(level: 0, count: 50), seed: 1)
        XCTAssertTrue(black.allSatisfy { $0 == 0 }, "pixel 0 must always give 0")
        let white: [Double] = Binarization.staticBinarized(uniformImages(level: 255, count: 50), seed: 1)
        XCTAssertTrue(white.allSatisfy { $0 == 1 }, "pixel 255 must always give 1")
    }

    func testMeanMatchesIntensity() {
        // 200 images × 784 pixels = 156 800 draws per level; within 4 standard errors of level/255.
        for level in [UInt8(1), 51, 128, 204, 254] {
            let x: [Float] = Binarization.staticBinarized(uniformImages(level: level, count: 200), seed: 12)
            let n = Double(x.count), p = Double(level) / 255
            let mean = x.reduce(0) { $0 + Double($1) } / n
            XCTAssertEqual(mean, p, accuracy: 4 * (p * (1 - p) / n).squareRoot(), "level \(level)")
        }
    }

    func testThresholdTable() {
        XCTAssertEqual(Binarization.thresholds.count, 256)
        XCTAssertEqual(Binarization.thresholds[0], 0)
        XCTAssertEqual(Binarization.thresholds[255], 1 << 24)
        for v in 0..<256 {
            XCTAssertEqual(Double(Binarization.thresholds[v]) / Double(1 << 24), Double(v) / 255, accuracy: 0.5 / Double(1 << 24))
        }
    }

    /// The branch-free compare is exactly `a < t` over the 24-bit draws and the whole threshold range.
    func testBranchFreeCompareIsLessThan() {
        let edges: [UInt32] = [0, 1, 2, 0x7F_FFFF, 0x80_0000, 0xFF_FFFE, 0xFF_FFFF]
        for t in edges + [1 << 24] {
            for a in edges + [t &- 1, t, t &+ 1] where a <= 0xFF_FFFF {
                XCTAssertEqual(Binarization.bit(a, below: t), a < t ? 1 : 0, "a = \(a), t = \(t)")
            }
        }
        var rng = RandomStream(seed: 9)
        for _ in 0..<10_000 {
            let a = UInt32(truncatingIfNeeded: rng.next()) & 0xFF_FFFF
            let t = Binarization.thresholds[Int(rng.next() % 256)]
            XCTAssertEqual(Binarization.bit(a, below: t), a < t ? 1 : 0, "a = \(a), t = \(t)")
        }
    }

    func testSampleOddCountAndPerPixelIntensity() {
        // A single image whose pixels alternate 0 and 255, odd length: the output mirrors it exactly.
        let pixels: [UInt8] = (0..<13).map { $0 % 2 == 0 ? 0 : 255 }
        var out = [Double](repeating: -1, count: 14)
        var rng = RandomStream(seed: 4, purpose: .binarization)
        let scratch = Buffer<Float>(count: 13)
        pixels.withUnsafeBufferPointer { px in
            Binarization.thresholds.withUnsafeBufferPointer { th in
                out.withUnsafeMutableBufferPointer {
                    Binarization.sample(pixels: px.baseAddress!, count: 13, thresholds: th.baseAddress!, rng: &rng,
                                        into: $0.baseAddress!, scratch: scratch.pointer)
                }
            }
        }
        XCTAssertEqual(Array(out.prefix(13)), pixels.map { $0 == 0 ? 0 : 1 })
        XCTAssertEqual(out[13], -1, "wrote past count")
    }

    /// Dynamic binarization: fresh draws per stream key, and pixel-wise means that follow each pixel's level.
    func testDynamicSamplingFollowsEachPixel() {
        let levels: [UInt8] = [0, 32, 64, 128, 192, 255, 17]
        var sums = [Double](repeating: 0, count: levels.count)
        let rounds = 20_000
        var out = [Float](repeating: 0, count: levels.count)
        levels.withUnsafeBufferPointer { px in
            Binarization.thresholds.withUnsafeBufferPointer { th in
                for r in 0..<rounds {
                    var rng = RandomStream(seed: 8, purpose: .binarization, step: UInt64(r), index: 0)
                    out.withUnsafeMutableBufferPointer {
                        Binarization.sample(pixels: px.baseAddress!, count: levels.count, thresholds: th.baseAddress!,
                                            rng: &rng, into: $0.baseAddress!)
                    }
                    for i in 0..<levels.count { sums[i] += Double(out[i]) }
                }
            }
        }
        for (i, level) in levels.enumerated() {
            let p = Double(level) / 255, n = Double(rounds)
            XCTAssertEqual(sums[i] / n, p, accuracy: 4 * (p * (1 - p) / n).squareRoot() + 1e-12, "pixel \(i) level \(level)")
        }
    }

    /// Eight images through eight streams in lanes give the pixels of eight separate calls, for sizes with and without
    /// a tail past the last 16 pixels.
    func testEightImagesAtOnceMatchOneAtATime() {
        let pixels = IDXFixture.randomPixels(8 * 784, seed: 8)
        Binarization.thresholds.withUnsafeBufferPointer { thresholds in
            pixels.withUnsafeBufferPointer { px in
                for count in [784, 33, 16, 7, 1] {
                    let streams = (0..<8).map {
                        RandomStream(seed: 3, purpose: .binarization, step: 2, index: UInt64($0))
                    }
                    let images = (0..<8).map { px.baseAddress! + (7 - $0) * 784 }
                    var expected = [Float](repeating: -1, count: 8 * count)
                    for lane in 0..<8 {
                        var rng = streams[lane]
                        expected.withUnsafeMutableBufferPointer {
                            Binarization.sample(pixels: images[lane], count: count, thresholds: thresholds.baseAddress!,
                                                rng: &rng, into: $0.baseAddress! + lane * count)
                        }
                    }
                    var lanes = RandomStreams8 { streams[$0] }
                    var got = [Float](repeating: -1, count: 8 * count)
                    got.withUnsafeMutableBufferPointer {
                        Binarization.sample(pixels: { images[$0] }, count: count, thresholds: thresholds.baseAddress!,
                                            rng: &lanes, into: $0.baseAddress!)
                    }
                    XCTAssertEqual(got, expected, "count \(count)")
                }
            }
        }
    }

    /// The eight-lane comparison without the table, 255·a + 128 ≤ v·2²⁴, is a < thresholds[v] for every level v, at
    /// and around each threshold and at the ends of the 24-bit range.
    func testTableFreeComparisonMatchesTheThresholds() {
        for v in 0..<256 {
            let t = Binarization.thresholds[v]
            for a in [0, 1, Int(t) - 2, Int(t) - 1, Int(t), Int(t) + 1, (1 << 24) - 1] where a >= 0 && a < 1 << 24 {
                let draw = UInt32(a)
                XCTAssertEqual(255 &* draw &+ 128 <= UInt32(v) << 24, draw < t, "level \(v), draw \(a)")
            }
        }
    }
}
