import Foundation
import LatentCore
import XCTest

/// Reproducibility and keying of `RandomStream`, and the moments of its distributions within a few standard errors.
final class RandomStreamTests: XCTestCase {
    let draws = 100_000

    func firstValues(_ stream: RandomStream, _ n: Int = 32) -> [UInt64] {
        var s = stream
        return (0..<n).map { _ in s.next() }
    }

    func testSameKeyGivesSameSequence() {
        let a = RandomStream(seed: 42, purpose: .noise, step: 3, index: 9)
        let b = RandomStream(seed: 42, purpose: .noise, step: 3, index: 9)
        XCTAssertEqual(firstValues(a), firstValues(b))
        var x = a, y = b
        XCTAssertEqual((0..<50).map { _ in x.normal() }, (0..<50).map { _ in y.normal() })
        XCTAssertEqual((0..<50).map { _ in x.uniform() }, (0..<50).map { _ in y.uniform() })
    }

    func testDifferentKeysGiveDifferentSequences() {
        let base = firstValues(RandomStream(seed: 42, purpose: .noise, step: 3, index: 9))
        let variants: [(String, RandomStream)] = [
            ("seed", RandomStream(seed: 43, purpose: .noise, step: 3, index: 9)),
            ("purpose", RandomStream(seed: 42, purpose: .binarization, step: 3, index: 9)),
            ("step", RandomStream(seed: 42, purpose: .noise, step: 4, index: 9)),
            ("index", RandomStream(seed: 42, purpose: .noise, step: 3, index: 10)),
            ("step/index swapped", RandomStream(seed: 42, purpose: .noise, step: 9, index: 3)),
        ]
        for (what, stream) in variants {
            let other = firstValues(stream)
            XCTAssertNotEqual(other, base, "changing the \(what) must change the stream")
            XCTAssertEqual(Set(other).intersection(base).count, 0, "\(what): streams share values")
        }
        // Every purpose gives its own stream.
        let purposes: [RandomPurpose] = [.initialization, .shuffle, .binarization, .noise, .staticBinarization,
                                         .sampling, .evaluation]
        let firsts = Set(purposes.map { firstValues(RandomStream(seed: 1, purpose: $0), 1)[0] })
        XCTAssertEqual(firsts.count, purposes.count)
        // Neighbouring example indices of one step are all distinct streams.
        let byIndex = Set((0..<1000).map { firstValues(RandomStream(seed: 5, purpose: .noise, step: 0, index: UInt64($0)), 1)[0] })
        XCTAssertEqual(byIndex.count, 1000)
    }

    func testUniformMomentsAndRange() {
        var rng = RandomStream(seed: 2024, purpose: .sampling)
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<draws {
            let u = rng.uniform()
            XCTAssert(u >= 0 && u < 1)
            sum += u
            sumSq += u * u
        }
        let n = Double(draws)
        let mean = sum / n, variance = sumSq / n - mean * mean
        // Standard errors: mean √(1/12/n); variance √((1/80 − 1/144)/n) (fourth central moment of U(0,1) is 1/80).
        XCTAssertEqual(mean, 0.5, accuracy: 4 * (1.0 / 12 / n).squareRoot())
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 4 * ((1.0 / 80 - 1.0 / 144) / n).squareRoot())
        // Each tenth of [0, 1) holds a tenth of the draws.
        var buckets = [Int](repeating: 0, count: 10)
        for _ in 0..<draws { buckets[Int(rng.uniform() * 10)] += 1 }
        let p = 0.1, se = (n * p * (1 - p)).squareRoot()
        for (i, b) in buckets.enumerated() { XCTAssertEqual(Double(b), n * p, accuracy: 4 * se, "bucket \(i)") }
    }

    func checkNormalMoments(_ values: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
        let skew = values.map { pow(($0 - mean), 3) }.reduce(0, +) / n
        let kurtosis = values.map { pow(($0 - mean), 4) }.reduce(0, +) / n
        let within1 = Double(values.filter { abs($0) < 1 }.count) / n
        // Standard errors of N(0,1) sample moments: mean 1/√n, variance √(2/n), third √(15/n), fourth √(96/n).
        XCTAssertEqual(mean, 0, accuracy: 4 / n.squareRoot(), "\(what) mean", file: file, line: line)
        XCTAssertEqual(variance, 1, accuracy: 4 * (2 / n).squareRoot(), "\(what) variance", file: file, line: line)
        XCTAssertEqual(skew, 0, accuracy: 4 * (15 / n).squareRoot(), "\(what) third moment", file: file, line: line)
        XCTAssertEqual(kurtosis, 3, accuracy: 4 * (96 / n).squareRoot(), "\(what) fourth moment", file: file, line: line)
        let p = 0.682_689_492_137_085_9
        XCTAssertEqual(within1, p, accuracy: 4 * (p * (1 - p) / n).squareRoot(), "\(what) P(|z|<1)", file: file, line: line)
    }

    func testNormalMoments() {
        var rng = RandomStream(seed: 7, purpose: .noise)
        checkNormalMoments((0..<draws).map { _ in rng.normal() }, "normal()")
    }

    func testFillNormalMomentsDoubleAndFloat() {
        var rng = RandomStream(seed: 8, purpose: .noise)
        var d = [Double](repeating: .nan, count: draws)
        d.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress!, count: $0.count) }
        checkNormalMoments(d, "fillNormal Double")
        var f = [Float](repeating: .nan, count: draws + 1)  // odd count: the last value comes from normal()
        f.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress!, count: $0.count) }
        XCTAssertTrue(f.allSatisfy { $0.isFinite })
        checkNormalMoments(f.map(Double.init), "fillNormal Float")
    }

    func testFillNormalWritesExactlyCount() {
        for count in [0, 1, 2, 3, 7] {
            var rng = RandomStream(seed: 3, purpose: .noise)
            var buffer = [Double](repeating: .nan, count: count + 2)
            buffer.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress! + 1, count: count) }
            XCTAssertTrue(buffer[0].isNaN, "wrote before the range (count \(count))")
            XCTAssertTrue(buffer[count + 1].isNaN, "wrote past the range (count \(count))")
            XCTAssertTrue(buffer[1..<(count + 1)].allSatisfy { $0.isFinite }, "count \(count)")
        }
    }

    /// Streams keyed by neighbouring indices must be uncorrelated (the trainer keys each example's noise this way).
    func testNeighbouringStreamsAreUncorrelated() {
        var a = [Double](repeating: 0, count: draws), b = a
        let perStream = 100
        for s in 0..<(draws / perStream) {
            var x = RandomStream(seed: 11, purpose: .noise, step: 1, index: UInt64(s))
            var y = RandomStream(seed: 11, purpose: .noise, step: 1, index: UInt64(s + 1))
            for j in 0..<perStream {
                a[s * perStream + j] = x.normal()
                b[s * perStream + j] = y.normal()
            }
        }
        let n = Double(draws)
        let correlation = zip(a, b).map { $0 * $1 }.reduce(0, +) / n
        XCTAssertEqual(correlation, 0, accuracy: 4 / n.squareRoot())
    }

    func testBernoulliAndIndexBelow() {
        var rng = RandomStream(seed: 99, purpose: .sampling)
        let n = Double(draws)
        let ones = (0..<draws).filter { _ in rng.bernoulli(0.3) }.count
        XCTAssertEqual(Double(ones), 0.3 * n, accuracy: 4 * (n * 0.3 * 0.7).squareRoot())
        XCTAssertFalse((0..<1000).contains { _ in rng.bernoulli(0) })
        XCTAssertTrue((0..<1000).allSatisfy { _ in rng.bernoulli(1) })
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<draws {
            let i = rng.index(below: 7)
            XCTAssert((0..<7).contains(i))
            counts[i] += 1
        }
        let p = 1.0 / 7
        for c in counts { XCTAssertEqual(Double(c), n * p, accuracy: 4 * (n * p * (1 - p)).squareRoot()) }
        XCTAssertEqual(rng.index(below: 1), 0)
    }

    func testSplitMix64KnownValue() {
        // Reference value of SplitMix64's first output for state 0 (Vigna's splitmix64.c: next() with x = 0).
        XCTAssertEqual(splitMix64(0), 0xE220_A839_7B1D_CDAF)
    }

    /// Eight streams in SIMD lanes give each stream's own numbers, lane by lane, and a lane taken back out as a
    /// stream continues it.
    func testEightLaneStreamsMatchTheirStreams() {
        var singles = (0..<8).map { RandomStream(seed: 11, purpose: .binarization, step: 5, index: UInt64($0)) }
        var lanes = RandomStreams8 { singles[$0] }
        for n in 0..<200 {
            let v = lanes.next()
            for lane in 0..<8 { XCTAssertEqual(v[lane], singles[lane].next(), "value \(n), lane \(lane)") }
        }
        for lane in 0..<8 {
            var continued = lanes.stream(lane)
            XCTAssertEqual(continued.next(), singles[lane].next(), "lane \(lane)")
        }
    }
}
