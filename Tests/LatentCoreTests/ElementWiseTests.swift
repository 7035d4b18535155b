import Foundation
import LatentCore
import XCTest

/// Stable softplus, sigmoid and log-sum-exp against direct formulas where those are exact, and their limits.
final class ElementWiseTests: XCTestCase {
    let moderate: [Double] = stride(from: -30.0, through: 30.0, by: 0.37).map { $0 }

    func testSoftplusMatchesDirectFormulaOnModerateInputs() {
        for a in moderate {
            // log1p(exp(a)) is exact to rounding for |a| ≤ 30 (no overflow, no cancellation).
            let expected = Foundation.log1p(Foundation.exp(a))
            // Both sides are a few correctly rounded operations: within 4 ulps.
            XCTAssertLessThan(relErr(ElementWise.softplus(a), expected), 4 * Double.ulpOfOne, "softplus(\(a))")
            XCTAssertLessThan(relErr(Double(ElementWise.softplus(Float(a))), Double(Foundation.log1p(Foundation.exp(Double(Float(a)))))),
                              4 * Double(Float.ulpOfOne), "Float softplus(\(a))")
        }
    }

    func testSoftplusLimits() {
        // Large positive: softplus(a) = a exactly in floating point.
        XCTAssertEqual(ElementWise.softplus(100.0), 100)
        XCTAssertEqual(ElementWise.softplus(1000.0), 1000)
        XCTAssertEqual(ElementWise.softplus(Float(100)), 100)
        XCTAssertEqual(ElementWise.softplus(Float(1000)), 1000)
        // Large negative: softplus(a) ≈ eᵃ, tiny but non-negative; e^−1000 underflows to 0.
        XCTAssertEqual(ElementWise.softplus(-100.0), Foundation.exp(-100.0), accuracy: 1e-16 * Foundation.exp(-100.0))
        XCTAssertEqual(ElementWise.softplus(-1000.0), 0)
        XCTAssertGreaterThanOrEqual(ElementWise.softplus(Float(-100)), 0)
        XCTAssertTrue(ElementWise.softplus(Float(-100)).isFinite)
        XCTAssertEqual(ElementWise.softplus(Float(-1000)), 0)
        XCTAssertEqual(ElementWise.softplus(Double.infinity), .infinity)
        XCTAssertEqual(ElementWise.softplus(-Double.infinity), 0)
        // softplus(a) − softplus(−a) = a.
        for a in moderate { XCTAssertEqual(ElementWise.softplus(a) - ElementWise.softplus(-a), a, accuracy: 1e-13) }
    }

    func testSigmoidMatchesDirectFormulaAndSymmetry() {
        for a in moderate {
            let expected = 1 / (1 + Foundation.exp(-a))
            XCTAssertLessThan(relErr(ElementWise.sigmoid(a), expected), 4 * Double.ulpOfOne, "sigmoid(\(a))")
            XCTAssertEqual(ElementWise.sigmoid(a) + ElementWise.sigmoid(-a), 1, accuracy: 2 * Double.ulpOfOne,
                           "symmetry at \(a)")
            let f = Float(a)
            XCTAssertLessThan(relErr(Double(ElementWise.sigmoid(f)), 1 / (1 + Foundation.exp(-Double(f)))),
                              4 * Double(Float.ulpOfOne), "Float sigmoid(\(a))")
        }
    }

    func testSigmoidLimits() {
        XCTAssertEqual(ElementWise.sigmoid(100.0), 1)
        XCTAssertEqual(ElementWise.sigmoid(1000.0), 1)
        XCTAssertEqual(ElementWise.sigmoid(-100.0), Foundation.exp(-100.0), accuracy: 1e-15 * Foundation.exp(-100.0))
        XCTAssertEqual(ElementWise.sigmoid(-1000.0), 0)
        XCTAssertEqual(ElementWise.sigmoid(Float(100)), 1)
        XCTAssertEqual(ElementWise.sigmoid(Float(1000)), 1)
        XCTAssertEqual(ElementWise.sigmoid(Float(-1000)), 0)
        let tiny = ElementWise.sigmoid(Float(-100))
        XCTAssertTrue(tiny.isFinite && tiny >= 0 && tiny < 1e-40, "\(tiny)")
        XCTAssertFalse(ElementWise.sigmoid(Double.infinity).isNaN)
        XCTAssertFalse(ElementWise.sigmoid(-Double.infinity).isNaN)
        XCTAssertEqual(ElementWise.sigmoid(0.0), 0.5)
    }

    func testLogSumExpMatchesNaiveOnModerateInputs() {
        let cases: [[Double]] = [[0], [1, 2, 3], [-5, 0.5, 2.25, -1], Array(moderate.prefix(40)).map { $0 / 3 }]
        for x in cases {
            // Summing n exponentials costs up to n roundings of the sum: absolute error (n + 4)·ulp(1) of the log.
            let n = Double(x.count)
            let naive = Foundation.log(x.map { Foundation.exp($0) }.reduce(0, +))
            XCTAssertEqual(ElementWise.logSumExp(x), naive, accuracy: (n + 4) * Double.ulpOfOne * max(1, abs(naive)), "\(x)")
            let xf = x.map { Float($0) }
            let naiveF = Foundation.log(xf.map { Foundation.exp(Double($0)) }.reduce(0, +))
            XCTAssertEqual(Double(ElementWise.logSumExp(xf)), naiveF,
                           accuracy: (n + 4) * Double(Float.ulpOfOne) * max(1, abs(naiveF)), "Float \(x)")
        }
    }

    func testLogSumExpStableForLargeInputs() {
        XCTAssertEqual(ElementWise.logSumExp([1000.0, 1000.0]), 1000 + Foundation.log(2.0), accuracy: 1e-12)
        XCTAssertEqual(ElementWise.logSumExp([-1000.0, -1000.0]), -1000 + Foundation.log(2.0), accuracy: 1e-12)
        XCTAssertEqual(ElementWise.logSumExp([1000.0, 0]), 1000)
        XCTAssertEqual(ElementWise.logSumExp([Float(1000), Float(1000)]), Float(1000 + Foundation.log(2.0)), accuracy: 1e-4)
        XCTAssertEqual(ElementWise.logSumExp([Float(100), Float(100), Float(100)]), Float(100 + Foundation.log(3.0)),
                       accuracy: 1e-5)
        XCTAssertEqual(ElementWise.logSumExp([-Double.infinity, 3.0]), 3)
    }

    func testLogSumExpEmptyAndAllMinusInfinity() {
        XCTAssertEqual(ElementWise.logSumExp([Double]()), -.infinity)
        XCTAssertEqual(ElementWise.logSumExp([Float]()), -.infinity)
        XCTAssertEqual(ElementWise.logSumExp([-Double.infinity, -.infinity]), -.infinity)
    }

    func testLogSumExpStride() {
        // Column 1 of a 3×2 row-major matrix: [2, 4, 6].
        let m: [Double] = [1, 2, 3, 4, 5, 6]
        let got = m.withUnsafeBufferPointer { ElementWise.logSumExp($0.baseAddress! + 1, count: 3, stride: 2) }
        XCTAssertEqual(got, Foundation.log(Foundation.exp(2.0) + Foundation.exp(4.0) + Foundation.exp(6.0)), accuracy: 1e-14)
    }

    func testAddScaleAndColumnSums() {
        var y: [Double] = [1, 2, 3]
        let x: [Double] = [0.5, -1, 4]
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { ElementWise.add(xp.baseAddress!, into: $0.baseAddress!, count: 3) } }
        XCTAssertEqual(y, [1.5, 1, 7])
        y.withUnsafeMutableBufferPointer { ElementWise.scale($0.baseAddress!, by: -2, count: 3) }
        XCTAssertEqual(y, [-3, -2, -14])
        let m: [Double] = [1, 2, 3, 4, 5, 6]  // 2×3
        var out: [Double] = [100, 100, 100]
        m.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer {
                ElementWise.columnSums(mp.baseAddress!, rows: 2, columns: 3, into: $0.baseAddress!, accumulate: false)
            }
        }
        XCTAssertEqual(out, [5, 7, 9])
        m.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer {
                ElementWise.columnSums(mp.baseAddress!, rows: 2, columns: 3, into: $0.baseAddress!, accumulate: true)
            }
        }
        XCTAssertEqual(out, [10, 14, 18])
    }

    func relErr(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(a), abs(b), .leastNormalMagnitude) }
}
